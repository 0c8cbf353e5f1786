"""The ``image`` strategy's container image, built and pushed without a Docker daemon.

As ``crane append``, ko and jib do: the function's files (the build context's ``task/``) become
ONE new layer, a reproducible tarball (sorted, fixed mtimes, uid/gid 0, mode 0644 or 0755,
under the base's ``LAMBDA_TASK_ROOT``, ``/var/task``), put on top of the Lambda Python base
image's layers. The new image config is the base's with ``Cmd`` set to the handler, the
layer's diff_id appended to ``rootfs.diff_ids`` and a history entry; the manifest has the
base's flavour (OCI image manifest or Docker v2 schema 2). Pushing is the OCI distribution
API (``modelambda.package.registry``): blobs the target already has are skipped, base layers
in the same registry are mounted, the rest uploaded; the manifest is put under the tag and
its digest read back.

    result = build(service_dir, "image")
    pushed = build_and_push(result, base="public.ecr.aws/lambda/python:3.12",
                            target="123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:v1",
                            architecture="x86_64", auth=ecr_auth(boto3.client("ecr")))
    pushed.image_uri_by_digest   # what Lambda's ImageUri takes

``builder="docker"`` (or ``"podman"``) runs ``docker build`` + ``docker push`` on the context
instead, for those who have one.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

import modelambda
from modelambda.package.artifacts import HANDLER, BuildResult
from modelambda.package.registry import (
    INDEX_OCI,
    MANIFEST_DOCKER,
    MANIFEST_LIST_DOCKER,
    MANIFEST_OCI,
    Reference,
    Registry,
    RegistryAuth,
    RegistryError,
    parse_reference,
    sha256_digest,
)

Log = Callable[[str], None]

CONFIG_OCI = "application/vnd.oci.image.config.v1+json"
CONFIG_DOCKER = "application/vnd.docker.container.image.v1+json"
LAYER_OCI = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_DOCKER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
PLATFORMS = {"x86_64": "amd64", "arm64": "arm64"}
TASK_ROOT = "/var/task"
# Every file in our layer has this mtime: 1970-01-01T00:00:01Z (as jib: some tools take 0 for
# "unset"). The bytecode the build ships is unchecked-hash, so no mtime makes it stale.
LAYER_MTIME = 1
GZIP_LEVEL = 1  # as go-containerregistry (crane, ko): Lambda caches the image anyway
LAYER_FORMAT = 1  # bump when the layer's bytes change for the same files
EPOCH_ISO = "1970-01-01T00:00:00Z"


def _quiet(_line: str) -> None:
    pass


@dataclass
class PushResult:
    """A pushed image. ``uploaded_blobs`` were sent, ``skipped_blobs`` the target repository
    already had, ``mounted_blobs`` came from the base's repository in the same registry
    without a byte sent; together they are every layer and the config."""

    image_uri_by_digest: str  # registry/repo@sha256:...: what Lambda's ImageUri takes
    manifest_digest: str
    uploaded_blobs: list[str]
    skipped_blobs: list[str]
    mounted_blobs: list[str] = field(default_factory=list)
    image_uri: str = ""  # registry/repo:tag
    config_digest: str = ""
    layer_digest: str = ""  # our layer, compressed
    layer_diff_id: str = ""  # our layer, uncompressed
    media_type: str = ""
    base_digest: str = ""  # the base's platform manifest
    seconds: float = 0.0


@dataclass(frozen=True)
class Layer:
    """A gzipped layer tarball on disk."""

    path: Path
    digest: str  # sha256 of the gzipped bytes
    diff_id: str  # sha256 of the tar
    size: int


@dataclass
class BaseImage:
    reference: Reference
    manifest_digest: str
    media_type: str  # MANIFEST_OCI or MANIFEST_DOCKER
    layers: list[dict[str, Any]]  # descriptors as in the base's manifest
    config: dict[str, Any]


# --- the function's files ---------------------------------------------------------------------


def function_files(context_or_result: BuildResult | Path | str) -> tuple[list[tuple[str, Path]],
                                                                          str, Path]:
    """(task-root-relative name -> file, handler, work directory) of a build or a context
    directory (with ``task/`` and a ``Dockerfile``)."""
    if isinstance(context_or_result, BuildResult):
        result = context_or_result
        handler = str(result.manifest.get("handler") or HANDLER)
        task = [(e.name.removeprefix("task/"), e.source) for e in result.function.entries
                if e.name.startswith("task/")]
        if task:  # a reused build carries no entries: its context has the same files
            return task, handler, result.out / "oci"
        context, work = result.function.path, result.out / "oci"
    else:
        context = Path(context_or_result)
        work = context.parent / "oci" if context.name == "context" else \
            _cache_root() / "oci" / "contexts" / hashlib.sha256(
                str(context.resolve()).encode()).hexdigest()[:16]
        handler = _dockerfile_cmd(context / "Dockerfile") or HANDLER
    root = context / "task"
    if not root.is_dir():
        raise RegistryError(f"{context}: not an image build context (no task/ directory): "
                            "run `modelambda build DIR --strategy image` first")
    files = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()]
    return files, handler, work


def _dockerfile_cmd(dockerfile: Path) -> str:
    try:
        text = dockerfile.read_text()
    except OSError:
        return ""
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    if match:
        try:
            cmd = json.loads(match.group(1))
        except ValueError:
            return ""
        if isinstance(cmd, list) and cmd and isinstance(cmd[0], str):
            return cmd[0]
    return ""


def _cache_root() -> Path:
    return Path(os.environ.get("MODELAMBDA_CACHE") or Path.home() / ".cache" / "modelambda")


# --- the layer --------------------------------------------------------------------------------


class _Hashing:
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: BinaryIO | gzip.GzipFile) -> None:
        self.sink, self.hasher, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()

    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def write_layer(files: Sequence[tuple[str, Path]], dest: Path, *, below: str = "",
                level: int = GZIP_LEVEL) -> Layer:
    """Write ``files`` (archive path -> source) as a reproducible gzipped tar layer: entries
    sorted, parent directories strictly below ``below`` included (0755; the base has the
    ones above), mtime ``LAYER_MTIME``, uid/gid 0, no user names, mode 0755 for files
    executable by their owner and 0644 otherwise."""
    names = [_check_member(name) for name, _ in files]
    if len(set(names)) != len(names):
        raise RegistryError("two files would land at the same path in the image layer")
    sources = dict(zip(names, (source for _, source in files), strict=True))
    root = PurePosixPath(below.strip("/")) if below.strip("/") else None
    directories = {p.as_posix() for n in names for p in PurePosixPath(n).parents
                   if p.as_posix() != "." and (root is None or root in p.parents)}
    members = sorted([*directories, *names], key=lambda n: PurePosixPath(n).parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    with tmp.open("wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed,
                           compresslevel=level, mtime=0) as zipped:
            uncompressed = _Hashing(zipped)
            with tarfile.open(fileobj=uncompressed, mode="w|",  # type: ignore[call-overload]
                              format=tarfile.PAX_FORMAT) as tar:
                for name in members:
                    if name in sources:
                        _add_file(tar, name, sources[name])
                    else:
                        tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, 0))
    tmp.replace(dest)
    return Layer(dest, compressed.digest(), uncompressed.digest(), compressed.size)


def _check_member(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise RegistryError(f"file {name!r} would land outside the image's task root")
    return path.as_posix()


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, LAYER_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, name: str, source: Path) -> None:
    with source.open("rb") as handle:
        status = os.fstat(handle.fileno())
        mode = 0o755 if status.st_mode & stat.S_IXUSR else 0o644
        tar.addfile(_info(name, tarfile.REGTYPE, mode, status.st_size), handle)


def _layer_for(files: list[tuple[str, Path]], task_root: str, work: Path, log: Log) -> Layer:
    """The function's layer, reused from ``work`` when the same files (names, sizes, mtimes,
    modes) were layered last time."""
    prefix = task_root.strip("/")
    placed = sorted((f"{prefix}/{name}", source) for name, source in files)
    described = []
    for name, source in placed:
        status = source.stat()
        described.append([name, status.st_size, status.st_mtime_ns,
                          bool(status.st_mode & stat.S_IXUSR)])
    key = hashlib.sha256(json.dumps([LAYER_FORMAT, GZIP_LEVEL, described]).encode()).hexdigest()
    record, path = work / "layer.json", work / "layer.tar.gz"
    try:
        cached = json.loads(record.read_text())
        if cached["key"] == key and path.stat().st_size == cached["size"]:
            log(f"layer unchanged: reusing {path}")
            return Layer(path, cached["digest"], cached["diff_id"], cached["size"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    started = time.monotonic()
    layer = write_layer(placed, path, below=prefix)
    record.write_text(json.dumps({"key": key, "digest": layer.digest, "diff_id": layer.diff_id,
                                  "size": layer.size}) + "\n")
    log(f"layer: {len(placed)} files under {task_root}/, {layer.size:,} bytes gzipped "
        f"({time.monotonic() - started:.1f} s), {layer.digest}")
    return layer


# --- the base ---------------------------------------------------------------------------------


def resolve_base(registry: Registry, ref: Reference, architecture: str, log: Log = _quiet
                 ) -> BaseImage:
    """The base image's manifest (the linux/<arch> one from an index) and config."""
    if architecture not in PLATFORMS:
        raise RegistryError(f"architecture {architecture!r}: expected one of "
                            f"{', '.join(PLATFORMS)}")
    platform = PLATFORMS[architecture]
    what = f"base image {ref.name}"
    body, media, digest = registry.get_manifest(ref.repository, ref.ref, what=what)
    document = _json(body, what, registry)
    if media in (INDEX_OCI, MANIFEST_LIST_DOCKER) or "manifests" in document:
        chosen = _pick_platform(document, platform, what)
        log(f"base: {ref.name} is an index; linux/{platform} is {chosen}")
        body, media, digest = registry.get_manifest(ref.repository, chosen,
                                                    what=f"{what} (linux/{platform})")
        document = _json(body, what, registry)
    if media not in (MANIFEST_OCI, MANIFEST_DOCKER):
        raise RegistryError(f"{what}: manifest type {media or 'unknown'} is not supported "
                            "(expected an OCI image manifest or Docker v2 schema 2)")
    config_digest = str(document.get("config", {}).get("digest", ""))
    config = _json(registry.get_blob(ref.repository, config_digest, what="the base's config"),
                   what, registry)
    layers = [dict(d) for d in document.get("layers", [])]
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(layers):
        raise RegistryError(f"{what}: its config lists {len(diff_ids)} diff_ids for "
                            f"{len(layers)} layers; the base image is malformed")
    found = f"{config.get('os', '?')}/{config.get('architecture', '?')}"
    if found != f"linux/{platform}":
        raise RegistryError(f"{what} is {found}, but the function is {architecture} "
                            f"(linux/{platform}): use the base image for {architecture}")
    log(f"base: {ref.name} {digest} ({len(layers)} layers, "
        f"{sum(int(d.get('size', 0)) for d in layers):,} bytes)")
    return BaseImage(ref, digest, media, layers, config)


