"""The versioned model store for the ``s3`` and ``efs`` strategies: publish, promote,
rollback, list, gc. The layout is ``runtime/storelayout.py``; the runtime reads it.

Rules: publishing never overwrites a version (the manifest, written last, marks it complete);
promote and rollback only move an alias; gc removes versions no alias points to (nor keeps
as its rollback target), never one in use. On S3 an alias is a small JSON object; on EFS a
symlink switched with an atomic rename, with its history in a JSON file beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import modelambda
from modelambda.errors import ModelambdaError
from modelambda.runtime import storelayout
from modelambda.runtime.integrity import sha256_file


class StoreError(ModelambdaError):
    """A model store operation that cannot be done as asked."""


class Store(ABC):
    """Where versions and aliases live; keys are relative to the store's root."""

    @abstractmethod
    def describe(self, key: str = "") -> str: ...

    @abstractmethod
    def read(self, key: str) -> bytes | None: ...

    @abstractmethod
    def write(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def upload(self, key: str, file: Path) -> None: ...

    @abstractmethod
    def children(self, key: str) -> list[str]:
        """Names directly under ``key`` (one level)."""

    @abstractmethod
    def delete_tree(self, key: str) -> None: ...

    @abstractmethod
    def point_alias(self, model: str, alias: str, version: str) -> None:
        """Make the alias resolve to ``version`` (what the runtime reads)."""

    def alias_names(self, model: str) -> list[str]:
        return self.children(storelayout.join(model, "aliases"))

    def alias_record(self, model: str, alias: str) -> dict[str, Any] | None:
        data = self.read(self._record_key(model, alias))
        return json.loads(data) if data else None

    def _record_key(self, model: str, alias: str) -> str:
        return storelayout.alias_path("", model, alias)

    def save_alias_record(self, model: str, alias: str, record: dict[str, Any]) -> None:
        self.write(self._record_key(model, alias), json.dumps(record).encode())


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            import boto3  # the CLI side: boto3 is fine here

            client = boto3.client("s3")
        self.client = client

    def _key(self, key: str) -> str:
        return storelayout.join(self.prefix, key)

    def describe(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))[
                "Body"].read()
            return body
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def upload(self, key: str, file: Path) -> None:
        self.client.upload_file(str(file), self.bucket, self._key(key))

    def children(self, key: str) -> list[str]:
        prefix = self._key(key) + "/"
        names: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            names.update(p["Prefix"][len(prefix):].rstrip("/") for p in
                         page.get("CommonPrefixes", []))
            names.update(o["Key"][len(prefix):] for o in page.get("Contents", []))
        return sorted(names)

    def delete_tree(self, key: str) -> None:
        prefix = self._key(key) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})

    def point_alias(self, model: str, alias: str, version: str) -> None:
        pass  # the alias record (JSON object) is what the runtime reads on S3


class DirStore(Store):
    """A directory: an EFS file system as mounted, or its local stand-in for ``up``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, key: str = "") -> str:
        return str(self.root / key)

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)  # readers see the old or the new file, never half of one

    def upload(self, key: str, file: Path) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)

    def children(self, key: str) -> list[str]:
        path = self.root / key
        return sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) \
            if path.is_dir() else []

    def delete_tree(self, key: str) -> None:
        shutil.rmtree(self.root / key, ignore_errors=True)

    def alias_names(self, model: str) -> list[str]:
        base = self.root / model / "aliases"  # the records: ".<alias>.json"
        return sorted(p.name[1:-5] for p in base.glob(".*.json")) if base.is_dir() else []

    def _record_key(self, model: str, alias: str) -> str:
        # the alias itself is a symlink; its history lives beside it
        return storelayout.join(model, "aliases", f".{alias}.json")

    def point_alias(self, model: str, alias: str, version: str) -> None:
        link = self.root / storelayout.alias_path("", model, alias)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{alias}.link{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(Path("..") / "versions" / version)
        os.replace(tmp, link)  # atomic: a reader follows the old link or the new one


def _names(**names: str) -> None:
    for what, value in names.items():
        try:
            storelayout.checked_name(value, what)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc


def open_store(url: str, s3_client: Any = None) -> Store:
    """``s3://bucket/prefix`` or a directory path."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise StoreError(f"store {url!r}: no bucket; use s3://BUCKET/PREFIX")
        return S3Store(bucket, prefix, s3_client)
    return DirStore(Path(url))


# --- operations --------------------------------------------------------------------------


def versions(store: Store, model: str) -> list[str]:
    return [v for v in store.children(storelayout.join(model, "versions"))
            if store.read(storelayout.manifest_path("", model, v)) is not None]


def manifest(store: Store, model: str, version: str) -> dict[str, Any] | None:
    data = store.read(storelayout.manifest_path("", model, version))
    return json.loads(data) if data else None


