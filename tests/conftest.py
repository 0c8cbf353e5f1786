"""Shared fixtures: the examples, the real MiniLM model from ../shared, apps built in place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.spec import compile_runtime_config, load_spec

# Tests never talk to an emulator the developer may have running (`modelambda up`).
os.environ["MODELAMBDA_STATE_DIR"] = str(
    Path(tempfile.gettempdir()) / f"modelambda-test-state-{os.getpid()}")
os.environ.pop("MODELAMBDA_ENDPOINT", None)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IRIS = EXAMPLES / "iris"
MINILM_EXAMPLE = EXAMPLES / "minilm-embeddings"
# The real model lives outside the repository (90 MB); CI lays shared/ beside the clone.
SHARED_MINILM = ROOT.parent / "shared" / "models" / "minilm"
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


def link_minilm(model_dir: Path) -> None:
    if not all((SHARED_MINILM / f).is_file() for f in MINILM_FILES):
        pytest.fail(f"the MiniLM model is missing from {SHARED_MINILM} (see shared/models)")
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:  # hard links: a build refuses symlinks out of the service dir
        try:
            os.link(SHARED_MINILM / name, model_dir / name)
        except OSError:
            shutil.copy(SHARED_MINILM / name, model_dir / name)


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