def _json(body: bytes, what: str, registry: Registry) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise RegistryError(f"registry {registry.label}: {what}: the registry answered "
                            "with something that is not a JSON object")
    return document


def _pick_platform(index: dict[str, Any], platform: str, what: str) -> str:
    offered = []
    candidates = []
    for entry in index.get("manifests", []):
        p = entry.get("platform") or {}
        offered.append(f"{p.get('os', '?')}/{p.get('architecture', '?')}"
                       + (f"/{p['variant']}" if p.get("variant") else ""))
        if p.get("os") == "linux" and p.get("architecture") == platform:
            candidates.append(entry)
    if not candidates:
        raise RegistryError(f"{what} has no linux/{platform} image (it has: "
                            f"{', '.join(offered) or 'nothing'})")
    # arm64: prefer variant v8 (or none), as docker does
    candidates.sort(key=lambda e: (e.get("platform", {}).get("variant") not in (None, "v8")))
    return str(candidates[0]["digest"])


# --- the image --------------------------------------------------------------------------------


def task_root_of(config: dict[str, Any]) -> str:
    for item in (config.get("config") or {}).get("Env") or []:
        name, _, value = str(item).partition("=")
        if name == "LAMBDA_TASK_ROOT" and value.startswith("/"):
            return value.rstrip("/") or TASK_ROOT
    return TASK_ROOT