def publish(store: Store, model: str, version: str, files: dict[str, Path], *,
            framework: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Upload one version: the files, then the manifest that marks it complete."""
    _names(model=model, version=version)
    if manifest(store, model, version) is not None:
        raise StoreError(f"{store.describe(storelayout.version_dir('', model, version))} "
                         "exists: publishing never overwrites a version; pick another "
                         "--version")
    entries = {rel: {"sha256": sha256_file(path), "size": path.stat().st_size}
               for rel, path in sorted(files.items())}
    for rel, path in sorted(files.items()):
        store.upload(storelayout.join(storelayout.version_dir("", model, version), rel), path)
    record = {"format": 1, "model": model, "version": version, "framework": framework,
              "files": entries, **(schema or {}),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "publisher": f"modelambda {modelambda.__version__}"}
    store.write(storelayout.manifest_path("", model, version),
                json.dumps(record, indent=1).encode())
    return record


def promote(store: Store, model: str, version: str, alias: str) -> str | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before."""
    _names(model=model, version=version, alias=alias)
    if manifest(store, model, version) is None:
        known = ", ".join(versions(store, model)) or "none"
        raise StoreError(f"model {model!r} has no complete version {version!r} in "
                         f"{store.describe()}; versions: {known}")
    record = store.alias_record(model, alias) or {"version": None, "previous": []}
    before: str | None = record.get("version")
    if before == version:
        return before
    history = [v for v in record.get("previous", []) if v != version]
    if before:
        history.insert(0, before)
    store.point_alias(model, alias, version)
    store.save_alias_record(model, alias, {
        "version": version, "previous": history[:20],
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return before


def rollback(store: Store, model: str, alias: str) -> tuple[str, str]:
    """Move ``alias`` back to the version it pointed at before; returns (from, to)."""
    _names(model=model, alias=alias)
    record = store.alias_record(model, alias)
    if not record or not record.get("previous"):
        raise StoreError(f"alias {alias!r} of {model!r} has no earlier version to roll back to")
    current, target = record["version"], record["previous"][0]
    if manifest(store, model, target) is None:
        raise StoreError(f"the previous version {target!r} is gone from the store")
    store.point_alias(model, alias, target)
    store.save_alias_record(model, alias, {
        "version": target, "previous": record["previous"][1:],
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return current, target


def aliases(store: Store, model: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name in store.alias_names(model):
        record = store.alias_record(model, name)
        if record:
            out[name] = record
    return out


def gc(store: Store, model: str, dry_run: bool = False) -> list[str]:
    """Remove versions that no alias points to or keeps as its rollback target."""
    keep = set()
    for record in aliases(store, model).values():
        keep.add(record["version"])
        keep.update(record.get("previous", [])[:1])
    # only complete versions: one without its manifest may be a publish in progress
    removable = [v for v in versions(store, model) if v not in keep]
    if not dry_run:
        for version in removable:
            store.delete_tree(storelayout.version_dir("", model, version))
    return removable


# --- a service's model -------------------------------------------------------------------


def model_schema(spec: Any) -> dict[str, Any]:
    """Input/output schema read from the model itself; empty, with the reason on stderr,
    when this machine cannot load it (a model for another platform is still published)."""
    import sys

    from modelambda.runtime.app import App
    from modelambda.runtime.errors import ModelambdaError as RuntimeError_
    from modelambda.runtime.paths import Paths
    from modelambda.spec import compile_runtime_config

    try:
        app = App(compile_runtime_config(spec), Paths.from_environment(),
                  log=lambda _line: None)
        meta = app.metadata()
    except (RuntimeError_, ImportError, OSError, ValueError) as exc:
        print(f"modelambda: the model's input/output schema is left out of the version's "
              f"manifest: it cannot be loaded here ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return {}
    return {"inputs": meta["inputs"], "outputs": meta["outputs"]}


def publish_service(spec: Any, store: Store, *, version: str | None = None,
                    alias: str | None = None, exist_ok: bool = False) -> str:
    """Publish a service's model (as a build ships it) and optionally point an alias at it.

    The default version is the spec's, else a hash of the model files: the same model
    publishes as the same version, so ``exist_ok`` makes publishing idempotent."""
    from modelambda.package.build import publishable_model
    from modelambda.spec import model_files, version_of

    chosen = version or spec.model.version or version_of(model_files(spec.model_path))
    model = spec.model.name
    if manifest(store, model, chosen) is None:
        work = spec.root / ".modelambda" / "publish"
        files = publishable_model(spec, work)
        publish(store, model, chosen, files, framework=spec.model.framework,
                schema=model_schema(spec))
        shutil.rmtree(work, ignore_errors=True)
    elif not exist_ok:
        raise StoreError(f"version {chosen!r} of {model!r} is already published in "
                         f"{store.describe()}; publishing never overwrites: pass --version")
    if alias:
        promote(store, model, chosen, alias)
    return chosen


def default_store(spec: Any, s3_client: Any = None) -> Store:
    """The store a service's strategy reads (its S3 bucket and prefix; for efs the local
    directory that ``up`` mounts at the mount path)."""
    store: Store | None = spec.strategy.unit.store(spec, s3_client)
    if store is not None:
        return store
    raise StoreError(f"strategy {spec.strategy.kind!r} has no model store; use --store "
                     "s3://BUCKET/PREFIX or a directory")
