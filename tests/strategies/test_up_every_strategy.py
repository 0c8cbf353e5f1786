"""Every strategy by a flag: `up DIR --strategy S` on plain services (the spec names `bundle`
and nothing else) answers with the bundle's predictions, with no file edited.

Each strategy gets its local defaults: s3 the embedded S3 with a bucket and prefix derived
from the service name, the model published and promoted; efs a store directory under
DIR/.modelambda/ mounted at /mnt/models; endpoint the local endpoint host (SageMaker)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelambda import strategies
from tests.conftest import IRIS, MINILM_DATA, make_app
from tests.strategies.conftest import env_without_aws, up

pytestmark = pytest.mark.slow

ROWS = json.loads((IRIS / "request.json").read_text())
TEXTS = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
REFERENCE = np.load(MINILM_DATA / "reference_embeddings.npy")


@pytest.fixture(scope="module")
def services(plain_services: dict[str, Path]) -> tuple[Path, Path]:
    iris, minilm = plain_services["iris"], plain_services["minilm"]
    for service in (iris, minilm):  # plain services: the spec names no strategy settings
        assert 'kind = "bundle"' in (service / "modelambda.toml").read_text()
    return iris, minilm


def test_all_six_strategies_are_registered() -> None:
    assert strategies.names()[:6] == ("bundle", "layer", "image", "s3", "endpoint", "efs")


@pytest.mark.parametrize("strategy", ["bundle", "layer", "image", "s3", "endpoint", "efs"])
def test_up_answers_like_the_bundle(services: tuple[Path, Path], strategy: str) -> None:
    iris, minilm = services
    before = {p: p.read_text() for p in (iris / "modelambda.toml", minilm / "modelambda.toml")}
    with up(iris, minilm, "--strategy", strategy, env=env_without_aws()) as running:
        status, body = running.post("/fn/iris/", ROWS)
        assert status == 200, body
        assert body["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]
        status, body = running.post("/fn/minilm-embeddings/", {"instances": TEXTS})
        assert status == 200, body
        got = np.array(body["predictions"])
        assert np.abs(got - REFERENCE).max() < 1e-5
    # the banner says which strategy each function runs, and what was started for it
    assert f"iris: strategy {strategy}" in running.text
    if strategy == "s3":
        assert "embedded S3 (moto) at http://127.0.0.1:" in running.text
        assert "in s3://modelambda-iris/models" in running.text
    if strategy == "efs":
        assert (iris / ".modelambda" / "efs" / "iris" / "aliases" / "live").is_symlink()
    if strategy == "endpoint":
        assert "local endpoint host at http://127.0.0.1:" in running.text
    # nothing was edited: the spec's [strategy] stays the default
    assert {p: p.read_text() for p in before} == before
