"""What the S3 and EFS stores share: alias -> version -> manifest -> verified files."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from modelambda.runtime import logs
from modelambda.runtime.errors import ConfigError, ModelLoadError
from modelambda.runtime.integrity import sha256_bytes
from modelambda.runtime.sources.base import ModelSource


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        assert isinstance(files, dict) and files
        for rel, info in files.items():
            # a file of the version: relative, no "..", and no empty or "." part, which would
            # name the version's directory itself (or a NUL, which no file name holds)
            parts = rel.split("/")
            if rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in parts):
                raise ModelLoadError(f"{where}: manifest names {rel!r}, outside the version")
            int(info["size"])
            str(info["sha256"])
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ModelLoadError(f"{where}: not a valid model manifest ({exc!r})") from exc
    return manifest  # type: ignore[no-any-return]


def check_bytes(rel: str, data: bytes, info: Mapping[str, Any], where: str) -> None:
    if len(data) != int(info["size"]):
        raise ModelLoadError(f"{where}/{rel}: {len(data)} bytes, the manifest says "
                             f"{info['size']} (truncated or replaced)")
    check_digest(rel, sha256_bytes(data), info, where)


def check_digest(rel: str, digest: str, info: Mapping[str, Any], where: str) -> None:
    """The hex sha256 of a file's bytes against the manifest's."""
    if digest != info["sha256"]:
        raise ModelLoadError(f"{where}/{rel}: sha256 {digest}, the manifest says "
                             f"{info['sha256']} (corrupted or replaced)")


class VersionedSource(ModelSource):
    """A model store source: alias and version bookkeeping, /tmp placement, refresh timing.

    It checks each file against the version's manifest (size and sha256) when ``verify``
    (the config's ``model.verify_checksums``) is set."""

    verifies_checksums = True

    def __init__(self, settings: Mapping[str, Any], paths: Any, *, verify: bool) -> None:
        super().__init__(settings, paths, verify=verify)
        self.model = str(settings.get("model") or "")
        self.alias = str(settings.get("alias") or "live")
        self.refresh_s = float(settings.get("refresh_s") or 0)
        if not self.model:
            raise ConfigError(f"{settings.get('kind')} source needs the model's name")
        self.version: str | None = None
        self.fetch_ms = 0.0

    def scratch(self, version: str) -> str:
        """A fresh /tmp directory for one version's files."""
        path = os.path.join(self.paths.tmp_dir, "modelambda", self.model, version)
        self._remove(path)
        os.makedirs(path, exist_ok=True)
        return path

    def forget(self, version: str | None) -> None:
        """Free /tmp of a version no longer served."""
        if version:
            self._remove(os.path.join(self.paths.tmp_dir, "modelambda", self.model, version))

    def _remove(self, path: str) -> None:
        """Delete a directory tree; what cannot be deleted is logged, not raised: serving goes
        on, but /tmp (512 MB by default) holds files it can no longer use."""
        if not os.path.lexists(path):
            return
        problems: list[str] = []

        def failed(_function: Any, failed_path: str, exc_info: Any) -> None:
            if not isinstance(exc_info[1], FileNotFoundError):
                problems.append(f"{failed_path}: {exc_info[1]}")

        shutil.rmtree(path, onerror=failed)
        if problems:
            self.log(logs.event_record("cannot free /tmp", {
                "model": self.model, "path": path, "errors": problems[:5]}, level="WARNING"))

    def timed(self, start: float) -> None:
        self.fetch_ms = round((time.perf_counter() - start) * 1000, 3)
