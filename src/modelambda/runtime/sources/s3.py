"""The ``s3`` source: the model store on S3, fetched at cold start, refreshed when warm.

At init the fetch starts before the heavy imports (see ``runtime/prefetch.py``), so the
download of the model overlaps numpy's and onnxruntime's imports. Files are fetched with
parallel ranged GETs (one stream on a fast connection) and checked against the version's
manifest (size, and sha256 computed as the bytes arrive). ONNX files stay in memory (an
in-memory file that onnxruntime loads by path, freed once loaded); other files go to /tmp.
A warm environment asks for its alias at most every ``refresh_s`` with a conditional GET
(If-None-Match), which costs one small request when nothing changed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from modelambda.runtime import storelayout
from modelambda.runtime.errors import ModelLoadError
from modelambda.runtime.integrity import new_sha256
from modelambda.runtime.sources.base import Resolved
from modelambda.runtime.sources.versioned import (
    VersionedSource,
    check_digest,
    parse_manifest,
)

IN_MEMORY_SUFFIXES = (".onnx",)


class S3Source(VersionedSource):
    def __init__(self, settings: Mapping[str, Any], paths: Any, *, verify: bool) -> None:
        super().__init__(settings, paths, verify=verify)
        self.bucket = str(settings.get("bucket") or "")
        self.prefix = str(settings.get("prefix") or "")
        self._client: Any = None
        self._etag: str | None = None
        self._thread: threading.Thread | None = None
        self._result: Resolved | None = None
        self._error: BaseException | None = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{storelayout.join(self.prefix, self.model)} ({self.alias})"

    @property
    def client(self) -> Any:
        if self._client is None:
            from modelambda.runtime.aws.s3 import S3Client

            self._client = S3Client()
        return self._client

    # --- init ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._first_fetch, daemon=True,
                                            name="modelambda-s3-fetch")
            self._thread.start()

    def _first_fetch(self) -> None:
        try:
            self._result = self._fetch(None)
        except BaseException as exc:
            self._error = exc

    def resolved(self) -> Resolved:
        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._as_load_error(self._error)
        assert self._result is not None
        self.version, self._etag = self._result.version, self._result.token
        return self._result

    def resolve(self) -> str:
        return self.resolved().path

    def _as_load_error(self, exc: BaseException) -> ModelLoadError:
        if isinstance(exc, ModelLoadError):
            return exc
        return ModelLoadError(f"cannot load the model from {self.describe()}: {exc}")

    # --- refresh ------------------------------------------------------------------------

    def poll(self) -> Resolved | None:
        try:
            found = self._fetch(self._etag)
        except BaseException as exc:
            raise self._as_load_error(exc) from exc
        if found is None or found.version == self.version:
            return None
        return found

    def commit(self, resolved: Resolved) -> None:
        previous, self.version, self._etag = self.version, resolved.version, resolved.token
        if previous != resolved.version:
            self.forget(previous)

    def discard(self, resolved: Resolved) -> None:
        if resolved.version != self.version:
            self.forget(resolved.version)

    # --- fetching -----------------------------------------------------------------------

    def _fetch(self, if_none_match: str | None) -> Resolved | None:
        from modelambda.runtime.aws.s3 import S3Error

        start = time.perf_counter()
        alias_key = storelayout.alias_path(self.prefix, self.model, self.alias)
        try:
            response = self.client.get(self.bucket, alias_key, if_none_match=if_none_match)
        except S3Error as exc:
            if exc.status == 404:
                raise ModelLoadError(
                    f"alias {self.alias!r} of model {self.model!r} not found at "
                    f"s3://{self.bucket}/{alias_key}: publish a version and promote it "
                    f"(modelambda models publish/promote)") from exc
            if exc.status == 403:
                # S3 answers 403, not 404, for a missing key when the caller may not list
                # the bucket, and the deployed role may only read the model's prefix
                raise ModelLoadError(
                    f"alias {self.alias!r} of model {self.model!r} at s3://{self.bucket}/"
                    f"{alias_key}: access denied, which S3 also answers for a missing key "
                    f"without s3:ListBucket: publish and promote a version (modelambda models "
                    f"publish/promote), and check that the role may read that prefix") from exc
            raise
        if response.status == 304:
            return None
        try:
            version = storelayout.checked_name(json.loads(response.body)["version"], "version")
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"s3://{self.bucket}/{alias_key} is not a valid alias record: "
                                 f"{exc}") from exc
        if version == self.version and if_none_match is not None:
            self._etag = response.headers.get("etag")  # the record changed, not its version
            return None
        where = f"s3://{self.bucket}/{storelayout.version_dir(self.prefix, self.model, version)}"
        manifest_key = storelayout.manifest_path(self.prefix, self.model, version)
        try:
            manifest = parse_manifest(self.client.get(self.bucket, manifest_key).body, where)
        except S3Error as exc:
            if exc.status == 404:
                raise ModelLoadError(
                    f"alias {self.alias!r} points to version {version!r}, which has no "
                    f"manifest at s3://{self.bucket}/{manifest_key} (missing or incomplete)"
                ) from exc
            raise
        directory = self.scratch(version)
        held: dict[str, int] = {}
        try:
            for rel, info in sorted(manifest["files"].items()):
                key = storelayout.join(storelayout.version_dir(self.prefix, self.model,
                                                               version), rel)
                held.update(self._download(key, rel, info, directory, where))
        except BaseException:
            Resolved(directory, held=held).release()
            raise
        self.timed(start)
        return Resolved(directory, version, token=response.headers.get("etag"),
                        held=held)

    def _download(self, key: str, rel: str, info: Mapping[str, Any], directory: str,
                  where: str) -> dict[str, int]:
        """One file of a version into ``directory``, hashed as it arrives when verifying.

        ONNX files go to an in-memory file (memfd), linked into the directory as
        ``/proc/self/fd/N``: onnxruntime loads them by path (about 150 ms faster for
        MiniLM's 90 MB than from bytes, which it copies), nothing is written to /tmp, and
        the memory is freed once the model is loaded (``Resolved.release``). The other
        files go to /tmp. Returns {link: file descriptor} of what to keep open until then."""
        target = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        in_memory = rel.endswith(IN_MEMORY_SUFFIXES) and hasattr(os, "memfd_create")
        if in_memory:
            fd = os.memfd_create(os.path.basename(rel), os.MFD_CLOEXEC)
        else:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            digest = new_sha256() if self.verify else None
            self.client.download(self.bucket, key, int(info["size"]),
                                 lambda offset, data: os.pwrite(fd, data, offset),
                                 digest=digest)
            if digest is not None:
                check_digest(rel, digest.hexdigest(), info, where)
            if in_memory:
                os.symlink(f"/proc/self/fd/{fd}", target)
                return {target: fd}
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return {}
