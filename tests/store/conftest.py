"""Fixtures for the model stores: an embedded S3 (moto) and services that use it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelambda.local.s3server import EmbeddedS3
from modelambda.modelstore import DirStore, S3Store, Store
from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.spec import ServiceSpec, compile_runtime_config, load_spec
from tests.conftest import MINILM_EXAMPLE, link_minilm

BUCKET = "models"


@pytest.fixture(scope="session")
def s3() -> Iterator[EmbeddedS3]:
    server = EmbeddedS3().start()
    server.ensure_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> EmbeddedS3:
    """The runtime's S3 client in this process reaches the embedded S3."""
    for key, value in s3.environment().items():
        monkeypatch.setenv(key, value)
    return s3


def service(source: Path, target: Path, strategy_toml: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
    if source == MINILM_EXAMPLE:
        link_minilm(target / "model")
    spec = target / "modelambda.toml"
    text = spec.read_text()
    start = text.index("[strategy]")
    end = text.find("\n[", start + 1)
    rest = "" if end < 0 else text[end:]
    spec.write_text(text[:start] + "[strategy]\n" + strategy_toml + "\n" + rest)
    return target


def store_app(spec: ServiceSpec, strategy: str, tmp: Path, efs_dir: Path | None = None,
              lines: list[str] | None = None, verify: bool | None = None,
              **source: Any) -> App:
    """The runtime as a built s3/efs function runs it, in this process (``verify``: the
    spec's ``[model] verify_checksums``, default the strategy's)."""
    chosen = spec.for_strategy(strategy)
    config = compile_runtime_config(chosen, {**chosen.strategy.unit.source(chosen), **source})
    if verify is not None:
        config.model.verify_checksums = verify
    paths = Paths(task_root=str(spec.root), tmp_dir=str(tmp),
                  efs_dir=str(efs_dir) if efs_dir else None)
    config.code_root = str(spec.root)
    return App(config, paths, log=(lines if lines is not None else []).append)


@pytest.fixture
def make_store(s3: EmbeddedS3, tmp_path: Path) -> Callable[[str], Store]:
    def make(kind: str) -> Store:
        if kind == "s3":
            return S3Store(BUCKET, f"t-{tmp_path.name}", s3.client())
        return DirStore(tmp_path / "efs")

    return make


__all__ = ["BUCKET", "load_spec", "service", "store_app"]
