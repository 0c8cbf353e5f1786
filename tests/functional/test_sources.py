"""Model sources for the local-path strategies, with paths from Lambda's environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelambda.runtime import ConfigError, ModelLoadError
from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.runtime.sources import make_source
from modelambda.spec import compile_runtime_config, load_spec
from tests.conftest import IRIS


def paths(tmp_path: Path) -> Paths:
    return Paths.from_environment({
        "LAMBDA_TASK_ROOT": str(tmp_path / "task"),
        "MODELAMBDA_OPT_DIR": str(tmp_path / "opt"),
        "MODELAMBDA_TMP_DIR": str(tmp_path / "tmp"),
        "MODELAMBDA_EFS_DIR": str(tmp_path / "efs"),
    })


@pytest.mark.parametrize("kind,root", [("bundle", "task"), ("layer", "opt"), ("image", "task")])
def test_each_local_source_resolves_under_its_root(tmp_path: Path, kind: str, root: str) -> None:
    model = tmp_path / root / "model" / "model.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(IRIS / "model.onnx", model)
    source = make_source({"kind": kind, "path": "model/model.onnx"}, paths(tmp_path))
    assert source.resolve() == str(model)


def test_paths_default_to_lambdas() -> None:
    p = Paths.from_environment({})
    assert (p.task_root, p.opt_dir, p.tmp_dir, p.efs_dir) == ("/var/task", "/opt", "/tmp", None)


def test_image_source_takes_an_absolute_path(tmp_path: Path) -> None:
    shutil.copy(IRIS / "model.onnx", tmp_path / "m.onnx")
    source = make_source({"kind": "image", "path": str(tmp_path / "m.onnx")}, paths(tmp_path))
    assert source.resolve() == str(tmp_path / "m.onnx")


def test_relative_paths_cannot_escape_their_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stay inside"):
        make_source({"kind": "layer", "path": "../etc/passwd"}, paths(tmp_path)).resolve()


def test_missing_model_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="rebuild the function"):
        make_source({"kind": "bundle", "path": "model.onnx"}, paths(tmp_path)).resolve()


def test_unknown_source_kind_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model source 'ftp'"):
        make_source({"kind": "ftp"}, paths(tmp_path))


def test_checksums_are_verified_when_asked(tmp_path: Path) -> None:
    # GIVEN a layer-style layout whose model was replaced after its manifest was written
    config = compile_runtime_config(load_spec(IRIS), {"kind": "layer", "path": "model/model.onnx"})
    config = type(config).from_dict({**config.to_dict(), "model": {
        **config.to_dict()["model"], "verify_checksums": True}})
    model = tmp_path / "opt" / "model" / "model.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(IRIS / "model.onnx", model)
    App(config, paths(tmp_path), log=lambda _: None)  # intact: loads
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    model.write_bytes(bytes(data))
    # THEN loading is refused, naming the file
    with pytest.raises(ModelLoadError, match=r"model\.onnx has sha256 .* its manifest says"):
        App(config, paths(tmp_path), log=lambda _: None)
    model.write_bytes(bytes(data[:-10]))
    with pytest.raises(ModelLoadError, match="truncated"):
        App(config, paths(tmp_path), log=lambda _: None)
