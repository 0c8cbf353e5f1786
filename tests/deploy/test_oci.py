"""The image strategy's daemonless build and push (``modelambda.package.oci``) against a real
registry (Debian's docker-registry on loopback): a small Lambda-like base image the tests
assemble and push themselves, the iris example's function layered on it."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelambda.package.archive import Entry
from modelambda.package.artifacts import HANDLER, BuildResult
from modelambda.package.build import build
from modelambda.package.oci import (
    LAYER_DOCKER,
    LAYER_OCI,
    PushResult,
    RegistryAuth,
    RegistryError,
    build_and_push,
    ecr_auth,
    write_layer,
)
from modelambda.package.registry import (
    INDEX_OCI,
    MANIFEST_DOCKER,
    MANIFEST_OCI,
    Registry,
    parse_reference,
    sha256_digest,
)
from tests.conftest import IRIS
from tests.deploy.registry import PASSWORD, USER, LocalRegistry, TokenProxy, free_port

BASE_ENV = ["PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin", "LANG=en_US.UTF-8",
            "TZ=:/etc/localtime", "LAMBDA_TASK_ROOT=/var/task",
            "LAMBDA_RUNTIME_DIR=/var/runtime"]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("auth-registry"), htpasswd=True) as running:
        yield running


@pytest.fixture(scope="module")
def iris_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    service = tmp_path_factory.mktemp("iris") / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    return build(service, "image")


@dataclass
class Base:
    reference: str
    manifest: dict[str, object]
    config: dict[str, object]
    layer_digests: list[str]
    diff_ids: list[str]


def make_base_layers(where: Path, arch: str = "amd64") -> list[tuple[str, Path]]:
    """Two layers, like a Lambda base image in miniature: the language, then the runtime."""
    where.mkdir(parents=True, exist_ok=True)
    files = {
        "lang/var/lang/bin/python3.12": f"placeholder interpreter ({arch})\n",
        "runtime/var/runtime/bootstrap": "#!/bin/sh\nexec /var/lang/bin/python3.12 -m "
                                         "awslambdaric \"$_HANDLER\"\n",
        "runtime/lambda-entrypoint.sh": "#!/bin/sh\nexec /var/runtime/bootstrap \"$@\"\n",
    }
    for name, text in files.items():
        path = where / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.endswith((".sh", "bootstrap")):
            path.chmod(0o755)
    layers = []
    for group in ("lang", "runtime"):
        root = where / "src" / group
        members = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*"))
                   if p.is_file()]
        layer = write_layer(members, where / f"{group}.tar.gz")
        layers.append((layer.diff_id, layer.path))
    return layers


def push_base(host: str, repo: str, tag: str, where: Path, *, media: str = MANIFEST_DOCKER,
              arch: str = "amd64", auth: RegistryAuth | None = None) -> Base:
    """Assemble the small base image and push it (blobs, config, manifest) to ``host``."""
    oci = media == MANIFEST_OCI
    client = Registry("http", host, auth)
    layers = make_base_layers(where, arch)
    descriptors, diff_ids = [], []
    for diff_id, path in layers:
        digest = sha256_digest(path.read_bytes())
        client.upload_blob(repo, digest, path)
        descriptors.append({"mediaType": LAYER_OCI if oci else LAYER_DOCKER,
                            "digest": digest, "size": path.stat().st_size})
        diff_ids.append(diff_id)
    config = {
        "architecture": arch, "os": "linux", "created": "2025-01-01T00:00:00Z",
        "config": {"Env": BASE_ENV, "Entrypoint": ["/lambda-entrypoint.sh"],
                   "WorkingDir": "/var/task", "Cmd": ["handler.default"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "ADD lang"},
                    {"created": "2025-01-01T00:00:00Z", "created_by": "ADD runtime"}],
    }
    config_bytes = json.dumps(config).encode()
    client.upload_blob(repo, sha256_digest(config_bytes), config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": media,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci else
                           "application/vnd.docker.container.image.v1+json",
                           "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
                "layers": descriptors}
    client.put_manifest(repo, tag, json.dumps(manifest).encode(), media)
    client.close()
    return Base(f"{host}/{repo}:{tag}", manifest, config, [d["digest"] for d in descriptors],
                diff_ids)


def read_back(host: str, repo: str, ref: str, auth: RegistryAuth | None = None
              ) -> tuple[dict[str, object], dict[str, object], Registry]:
    client = Registry("http", host, auth)
    body, _media, _digest = client.get_manifest(repo, ref, what="pushed image")
    manifest = json.loads(body)
    config = json.loads(client.get_blob(repo, manifest["config"]["digest"], what="config"))
    return manifest, config, client


def layer_members(client: Registry, repo: str, digest: str) -> dict[str, tarfile.TarInfo]:
    data = gzip.decompress(client.get_blob(repo, digest, what="layer"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def task_entries(result: BuildResult) -> list[Entry]:
    return [e for e in result.function.entries if e.name.startswith("task/")]


# --- pushing the iris function ----------------------------------------------------------------


@pytest.mark.parametrize("media", [MANIFEST_DOCKER, MANIFEST_OCI], ids=["docker-v2", "oci"])
def test_iris_image_pushed_onto_base_reads_back_as_built(
        registry: LocalRegistry, iris_build: BuildResult, tmp_path: Path, media: str) -> None:
    flavour = "oci" if media == MANIFEST_OCI else "docker"
    base = push_base(registry.host, f"lambda/python-{flavour}", "3.12", tmp_path / "base",
                     media=media)
    lines: list[str] = []
    started = time.monotonic()
    pushed = build_and_push(iris_build, base=base.reference,
                            target=f"{registry.host}/iris-{flavour}:v1",
                            architecture="x86_64", log=lines.append)
    print(f"first push of iris ({flavour}): {time.monotonic() - started:.2f} s")

    assert pushed.image_uri_by_digest == f"{registry.host}/iris-{flavour}@" \
                                         f"{pushed.manifest_digest}"
    manifest, config, client = read_back(registry.host, f"iris-{flavour}", "v1")
    body, _, digest = client.get_manifest(f"iris-{flavour}", pushed.manifest_digest,
                                          what="by digest")
    assert digest == pushed.manifest_digest and json.loads(body) == manifest
    assert manifest["mediaType"] == media
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert [d["digest"] for d in layers] == [*base.layer_digests, pushed.layer_digest]
    assert layers[-1]["mediaType"] == (LAYER_OCI if media == MANIFEST_OCI else LAYER_DOCKER)
    # the base's layers came across by cross-repository mount, ours and the config uploaded
    assert pushed.mounted_blobs == base.layer_digests
    assert sorted(pushed.uploaded_blobs) == sorted([pushed.layer_digest,
                                                    pushed.config_digest])
    assert pushed.skipped_blobs == []

    inner = config["config"]
    assert isinstance(inner, dict)
    assert inner["Cmd"] == [HANDLER]
    assert inner["Env"] == BASE_ENV
    assert inner["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert inner["WorkingDir"] == "/var/task"
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    rootfs = config["rootfs"]
    assert isinstance(rootfs, dict)
    assert rootfs["diff_ids"] == [*base.diff_ids, pushed.layer_diff_id]
    history = config["history"]
    assert isinstance(history, list) and len(history) == 4
    assert "COPY task/ /var/task/" in history[2]["created_by"]

    # every layer's diff_id is the sha256 of its uncompressed tar
    for descriptor, diff_id in zip(layers, rootfs["diff_ids"], strict=True):
        tar = gzip.decompress(client.get_blob(f"iris-{flavour}", descriptor["digest"],
                                              what="layer"))
        assert sha256_digest(tar) == diff_id

    members = layer_members(client, f"iris-{flavour}", pushed.layer_digest)
    files = {n: m for n, m in members.items() if m.isfile()}
    entries = task_entries(iris_build)
    assert sorted(files) == sorted(f"var/task/{e.name.removeprefix('task/')}" for e in entries)
    data = gzip.decompress(client.get_blob(f"iris-{flavour}", pushed.layer_digest,
                                           what="layer"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for entry in entries:
            member = files[f"var/task/{entry.name.removeprefix('task/')}"]
            assert member.size == entry.size
            assert member.uid == member.gid == 0 and member.mtime == 1
            assert member.mode in (0o644, 0o755)
            if entry.size < 200_000:
                extracted = tar.extractfile(member)
                assert extracted is not None and extracted.read() == entry.source.read_bytes()
    assert all(m.isdir() or m.isfile() for m in members.values())
    assert all(n.startswith("var/task/") for n in members)
    assert list(members) == sorted(members, key=lambda n: n.split("/"))
    assert members["var/task/modelambda.json"].size == (
        iris_build.out / "modelambda.json").stat().st_size
    assert not any(PASSWORD in line for line in lines)
    client.close()


def test_unchanged_second_push_uploads_nothing_and_gives_the_same_digest(
        registry: LocalRegistry, iris_build: BuildResult, tmp_path: Path) -> None:
    base = push_base(registry.host, "lambda/python-again", "3.12", tmp_path / "base")
    target = f"{registry.host}/iris-again:v1"
    started = time.monotonic()
    first = build_and_push(iris_build, base=base.reference, target=target,
                           architecture="x86_64")
    first_s = time.monotonic() - started
    started = time.monotonic()
    second = build_and_push(iris_build, base=base.reference, target=target,
                            architecture="x86_64")
    second_s = time.monotonic() - started
    print(f"iris push: first {first_s:.2f} s, unchanged second {second_s:.2f} s")
    assert second.uploaded_blobs == [] and second.mounted_blobs == []
    assert sorted(second.skipped_blobs) == sorted([*base.layer_digests, first.layer_digest,
                                                   first.config_digest])
    assert second.manifest_digest == first.manifest_digest
    assert second.image_uri_by_digest == first.image_uri_by_digest

    # the layer is reproducible: rebuilt from scratch (no cached tarball), the same bytes
    shutil.rmtree(iris_build.out / "oci")
    third = build_and_push(iris_build, base=base.reference, target=target,
                           architecture="x86_64")
    assert third.layer_digest == first.layer_digest
    assert third.manifest_digest == first.manifest_digest
    assert third.uploaded_blobs == []


def test_changed_file_gives_a_new_layer_and_digest_and_reuses_the_base(
        registry: LocalRegistry, tmp_path: Path) -> None:
    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    base = push_base(registry.host, "lambda/python-change", "3.12", tmp_path / "base")
    target = f"{registry.host}/iris-change:latest"
    first = build_and_push(build(service, "image"), base=base.reference, target=target,
                           architecture="x86_64")
    request = service / "request.json"
    request.write_text(request.read_text() + " \n")  # still the same JSON, other bytes
    rebuilt = build(service, "image")
    second = build_and_push(rebuilt, base=base.reference, target=target,
                            architecture="x86_64")
    assert second.layer_digest != first.layer_digest
    assert second.manifest_digest != first.manifest_digest
    assert sorted(second.uploaded_blobs) == sorted([second.layer_digest,
                                                    second.config_digest])
    assert sorted(second.skipped_blobs) == sorted(base.layer_digests)
    manifest, _config, client = read_back(registry.host, "iris-change", "latest")
    layers = manifest["layers"]
    assert isinstance(layers, list) and layers[-1]["digest"] == second.layer_digest
    members = layer_members(client, "iris-change", second.layer_digest)
    assert members["var/task/request.json"].size == request.stat().st_size
    client.close()


# --- bases: index, other registry, a context directory ----------------------------------------


def small_context(where: Path) -> Path:
    """A hand-made build context (what `modelambda build --strategy image` writes)."""
    context = where / "context"
    (context / "task" / "pkg").mkdir(parents=True)
    (context / "task" / "app.py").write_text("def handle(event, context):\n    return event\n")
    (context / "task" / "pkg" / "__init__.py").write_text("")
    (context / "Dockerfile").write_text('FROM public.ecr.aws/lambda/python:3.12\n'
                                        'COPY task/ ${LAMBDA_TASK_ROOT}/\nCMD ["app.handle"]\n')
    return context


def test_index_base_picks_the_platform_and_a_context_dir_works(
        registry: LocalRegistry, tmp_path: Path) -> None:
    amd = push_base(registry.host, "lambda/multi", "amd64", tmp_path / "amd", arch="amd64",
                    media=MANIFEST_OCI)
    arm = push_base(registry.host, "lambda/multi", "arm64", tmp_path / "arm", arch="arm64",
                    media=MANIFEST_OCI)
    client = Registry("http", registry.host)
    manifests = []
    for image, arch in ((amd, "amd64"), (arm, "arm64")):
        body = json.dumps(image.manifest).encode()
        manifests.append({"mediaType": MANIFEST_OCI, "digest": sha256_digest(body),
                          "size": len(body), "platform": {"os": "linux",
                                                          "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX_OCI,
                        "manifests": manifests}).encode()
    client.put_manifest("lambda/multi", "3.12", index, INDEX_OCI)

    context = small_context(tmp_path)
    pushed = build_and_push(context, base=f"{registry.host}/lambda/multi:3.12",
                            target=f"{registry.host}/small:arm", architecture="arm64")
    manifest, config, reader = read_back(registry.host, "small", "arm")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert [d["digest"] for d in layers[:-1]] == arm.layer_digests != amd.layer_digests
    assert config["architecture"] == "arm64"
    inner = config["config"]
    assert isinstance(inner, dict) and inner["Cmd"] == ["app.handle"]
    assert pushed.base_digest == manifests[1]["digest"]
    files = {n for n, m in layer_members(reader, "small", pushed.layer_digest).items()
             if m.isfile()}
    assert files == {"var/task/app.py", "var/task/pkg/__init__.py"}

    # by digest too; an architecture the index lacks is named with what it has
    by_digest = build_and_push(context, base=f"{registry.host}/lambda/multi@"
                               f"{sha256_digest(index)}", target=f"{registry.host}/small:amd",
                               architecture="x86_64")
    assert by_digest.base_digest == manifests[0]["digest"]
    client.put_manifest("lambda/multi", "amd-only", json.dumps(
        {"schemaVersion": 2, "mediaType": INDEX_OCI, "manifests": manifests[:1]}).encode(),
        INDEX_OCI)
    with pytest.raises(RegistryError, match=r"has no linux/arm64 image \(it has: linux/amd64\)"):
        build_and_push(context, base=f"{registry.host}/lambda/multi:amd-only",
                       target=f"{registry.host}/small:x", architecture="arm64")
    # a single-platform base of the wrong architecture
    with pytest.raises(RegistryError, match="is linux/amd64, but the function is arm64"):
        build_and_push(context, base=amd.reference, target=f"{registry.host}/small:y",
                       architecture="arm64")
    client.close()
    reader.close()


def test_base_from_another_registry_is_pulled_and_uploaded(
        registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELAMBDA_CACHE", str(tmp_path / "cache"))
    with LocalRegistry(tmp_path / "other") as other:
        base = push_base(other.host, "lambda/python", "3.12", tmp_path / "base")
        context = small_context(tmp_path)
        pushed = build_and_push(context, base=base.reference,
                                target=f"{registry.host}/from-other:v1",
                                architecture="x86_64")
    assert pushed.mounted_blobs == []
    assert sorted(pushed.uploaded_blobs) == sorted([*base.layer_digests, pushed.layer_digest,
                                                    pushed.config_digest])
    cached = sorted(p.name for p in (tmp_path / "cache" / "oci" / "blobs" / "sha256").iterdir())
    assert cached == sorted(d.removeprefix("sha256:") for d in base.layer_digests)
    manifest, _config, client = read_back(registry.host, "from-other", "v1")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    for descriptor in layers:  # every blob really is in the target registry
        assert client.blob_exists("from-other", descriptor["digest"])
    client.close()


# --- auth -------------------------------------------------------------------------------------


def test_basic_auth_registry(auth_registry: LocalRegistry, tmp_path: Path) -> None:
    auth = RegistryAuth(USER, PASSWORD)
    base = push_base(auth_registry.host, "lambda/python", "3.12", tmp_path / "base", auth=auth)
    context = small_context(tmp_path)
    lines: list[str] = []
    pushed = build_and_push(context, base=base.reference,
                            target=f"{auth_registry.host}/app:v1", architecture="x86_64",
                            auth=auth, log=lines.append)
    assert pushed.mounted_blobs == base.layer_digests
    assert not any(PASSWORD in line for line in lines)
    assert PASSWORD not in repr(auth)

    with pytest.raises(RegistryError) as refused:
        build_and_push(context, base=base.reference, target=f"{auth_registry.host}/app:v2",
                       architecture="x86_64")
    message = str(refused.value)
    assert "\n" not in message and refused.value.http_status == 401
    assert f"registry {auth_registry.host}" in message and "HTTP 401" in message
    assert "pass credentials" in message

    with pytest.raises(RegistryError) as wrong:
        build_and_push(context, base=base.reference, target=f"{auth_registry.host}/app:v3",
                       architecture="x86_64", auth=RegistryAuth(USER, "not-the-password"))
    assert "HTTP 401" in str(wrong.value) and "check the user name and password" in \
        str(wrong.value)
    assert "not-the-password" not in str(wrong.value)


def test_bearer_token_auth(registry: LocalRegistry, tmp_path: Path) -> None:
    with TokenProxy(registry) as proxy:
        auth = RegistryAuth(USER, PASSWORD)
        base = push_base(proxy.host, "lambda/python-bearer", "3.12", tmp_path / "base",
                         auth=auth)
        proxy.token_requests.clear()
        context = small_context(tmp_path)
        pushed = build_and_push(context, base=base.reference,
                                target=f"{proxy.host}/bearer-app:v1", architecture="x86_64",
                                auth=auth)
        assert pushed.mounted_blobs == base.layer_digests
        # one token for the whole push: the client asks for every scope it will need
        assert len(proxy.token_requests) == 1
        assert "repository:bearer-app:pull,push" in proxy.token_requests[-1]
        assert "repository:lambda/python-bearer:pull" in proxy.token_requests[-1]
        # the password goes to the token service only; the registry sees the token
        assert all(path == "/token" for path, sent in proxy.seen_authorization
                   if sent.startswith("Basic"))
        assert any(sent.startswith("Bearer ") for _, sent in proxy.seen_authorization)

        with pytest.raises(RegistryError) as refused:
            build_and_push(context, base=base.reference, target=f"{proxy.host}/bearer-app:v2",
                           architecture="x86_64")
        message = str(refused.value)
        assert "\n" not in message and "token service" in message and "HTTP 401" in message
        assert "pass credentials" in message


def test_ecr_auth_decodes_the_token() -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        client = boto3.client("ecr", region_name="eu-west-1")
        auth = ecr_auth(client)
        assert auth.username == "AWS"
        assert auth.password == "123456789012-auth-token"
        assert auth.registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        assert "auth-token" not in repr(auth)
        assert ecr_auth(client, "210987654321").password == "210987654321-auth-token"


# --- errors -----------------------------------------------------------------------------------


def test_registry_down_is_one_line_naming_it(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(RegistryError) as down:
        build_and_push(small_context(tmp_path), base=f"127.0.0.1:{port}/lambda/python:3.12",
                       target=f"127.0.0.1:{port}/app:v1", architecture="x86_64")
    message = str(down.value)
    assert "\n" not in message
    assert f"registry 127.0.0.1:{port}" in message and "connection refused" in message
    assert "is the registry running" in message


def test_missing_base_is_a_404_naming_the_reference(registry: LocalRegistry,
                                                    tmp_path: Path) -> None:
    reference = f"{registry.host}/lambda/python:no-such-tag"
    with pytest.raises(RegistryError) as missing:
        build_and_push(small_context(tmp_path), base=reference,
                       target=f"{registry.host}/app:v1", architecture="x86_64")
    message = str(missing.value)
    assert "\n" not in message and missing.value.http_status == 404
    assert f"base image {reference}" in message and "HTTP 404 MANIFEST_UNKNOWN" in message
    assert "does not exist" in message


def test_plain_http_only_for_loopback(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"plain http:// is allowed only for loopback "
                                            r"registries .*use https://registry\.example\.com"):
        build_and_push(small_context(tmp_path), base="http://registry.example.com/py:3.12",
                       target="registry.example.com/app:v1", architecture="x86_64")
    with pytest.raises(RegistryError, match="plain http:// is allowed only for loopback"):
        build_and_push(small_context(tmp_path / "b"), base="public.ecr.aws/lambda/python:3.12",
                       target="http://10.0.0.5:5000/app:v1", architecture="x86_64")
    assert parse_reference("http://localhost:5000/app:v1").scheme == "http"
    assert parse_reference("127.0.0.1:5000/app:v1").scheme == "http"
    assert parse_reference("[::1]:5000/app").scheme == "http"
    assert parse_reference("public.ecr.aws/lambda/python:3.12").scheme == "https"


def test_target_needs_a_tag_and_references_parse(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    with pytest.raises(RegistryError, match="give a tag"):
        build_and_push(small_context(tmp_path), base="127.0.0.1:1/b:1",
                       target=f"127.0.0.1:1/app@{digest}", architecture="x86_64")
    ref = parse_reference(f"public.ecr.aws/lambda/python:3.12@{digest}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.ref) == (
        "public.ecr.aws", "lambda/python", "3.12", digest, digest)
    hub = parse_reference("python:3.12")
    assert (hub.registry, hub.api_host, hub.repository) == (
        "docker.io", "registry-1.docker.io", "library/python")
    assert parse_reference("localhost:5000/a/b").ref == "latest"
    for bad in ("Upper/Case:1", "host.io/repo:bad tag", "host.io/repo@sha256:zz"):
        with pytest.raises(RegistryError):
            parse_reference(bad)


def test_chunked_upload(registry: LocalRegistry) -> None:
    client = Registry("http", registry.host)
    data = bytes(range(256)) * 1000
    digest = sha256_digest(data)
    client.upload_blob("chunks", digest, data, chunk_size=70_000)
    assert client.blob_exists("chunks", digest)
    assert client.get_blob("chunks", digest, what="blob") == data
    client.close()


def test_docker_builder_without_docker_says_so(tmp_path: Path) -> None:
    """builder="docker" shells out to docker build + push; without docker (or its daemon)
    the error is one line saying which."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True,
                                 check=False).returncode == 0:
        pytest.skip("a Docker daemon runs here: the docker path would really build")
    with pytest.raises(RegistryError) as failed:
        build_and_push(small_context(tmp_path), base="public.ecr.aws/lambda/python:3.12",
                       target="127.0.0.1:1/app:v1", architecture="x86_64", builder="docker")
    message = str(failed.value)
    assert "\n" not in message
    if docker:
        assert message.startswith("docker build failed (exit ") and "daemon" in message
        written = (tmp_path / "Dockerfile.docker").read_text()
        assert written.startswith("FROM public.ecr.aws/lambda/python:3.12\n")
    else:
        assert "docker is not installed; the default builder 'oci' needs no daemon" in message


def test_push_result_fields_are_the_api() -> None:
    fields = PushResult.__dataclass_fields__
    for name in ("image_uri_by_digest", "manifest_digest", "uploaded_blobs", "skipped_blobs"):
        assert name in fields
