"""What the S3 and EFS stores share: alias -> version -> manifest -> verified files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.errors import ConfigError, ModelLoadError
from modelambda.runtime.sources.base import ModelSource


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        assert isinstance(files, dict) and files
        for rel, info in files.items():
            if rel.startswith("/") or ".." in rel.split("/"):
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
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        raise ModelLoadError(f"{where}/{rel}: sha256 {digest}, the manifest says "
                             f"{info['sha256']} (corrupted or replaced)")


class VersionedSource(ModelSource):
    """A model store source: alias and version bookkeeping, /tmp placement, refresh timing."""

    def __init__(self, settings: Mapping[str, Any], paths: Any) -> None:
        super().__init__(settings, paths)
        self.model = str(settings.get("model") or "")
        self.alias = str(settings.get("alias") or "live")
        self.refresh_s = float(settings.get("refresh_s") or 0)
        self.verify = bool(settings.get("verify", True))
        if not self.model:
            raise ConfigError(f"{settings.get('kind')} source needs the model's name")
        self.version: str | None = None
        self.fetch_ms = 0.0

    def scratch(self, version: str) -> str:
        """A fresh /tmp directory for one version's files."""
        path = os.path.join(self.paths.tmp_dir, "modelambda", self.model, version)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        return path

    def forget(self, version: str | None) -> None:
        """Free /tmp of a version no longer served."""
        if version:
            shutil.rmtree(os.path.join(self.paths.tmp_dir, "modelambda", self.model, version),
                          ignore_errors=True)

    def timed(self, start: float) -> None:
        self.fetch_ms = round((time.perf_counter() - start) * 1000, 3)