def image_config(base: BaseImage, layer: Layer, handler: str, task_root: str) -> bytes:
    """The base's config with ``Cmd`` = the handler, our layer's diff_id and history."""
    config = copy.deepcopy(base.config)
    inner = config.get("config") or {}
    inner["Cmd"] = [handler]
    config["config"] = inner
    config["rootfs"] = {"type": "layers",
                        "diff_ids": [*config["rootfs"]["diff_ids"], layer.diff_id]}
    created = str(config.get("created") or EPOCH_ISO)
    config["history"] = [*(config.get("history") or []),
                         {"created": created,
                          "created_by": f"COPY task/ {task_root}/ # modelambda "
                                        f"{modelambda.__version__}",
                          "comment": "modelambda: the function's files"},
                         {"created": created, "created_by": f'CMD ["{handler}"]',
                          "empty_layer": True}]
    return _canonical(config)


def image_manifest(base: BaseImage, layer: Layer, config: bytes) -> bytes:
    oci = base.media_type == MANIFEST_OCI
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": base.media_type,
        "config": {"mediaType": CONFIG_OCI if oci else CONFIG_DOCKER,
                   "digest": sha256_digest(config), "size": len(config)},
        "layers": [*base.layers, {"mediaType": LAYER_OCI if oci else LAYER_DOCKER,
                                  "digest": layer.digest, "size": layer.size}],
    }
    if oci:
        manifest["annotations"] = {"org.opencontainers.image.base.name": base.reference.name,
                                   "org.opencontainers.image.base.digest":
                                       base.manifest_digest}
    return _canonical(manifest)


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# --- the push ---------------------------------------------------------------------------------


