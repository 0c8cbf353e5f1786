"""Slow: the new formats built as bundles and answered under `up` (one `up` serving them all,
with iris converted from scikit-learn to ONNX beside them), the converted bundle without
scikit-learn or scipy, a damaged model refused at build, and MiniLM quantised to int8."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli.conftest import run_cli
from tests.conftest import IRIS, MINILM_DATA, MINILM_EXAMPLE, make_app
from tests.formats.conftest import iris, make_lightgbm, make_tflite, make_xgboost
from tests.strategies.conftest import env_without_aws, up

pytestmark = pytest.mark.slow

TFLITE_REFERENCE = np.load(Path(__file__).resolve().parents[1] / "data" / "iris-tflite"
                           / "iris_mlp_reference_probs.npy")


def converted_iris(root: Path) -> Path:
    """examples/iris as scikit-learn (skops), converted by `optimize --to onnx` and switched
    to the converted file, the skops file left out of the build."""
    shutil.copytree(IRIS, root, ignore=shutil.ignore_patterns(".modelambda", "model.onnx"))
    (root / "modelambda.toml").write_text(
        '[service]\nname = "iris-converted"\nmemory_mb = 512\n\n[model]\npath = "model.skops"\n'
        '[model.options]\ntrusted_types = ["sklearn.tree._tree.Tree"]\n')
    done = run_cli("optimize", root, "--to", "onnx", "--min-agreement", "1")
    assert done.returncode == 0, done.stderr
    (root / "modelambda.toml").write_text(
        '[service]\nname = "iris-converted"\nmemory_mb = 512\n\n[model]\n'
        'path = "model.sklearn.onnx"\n\n[build]\nexclude_files = ["model.skops", "train.py"]\n')
    return root


def same_answers(got: list[Any], expected: list[Any]) -> None:
    """The bundle's answers are the in-process ones (ONNX as shipped is offline-optimised by
    the build: the same to float32 rounding)."""
    assert len(got) == len(expected)
    if isinstance(expected[0], dict):
        assert [p["label"] for p in got] == [p["label"] for p in expected]
        got = [p["probabilities"] for p in got]
        expected = [p["probabilities"] for p in expected]
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("up-formats")
    return {"iris-tflite": make_tflite(root / "iris-tflite"),
            "iris-xgboost": make_xgboost(root / "iris-xgboost"),
            "iris-lightgbm": make_lightgbm(root / "iris-lightgbm"),
            "iris-converted": converted_iris(root / "iris-converted")}


def test_one_up_serves_every_format_as_a_bundle(services: dict[str, Path]) -> None:
    x, _ = iris()
    batch = {"instances": x.tolist()}
    with up(*services.values(), "--strategy", "bundle", env=env_without_aws()) as running:
        for name, root in services.items():
            status, body = running.post(f"/fn/{name}/", batch)
            assert status == 200, (name, body)
            same_answers(body["predictions"], make_app(root).handle(batch)["predictions"])
            status, body = running.post(f"/fn/{name}/", {"instances": [[5.1, 3.5, 1.4]]})
            assert status == 400 and body["error"]["type"] == "ShapeError", (name, body)
        status, body = running.post("/fn/iris-tflite/", batch)
        np.testing.assert_allclose(body["predictions"], TFLITE_REFERENCE, atol=1e-5)
    for name in services:
        assert f"{name}: strategy bundle" in running.text


def test_the_converted_bundle_ships_no_scikit_learn_or_scipy(services: dict[str, Path]) -> None:
    done = run_cli("build", services["iris-converted"], "--json", timeout=900)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    names = {name.lower().replace("_", "-") for name in manifest["dependencies"]}
    assert "onnxruntime" in names
    assert not {n for n in names if n.startswith(("scikit", "scipy", "skops", "joblib"))}
    contributors = {c["name"] for c in manifest["contributors"]}
    assert not contributors & {"package sklearn", "package scipy", "package scipy.libs"}
    assert "model.skops" not in json.dumps(manifest["artifacts"])


@pytest.mark.parametrize("name,framework,what", [("model.json", "xgboost", "XGBoost"),
                                                 ("model.txt", "lightgbm", "LightGBM"),
                                                 ("model.tflite", "tflite", "TFLite")])
def test_a_damaged_model_is_refused_at_build(tmp_path: Path, name: str, framework: str,
                                             what: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "modelambda.toml").write_text(
        f'[service]\nname = "svc"\n[model]\npath = "{name}"\nframework = "{framework}"\n')
    (root / name).write_bytes(b"\x00not a model\xff" * 10)
    done = run_cli("build", root, timeout=900)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("modelambda build: error: "), last
    assert f"{name} is not a loadable {what} model" in last, last


def test_minilm_int8_keeps_the_embeddings(copy_service: Callable[..., Path]) -> None:
    root = copy_service(MINILM_EXAMPLE)
    done = run_cli("optimize", root, "--quantize", "int8", "--json", timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["new"] == "model.int8"
    assert result["new_bytes"] < 0.3 * result["original_bytes"]
    spec = root / "modelambda.toml"
    spec.write_text(spec.read_text().replace('path = "model"', 'path = "model.int8"'))
    texts = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
    reference = np.load(MINILM_DATA / "reference_embeddings.npy")
    got = np.array(make_app(root).handle({"instances": texts})["predictions"])
    cosine = np.sum(got * reference, axis=1) / (np.linalg.norm(got, axis=1)
                                               * np.linalg.norm(reference, axis=1))
    assert cosine.mean() >= 0.98, cosine
