"""Model sources for the local-path strategies, with paths from Lambda's environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelambda.runtime import ConfigError, DependencyMissing, ModelLoadError
from modelambda.runtime.app import App
from modelambda.runtime.config import RuntimeConfig
from modelambda.runtime.paths import Paths
from modelambda.runtime.sources import ModelSource, make_source
from modelambda.spec import compile_runtime_config, load_spec
from tests.conftest import IRIS


def local_source(settings: dict[str, object], tmp_path: Path) -> ModelSource:
    return make_source(settings, paths(tmp_path), verify=False)


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
    source = local_source({"kind": kind, "path": "model/model.onnx"}, tmp_path)
    assert source.resolve() == str(model)


def test_paths_default_to_lambdas() -> None:
    p = Paths.from_environment({})
    assert (p.task_root, p.opt_dir, p.tmp_dir, p.efs_dir) == ("/var/task", "/opt", "/tmp", None)


def test_image_source_takes_an_absolute_path(tmp_path: Path) -> None:
    shutil.copy(IRIS / "model.onnx", tmp_path / "m.onnx")
    source = local_source({"kind": "image", "path": str(tmp_path / "m.onnx")}, tmp_path)
    assert source.resolve() == str(tmp_path / "m.onnx")


def test_relative_paths_cannot_escape_their_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stay inside"):
        local_source({"kind": "layer", "path": "../etc/passwd"}, tmp_path).resolve()


def test_missing_model_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="rebuild the function"):
        local_source({"kind": "bundle", "path": "model.onnx"}, tmp_path).resolve()


def test_unknown_source_kind_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model source 'ftp'"):
        local_source({"kind": "ftp"}, tmp_path)


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


# --- a plugin's source: named by class in the settings ------------------------------------


class FixedPath(ModelSource):
    """A plugin strategy's source: the model at the settings' ``at``."""

    def resolve(self) -> str:
        return str(self.settings["at"])


class SelfChecking(FixedPath):
    verifies_checksums = True  # checks its files itself (here: claims to), when verify is set


HERE = __name__


def test_settings_can_name_the_source_class(tmp_path: Path) -> None:
    source = make_source({"kind": "plugin", "class": f"{HERE}:FixedPath", "at": "/m"},
                         paths(tmp_path), verify=True)
    assert isinstance(source, FixedPath) and source.resolve() == "/m" and source.verify
    # the class is used before the built-in table
    source = make_source({"kind": "bundle", "class": f"{HERE}:FixedPath", "at": "/m"},
                         paths(tmp_path), verify=False)
    assert type(source) is FixedPath and source.verify is False


@pytest.mark.parametrize("target,error,message", [
    ("no_such_module_here:Source", DependencyMissing, "cannot be imported"),
    ("os:path", ConfigError, "not a modelambda ModelSource"),
    (f"{HERE}:Missing", ConfigError, "not a modelambda ModelSource"),
    ("just-a-name", ConfigError, "must look like 'module:Class'"),
])
def test_a_bad_source_class_is_named(tmp_path: Path, target: str, error: type[Exception],
                                     message: str) -> None:
    with pytest.raises(error, match=message):
        make_source({"kind": "plugin", "class": target}, paths(tmp_path), verify=False)


def test_the_app_checks_files_only_for_sources_that_do_not(tmp_path: Path) -> None:
    # GIVEN a config asking for checksums, whose recorded sha256 no longer matches the model
    def config_for(cls: str) -> RuntimeConfig:
        config = compile_runtime_config(load_spec(IRIS), {
            "kind": "plugin", "class": f"{HERE}:{cls}", "at": str(IRIS / "model.onnx")})
        config.model.verify_checksums = True
        config.model.files["model.onnx"]["sha256"] = "0" * 64
        return config

    # THEN a source that checks its own files is trusted with them (and told to check)
    app = App(config_for("SelfChecking"), paths(tmp_path), log=lambda _: None)
    assert app.source.verify is True
    # AND for any other source the app checks the files against the config
    with pytest.raises(ModelLoadError, match=r"model\.onnx has sha256"):
        App(config_for("FixedPath"), paths(tmp_path), log=lambda _: None)


# --- whether to verify: the config's model.verify_checksums, nothing else -------------------


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_store_sources_take_verify_from_the_caller_only(tmp_path: Path, kind: str) -> None:
    settings = {"kind": kind, "model": "iris", "bucket": "b"}
    assert make_source(settings, paths(tmp_path), verify=False).verify is False
    assert make_source(settings, paths(tmp_path), verify=True).verify is True
    # a "verify" in the source settings is not a second switch
    assert make_source({**settings, "verify": True}, paths(tmp_path), verify=False).verify \
        is False


def test_a_config_without_verify_checksums_means_false(tmp_path: Path) -> None:
    config = compile_runtime_config(load_spec(IRIS), {"kind": "bundle", "path": "model.onnx"})
    data = config.to_dict()
    del data["model"]["verify_checksums"]
    assert RuntimeConfig.from_dict(data).model.verify_checksums is False
    data["model"]["verify_checksums"] = "yes"
    with pytest.raises(ConfigError, match="verify_checksums must be true or false"):
        RuntimeConfig.from_dict(data)