def build_and_push(context_or_result: BuildResult | Path | str, *, base: str, target: str,
                   architecture: str, auth: RegistryAuth | None = None,
                   base_auth: RegistryAuth | None = None, log: Log | None = None,
                   builder: Literal["oci", "docker", "podman"] = "oci") -> PushResult:
    """Put the build's function files as one layer on ``base`` (a reference, pulled by the
    registry API, platform-selected for ``architecture``) and push the image to ``target``
    (``registry/repo:tag``). ``auth`` is for the target's registry, ``base_auth`` for the
    base's (default: ``auth`` when both are in the same registry, else anonymous)."""
    say = log or _quiet
    started = time.monotonic()
    files, handler, work = function_files(context_or_result)
    if builder != "oci":
        return _push_with_cli(builder, context_or_result, base, target, architecture, auth,
                              say, started)
    base_ref = parse_reference(base, what="base image")
    target_ref = parse_reference(target, what="target image")
    if target_ref.digest:
        raise RegistryError(f"target image {target!r}: give a tag (registry/repo:tag), not a "
                            "digest: the digest is known only once the image is built")
    same_registry = (base_ref.scheme, base_ref.api_host) == (target_ref.scheme,
                                                             target_ref.api_host)
    destination = Registry.for_reference(target_ref, auth, say)
    if same_registry and (base_auth is None or base_auth == auth):
        source = destination
    else:
        source = Registry.for_reference(base_ref, base_auth, say)
    destination.expect(push=[target_ref.repository],
                       pull=[base_ref.repository] if same_registry else [])
    source.expect(pull=[base_ref.repository])
    try:
        base_image = resolve_base(source, base_ref, architecture, say)
        task_root = task_root_of(base_image.config)
        layer = _layer_for(files, task_root, work, say)
        config = image_config(base_image, layer, handler, task_root)
        manifest = image_manifest(base_image, layer, config)
        work.mkdir(parents=True, exist_ok=True)
        (work / "config.json").write_bytes(config)
        (work / "manifest.json").write_bytes(manifest)
        result = PushResult("", sha256_digest(manifest), [], [], image_uri=target_ref.name,
                            config_digest=sha256_digest(config), layer_digest=layer.digest,
                            layer_diff_id=layer.diff_id, media_type=base_image.media_type,
                            base_digest=base_image.manifest_digest)
        repo = target_ref.repository
        for descriptor in base_image.layers:
            _push_base_layer(destination, repo, source, base_image, descriptor,
                             same_registry, result, say)
        _push_blob(destination, repo, layer.digest, layer.path, "our layer", result, say)
        _push_blob(destination, repo, result.config_digest, config, "config", result, say)
        digest = destination.put_manifest(repo, target_ref.tag or "latest", manifest,
                                          base_image.media_type)
    finally:
        destination.close()
        source.close()
    if digest != result.manifest_digest:
        say(f"the registry reports manifest digest {digest}, not {result.manifest_digest}")
    result.manifest_digest = digest
    result.image_uri_by_digest = target_ref.by_digest(digest)
    result.seconds = round(time.monotonic() - started, 2)
    say(f"pushed {result.image_uri_by_digest}: {len(result.uploaded_blobs)} blobs uploaded, "
        f"{len(result.mounted_blobs)} mounted, {len(result.skipped_blobs)} already there "
        f"({result.seconds:.1f} s)")
    return result


def _push_blob(registry: Registry, repo: str, digest: str, data: bytes | Path, what: str,
               result: PushResult, log: Log) -> None:
    if registry.blob_exists(repo, digest):
        result.skipped_blobs.append(digest)
        log(f"{what} {digest[:19]}: already in {repo}")
        return
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    log(f"{what} {digest[:19]}: uploading {size:,} bytes")
    registry.upload_blob(repo, digest, data)
    result.uploaded_blobs.append(digest)


