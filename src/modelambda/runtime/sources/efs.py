"""The ``efs`` source: the model store on an EFS mount, read in place via the alias link.

``<mount>/<model>/aliases/<alias>`` is a symlink to ``../versions/<version>``, switched with
an atomic rename by ``modelambda models promote``; a warm environment re-reads the link at
most every ``refresh_s``. Checking every file's sha256 costs a full read of the model on each
cold start; whether it is done is the config's ``model.verify_checksums`` (from the spec's
``[model] verify_checksums``), as for every source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from modelambda.runtime import storelayout
from modelambda.runtime.errors import ModelLoadError
from modelambda.runtime.sources.base import Resolved
from modelambda.runtime.sources.versioned import VersionedSource, check_bytes, parse_manifest


class EfsSource(VersionedSource):
    def __init__(self, settings: Mapping[str, Any], paths: Any, *, verify: bool) -> None:
        super().__init__(settings, paths, verify=verify)
        mount = str(settings.get("mount_path", "/mnt/models"))
        self.root = paths.efs_dir if paths.efs_dir is not None else mount

    def describe(self) -> str:
        return f"{os.path.join(self.root, self.model)} ({self.alias})"

    def _read(self) -> Resolved:
        link = os.path.join(self.root, storelayout.alias_path("", self.model, self.alias))
        versions = os.path.realpath(os.path.join(self.root, self.model, "versions"))
        target = os.path.realpath(link)
        if not os.path.lexists(link):
            raise ModelLoadError(f"alias {self.alias!r} of model {self.model!r} not found at "
                                 f"{link}: publish a version and promote it")
        if os.path.dirname(target) != versions or not os.path.isdir(target):
            raise ModelLoadError(f"alias {link} points to {target}, which is not a version "
                                 f"directory under {versions}")
        try:
            version = storelayout.checked_name(os.path.basename(target), "version")
        except ValueError as exc:
            raise ModelLoadError(f"alias {link}: {exc}") from exc
        manifest_file = os.path.join(target, storelayout.MANIFEST)
        try:
            with open(manifest_file, "rb") as handle:
                manifest = parse_manifest(handle.read(), target)
        except FileNotFoundError as exc:
            raise ModelLoadError(f"version {version!r} has no manifest at {manifest_file} "
                                 "(missing or incomplete)") from exc
        if self.verify:
            for rel, info in manifest["files"].items():
                try:
                    with open(os.path.join(target, rel), "rb") as handle:
                        check_bytes(rel, handle.read(), info, target)
                except FileNotFoundError as exc:
                    raise ModelLoadError(f"{target}/{rel} is missing") from exc
        return Resolved(target, version)

    def resolved(self) -> Resolved:
        found = self._read()
        self.version = found.version
        return found

    def resolve(self) -> str:
        return self.resolved().path

    def poll(self) -> Resolved | None:
        link = os.path.join(self.root, storelayout.alias_path("", self.model, self.alias))
        if os.path.basename(os.path.realpath(link)) == self.version:
            return None
        found = self._read()
        return None if found.version == self.version else found

    def commit(self, resolved: Resolved) -> None:
        self.version = resolved.version
