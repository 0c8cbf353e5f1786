"""`modelambda optimize` through the console script: conversion of iris (scikit-learn, XGBoost,
LightGBM) to ONNX with every label the same on the whole dataset, int8 quantisation, the check
refusing to write below a threshold, the model store, what_if, and bad input as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelambda import modelstore
from modelambda.optimize.sizes import what_if
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import load_spec
from tests.cli.conftest import one_error_line, run_cli
from tests.conftest import IRIS, make_app
from tests.formats.conftest import iris, make_lightgbm, make_tflite, make_xgboost, write_service

ALL_ROWS = iris()[0].tolist()


def sklearn_service(root: Path) -> Path:
    """The iris example's RandomForest as skops, with all 150 rows as its request.json."""
    shutil.copytree(IRIS, root, ignore=shutil.ignore_patterns(".modelambda", "model.onnx"))
    write_service(root, "iris-sklearn", "model.skops", "sklearn", ALL_ROWS,
                  '\n[model.options]\ntrusted_types = ["sklearn.tree._tree.Tree"]\n')
    return root


def with_all_rows(root: Path) -> Path:
    (root / "request.json").write_text(json.dumps({"instances": ALL_ROWS}))
    return root


def optimize(*args: str | Path) -> dict[str, Any]:
    done = run_cli("optimize", *args, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def tiny_mlp(root: Path) -> Path:
    """An ONNX MLP (4 -> 256 -> 256 -> 3, softmax) with weights worth quantising."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 256)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(256, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.06, (256, 256)).astype(np.float32), "w2")
    w3 = numpy_helper.from_array(rng.normal(0, 0.06, (256, 3)).astype(np.float32), "w3")
    nodes = [helper.make_node("MatMul", ["input", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["r2"]),
             helper.make_node("MatMul", ["r2", "w3"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        [w1, b1, w2, w3])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    root.mkdir(parents=True)
    onnx.save(model, str(root / "model.onnx"))
    return write_service(root, "mlp", "model.onnx", "onnx", ALL_ROWS[:20])


# --- conversion: 100 % label agreement on iris, nothing of the original touched --------------


@pytest.mark.parametrize("framework", ["sklearn", "xgboost", "lightgbm"])
def test_iris_converts_to_onnx_with_every_label_the_same(tmp_path: Path, framework: str) -> None:
    make = {"sklearn": sklearn_service, "xgboost": make_xgboost, "lightgbm": make_lightgbm}
    root = with_all_rows(make[framework](tmp_path / "svc"))
    spec_text = (root / "modelambda.toml").read_text()
    original = load_spec(root).model_path
    digest = sha256_file(original)

    result = optimize(root, "--to", "onnx", "--check", "150", "--min-agreement", "1")

    check = result["check"]
    assert check["inputs"] == check["from_examples"] == 150
    assert check["label_agreement"] == 1.0
    assert check["max_diff"] < 1e-5 and check["max_diff_output"] == "probabilities"
    new = root / result["new"]
    assert new.name == f"{original.stem}.{framework}.onnx"
    assert sha256_file(original) == digest  # the original is never touched
    assert (root / "modelambda.toml").read_text() == spec_text  # nor the spec
    # the new version answers the whole dataset with the original's labels
    switched = root / "modelambda.toml"
    switched.write_text(spec_text.split("[model]")[0] + f'[model]\npath = "{new.name}"\n')
    before_labels = iris()[1]
    answer = make_app(root).handle({"instances": ALL_ROWS})["predictions"]
    agreement = np.mean([p["label"] for p in answer] == before_labels)
    assert agreement >= 0.95  # the models' own training accuracy on iris


def test_a_second_run_never_replaces_the_first(tmp_path: Path) -> None:
    root = make_xgboost(tmp_path / "svc")
    first = optimize(root, "--to", "onnx")
    digest = sha256_file(root / first["new"])
    done = run_cli("optimize", root, "--to", "onnx")
    line = one_error_line(done, "optimize")
    assert "model.xgboost.onnx exists" in line and "never replaces" in line
    assert sha256_file(root / first["new"]) == digest
    second = optimize(root, "--to", "onnx", "--output", "v2/model.onnx")
    assert second["new"] == "v2/model.onnx"


def test_below_the_threshold_nothing_is_written(tmp_path: Path) -> None:
    root = with_all_rows(make_lightgbm(tmp_path / "svc"))
    done = run_cli("optimize", root, "--to", "onnx", "--max-diff", "0")
    line = one_error_line(done, "optimize")
    assert "refused: model.lightgbm.onnx was not written" in line
    assert "above --max-diff 0" in line and "label agreement 100.00%" in line
    assert not (root / "model.lightgbm.onnx").exists()
    assert not list((root / ".modelambda" / "optimize").glob("work-*"))
    report = json.loads((root / ".modelambda" / "optimize" / "model.lightgbm.onnx.json")
                        .read_text())
    assert report["written"] is False and report["check"]["passed"] is False


def test_generated_rows_fill_the_check_up(tmp_path: Path) -> None:
    root = make_xgboost(tmp_path / "svc")  # request.json: 2 rows
    check = optimize(root, "--to", "onnx", "--check", "300")["check"]
    assert (check["from_examples"], check["generated"]) == (2, 298)
    assert check["label_agreement"] >= 0.99


# --- int8 ------------------------------------------------------------------------------------


def test_an_mlp_quantises_to_int8_and_is_checked(tmp_path: Path) -> None:
    root = tiny_mlp(tmp_path / "mlp")
    result = optimize(root, "--quantize", "int8", "--check", "200")
    assert result["new"] == "model.int8.onnx"
    assert result["new_bytes"] < result["original_bytes"] * 0.5
    assert result["check"]["mean_cosine"] > 0.99
    assert result["check"]["generated"] == 180
    assert any("MatMulInteger" in step for step in result["steps"])


def test_int8_publishes_to_the_store_and_moves_the_alias(tmp_path: Path) -> None:
    root = tiny_mlp(tmp_path / "mlp")
    store_dir = tmp_path / "store"
    result = optimize(root, "--quantize", "int8", "--store", store_dir, "--alias", "live",
                      "--version", "int8-1")
    assert result["published"] == "int8-1"
    store = modelstore.open_store(str(store_dir))
    manifest = modelstore.manifest(store, "mlp", "int8-1")
    assert manifest is not None and manifest["framework"] == "onnx"
    assert manifest["inputs"][0]["name"] == "input"
    assert modelstore.aliases(store, "mlp")["live"]["version"] == "int8-1"


def test_a_converted_version_is_published_without_an_alias(tmp_path: Path) -> None:
    root = make_lightgbm(tmp_path / "svc")
    line = one_error_line(run_cli("optimize", root, "--to", "onnx", "--store",
                                  tmp_path / "store", "--alias", "live"), "optimize")
    assert "runs the lightgbm backend, which cannot load an ONNX version" in line
    result = optimize(root, "--to", "onnx", "--store", tmp_path / "store")
    store = modelstore.open_store(str(tmp_path / "store"))
    assert modelstore.versions(store, "iris-lightgbm") == [result["published"]]


# --- what_if, for advise --------------------------------------------------------------------


def test_what_if_estimates_then_measures(tmp_path: Path) -> None:
    root = make_xgboost(tmp_path / "svc")
    [before] = what_if(load_spec(root))
    assert before["change"] == "onnx" and before["check"] is None
    assert before["model"]["source"] == "estimate"
    assert "xgboost-cpu" in before["dependencies"]["drops"]
    assert before["dependencies"]["bytes_after"] < before["dependencies"]["bytes_before"]
    optimize(root, "--to", "onnx")
    [after] = what_if(load_spec(root))
    assert after["model"]["source"] == "measured"
    assert after["written"] is True and after["path"] == "model.xgboost.onnx"
    assert after["check"]["passed"] is True and "label agreement" in after["summary"]
    assert after["unzipped_delta_bytes"] < 0


def test_what_if_for_onnx_models(tmp_path: Path) -> None:
    [mlp] = what_if(load_spec(tiny_mlp(tmp_path / "mlp")))
    assert mlp["change"] == "int8" and mlp["summary"].startswith("int8: model")
    assert mlp["model"]["bytes_after"] < mlp["model"]["bytes_before"]
    assert what_if(load_spec(IRIS)) == []  # a tree ensemble: int8 changes nothing
    assert what_if(load_spec(make_tflite(tmp_path / "tfl"))) == []


# --- bad input: one line, exit 2, no traceback ----------------------------------------------


def test_a_converter_without_a_conversion_names_the_step(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.neighbors import NearestCentroid

    x, y = iris()
    root = write_service(tmp_path / "svc", "svc", "model.skops", "sklearn")
    sio.dump(NearestCentroid().fit(x, y), root / "model.skops")
    line = one_error_line(run_cli("optimize", root, "--to", "onnx"), "optimize")
    assert "no converter for NearestCentroid" in line, line
    assert "sklearn.neighbors._nearest_centroid.NearestCentroid" in line


@pytest.mark.parametrize("make,args,fragment", [
    (sklearn_service, ("--quantize", "int8"),
     "--quantize int8 needs an ONNX model; model.skops is a sklearn model: convert it first"),
    (make_tflite, ("--quantize", "int8"), "model.tflite is a tflite model"),
    (make_tflite, ("--to", "onnx"), "converting tflite models to ONNX is not supported"),
    (lambda root: shutil.copytree(IRIS, root), ("--quantize", "int8"),
     "int8 quantisation changes nothing in model.onnx"),
    (lambda root: shutil.copytree(IRIS, root), ("--to", "onnx"), "already ONNX"),
    (make_xgboost, (), "nothing to do"),
    (make_xgboost, ("--to", "onnx", "--alias", "live"), "--alias needs a model store"),
    (make_xgboost, ("--to", "onnx", "--output", "../x.onnx"), "inside the service directory"),
])
def test_bad_requests_are_one_line(tmp_path: Path, make: Any, args: tuple[str, ...],
                                   fragment: str) -> None:
    root = tmp_path / "svc"
    make(root)
    before = sorted(p.name for p in root.iterdir())
    line = one_error_line(run_cli("optimize", root, *args), "optimize")
    assert fragment in line, line
    assert sorted(p.name for p in root.iterdir() if p.name != ".modelambda") == [
        n for n in before if n != ".modelambda"]


@pytest.mark.parametrize("name,framework,what", [("model.json", "xgboost", "XGBoost"),
                                                 ("model.txt", "lightgbm", "LightGBM"),
                                                 ("model.tflite", "tflite", "TFLite")])
def test_a_damaged_model_is_one_line_at_load(tmp_path: Path, name: str, framework: str,
                                             what: str) -> None:
    root = write_service(tmp_path / "svc", "svc", name, framework)
    (root / name).write_bytes(b"\x00not a model\xff" * 10)
    line = one_error_line(run_cli("invoke", root, "--data", json.dumps({"instances": [
        [1.0, 2.0, 3.0, 4.0]]})), "invoke")
    assert f"{name} is not a loadable {what} model" in line, line
    if framework != "tflite":
        line = one_error_line(run_cli("optimize", root, "--to", "onnx"), "optimize")
        assert f"{name} is not a loadable {what} model" in line, line


def test_optimize_help_has_examples() -> None:
    done = run_cli("optimize", "--help")
    assert done.returncode == 0 and "examples:" in done.stdout
    assert "--min-agreement" in done.stdout and "--store" in done.stdout
