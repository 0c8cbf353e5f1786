"""`modelambda models`: publish --model (another file as a new version), and the embedded S3
of a running `up` used when the shell names no S3 endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelambda import modelstore
from modelambda.cli.main import main
from modelambda.local import state
from modelambda.local.s3server import EmbeddedS3, free_port
from modelambda.modelstore import DirStore, S3Store
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import version_of
from tests.cli.conftest import copy_iris
from tests.conftest import IRIS


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("modelambda models: error: ")
    return lines[0]


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    return copy_iris(tmp_path / "iris")


@pytest.fixture
def retrained(tmp_path: Path) -> Path:
    """A different, valid ONNX file (the iris model with another doc string)."""
    import onnx

    model = onnx.load(str(IRIS / "model.onnx"))
    model.doc_string = "retrained on more flowers"
    path = tmp_path / "retrained" / "iris-v2.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path))
    return path


# --- publish --model --------------------------------------------------------------------


def test_publish_model_adds_a_version_laid_out_as_the_specs(
        iris: Path, retrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "store"
    assert main(["models", "publish", str(iris), "--store", str(store_dir),
                 "--alias", "live"]) == 0
    first = modelstore.versions(DirStore(store_dir), "iris")
    capsys.readouterr()

    assert main(["models", "publish", str(iris), "--store", str(store_dir),
                 "--model", str(retrained), "--alias", "live"]) == 0
    # the default version is a hash of the new file, as the spec's own model would get
    version = version_of({"model.onnx": {"sha256": sha256_file(retrained)}})
    out = capsys.readouterr().out
    assert out.strip() == (f"published iris version {version} ({retrained}) to {store_dir}; "
                           f"live -> {version}")
    store = DirStore(store_dir)
    assert sorted(modelstore.versions(store, "iris")) == sorted([*first, version])
    manifest = modelstore.manifest(store, "iris", version)
    assert manifest is not None and manifest["framework"] == "onnx"
    assert list(manifest["files"]) == ["model.onnx"]  # the spec's file name: hooks find it
    assert manifest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert modelstore.aliases(store, "iris")["live"]["version"] == version
    assert modelstore.aliases(store, "iris")["live"]["previous"] == first
    # what was stored loads and predicts like the original
    from modelambda.runtime.backends.onnx import OnnxBackend

    backend = OnnxBackend()
    backend.load(str(store_dir / "iris" / "versions" / version / "model.onnx"))
    assert [s.name for s in backend.inputs()] == ["input"]


def test_publish_model_with_a_version_and_never_overwriting(
        iris: Path, retrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    args = ["models", "publish", str(iris), "--store", store, "--model", str(retrained)]
    assert main([*args, "--version", "2"]) == 0
    assert "published iris version 2 " in capsys.readouterr().out
    assert main([*args, "--version", "2"]) == 2
    assert "publishing never overwrites" in one_line_error(capsys)


def test_publish_model_of_the_same_bytes_is_the_specs_version(
        iris: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy.onnx"
    copy.write_bytes((IRIS / "model.onnx").read_bytes())
    store = str(tmp_path / "store")
    assert main(["models", "publish", str(iris), "--store", store]) == 0
    assert main(["models", "publish", str(iris), "--store", store, "--model", str(copy)]) == 2
    assert "exists: publishing never overwrites" in one_line_error(capsys)


@pytest.mark.parametrize("model,message", [
    ("missing.onnx", "--model {path}: no such file or directory"),
    ("model.skops", "--model {path} is a sklearn model (by .skops), the service's is onnx"),
    ("weights.bin", "--model {path}: cannot tell its framework from .bin"),
    ("a-dir", "the service's model (model.onnx) is a file; publish a file of the same layout"),
    ("broken.onnx", "--model {path}: not a model the service can load"),
])
def test_publish_model_refuses_what_the_service_cannot_load(
        iris: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str,
        message: str) -> None:
    path = tmp_path / model
    if model == "model.skops":
        path.write_bytes((IRIS / "model.skops").read_bytes())
    elif model == "weights.bin":
        path.write_bytes(b"\0" * 16)
    elif model == "a-dir":
        path.mkdir()
        (path / "model.onnx").write_bytes((IRIS / "model.onnx").read_bytes())
    elif model == "broken.onnx":
        path.write_bytes(b"not an onnx graph")
    store = tmp_path / "store"
    assert main(["models", "publish", str(iris), "--store", str(store),
                 "--model", str(path)]) == 2
    assert message.format(path=path) in one_line_error(capsys)
    assert modelstore.versions(DirStore(store), "iris") == []  # nothing half-published


def test_publish_model_refuses_a_pickle_unless_the_spec_trusts_pickles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_iris(tmp_path / "iris")
    spec = root / "modelambda.toml"
    spec.write_text(spec.read_text().replace('path = "model.onnx"\nframework = "onnx"',
                                             'path = "model.skops"\nframework = "sklearn"'))
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"never read")
    assert main(["models", "publish", str(root), "--store", str(tmp_path / "store"),
                 "--model", str(pickle)]) == 2
    line = one_line_error(capsys)
    assert "model.pkl is a pickle" in line and "trust_pickle = true" in line


# --- the embedded S3 of a running `up` ----------------------------------------------------


@pytest.fixture(scope="module")
def embedded_s3() -> Iterator[EmbeddedS3]:
    server = EmbeddedS3().start()
    server.ensure_bucket("models")
    yield server
    server.stop()


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS settings at all, an empty home, and emulator records of this test only."""
    import os

    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches what it found before
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELAMBDA_STATE_DIR", str(tmp_path / "emulators"))
    monkeypatch.delenv("MODELAMBDA_ENDPOINT", raising=False)


@pytest.fixture
def up_record(embedded_s3: EmbeddedS3, no_aws: None) -> Iterator[str]:
    """A running `up` (this process) that serves iris with the embedded S3."""
    url = f"http://127.0.0.1:{free_port()}"
    state.register(url, ["iris"], {"s3_url": embedded_s3.url})
    yield url
    state.unregister(url)


def s3_iris(tmp_path: Path, prefix: str) -> Path:
    return copy_iris(tmp_path / "iris", f'kind = "s3"\nbucket = "models"\nprefix = "{prefix}"')


def test_models_use_the_embedded_s3_of_a_running_up(
        up_record: str, embedded_s3: EmbeddedS3, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = s3_iris(tmp_path, "running-up")
    assert main(["models", "publish", str(root), "--alias", "live"]) == 0
    captured = capsys.readouterr()
    assert f"using the embedded S3 at {embedded_s3.url} of the running `modelambda up`" in \
        captured.err
    version = captured.out.split(" version ")[1].split()[0]
    # it is really in the embedded S3, where the running function reads it
    store = S3Store("models", "running-up", embedded_s3.client())
    assert modelstore.versions(store, "iris") == [version]
    assert main(["models", "list", str(root)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["store"] == "s3://models/running-up"
    assert listing["aliases"]["live"]["version"] == version
    store.client.close()


def test_an_s3_endpoint_in_the_shell_wins_over_a_running_up(
        up_record: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["models", "list", str(s3_iris(tmp_path, "shell"))]) == 2
    line = one_line_error(capsys)
    assert f"cannot reach {closed}" in line


def test_a_running_up_of_other_functions_is_not_used(
        embedded_s3: EmbeddedS3, no_aws: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    state.register(url, ["another-service"], {"s3_url": embedded_s3.url})
    try:
        assert main(["models", "list", str(s3_iris(tmp_path, "other"))]) == 2
    finally:
        state.unregister(url)
    assert "no AWS credentials found" in one_line_error(capsys)