def _push_base_layer(destination: Registry, repo: str, source: Registry, base: BaseImage,
                     descriptor: dict[str, Any], same_registry: bool, result: PushResult,
                     log: Log) -> None:
    digest = str(descriptor["digest"])
    media = str(descriptor.get("mediaType", ""))
    if "foreign" in media or "nondistributable" in media:
        log(f"base layer {digest[:19]}: non-distributable, not pushed")
        return
    if destination.blob_exists(repo, digest):
        result.skipped_blobs.append(digest)
        log(f"base layer {digest[:19]}: already in {repo}")
        return
    location = None
    if same_registry:
        location = destination.mount_blob(repo, digest, base.reference.repository)
        if location is None:
            result.mounted_blobs.append(digest)
            log(f"base layer {digest[:19]}: mounted from {base.reference.repository}")
            return
    cached = _cache_root() / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")
    if not (cached.is_file() and cached.stat().st_size == int(descriptor.get("size", -1))):
        log(f"base layer {digest[:19]}: downloading {int(descriptor.get('size', 0)):,} bytes")
        source.download_blob(base.reference.repository, digest, cached)
    log(f"base layer {digest[:19]}: uploading")
    destination.upload_blob(repo, digest, cached, location=location)
    result.uploaded_blobs.append(digest)


# --- ECR --------------------------------------------------------------------------------------


def ecr_auth(ecr_client: Any, registry_id: str | None = None) -> RegistryAuth:
    """Credentials for an ECR registry from ``ecr.get_authorization_token`` (valid 12 hours):
    its token is base64 ``AWS:password``. ``registry`` is the endpoint's host."""
    kwargs = {"registryIds": [registry_id]} if registry_id else {}
    answer = ecr_client.get_authorization_token(**kwargs)
    try:
        data = answer["authorizationData"][0]
        user, sep, password = base64.b64decode(data["authorizationToken"]).decode().partition(
            ":")
    except (KeyError, IndexError, TypeError, ValueError):
        raise RegistryError("ECR get_authorization_token answered without a usable "
                            "authorizationToken; check the ECR endpoint and region") from None
    if not sep or not user:
        raise RegistryError("ECR's authorization token is not user:password; check the ECR "
                            "endpoint")
    host = urllib.parse.urlsplit(str(data.get("proxyEndpoint", ""))).netloc
    return RegistryAuth(user, password, host)


# --- docker / podman --------------------------------------------------------------------------


def _push_with_cli(tool: str, context_or_result: BuildResult | Path | str, base: str,
                   target: str, architecture: str, auth: RegistryAuth | None, log: Log,
                   started: float) -> PushResult:
    """``docker build`` + ``docker push`` of the context (or podman's), FROM ``base``."""
    exe = shutil.which(tool)
    if exe is None:
        raise RegistryError(f"builder {tool!r}: {tool} is not installed; the default "
                            "builder 'oci' needs no daemon")
    context = context_or_result.function.path if isinstance(context_or_result, BuildResult) \
        else Path(context_or_result)
    target_ref = parse_reference(target, what="target image")
    dockerfile = context.parent / f"Dockerfile.{tool}"
    text = (context / "Dockerfile").read_text()
    dockerfile.write_text(re.sub(r"^FROM\s+\S+", f"FROM {base}", text, count=1,
                                 flags=re.MULTILINE))
    if auth is not None:
        _run(tool, [exe, "login", "--username", auth.username, "--password-stdin",
                    target_ref.registry], log, stdin=auth.password)
    _run(tool, [exe, "build", "--platform", f"linux/{PLATFORMS[architecture]}", "-f",
                str(dockerfile), "-t", target_ref.name, str(context)], log)
    digest_file = context.parent / f"digest.{tool}"
    extra = ["--digestfile", str(digest_file)] if tool == "podman" else []
    output = _run(tool, [exe, "push", *extra, target_ref.name], log)
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    digest = found.group(1) if found else (
        digest_file.read_text().strip() if digest_file.is_file() else "")
    if not digest:
        raise RegistryError(f"{tool} push {target_ref.name}: the pushed digest could not be "
                            "read from its output")
    return PushResult(target_ref.by_digest(digest), digest, [], [], image_uri=target_ref.name,
                      seconds=round(time.monotonic() - started, 2))


def _run(tool: str, command: list[str], log: Log, stdin: str | None = None) -> str:
    log(" ".join(command[:2]) + " ...")
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RegistryError(f"{tool} {command[1]} failed (exit {done.returncode}): {last}")
    return done.stdout + done.stderr


__all__ = ["BaseImage", "Layer", "PushResult", "RegistryAuth", "RegistryError",
           "build_and_push", "ecr_auth", "function_files", "image_config", "image_manifest",
           "resolve_base", "write_layer"]
