"""TFLite, XGBoost and LightGBM backends: registration, the spec's framework detection, every
event format, the inference contract and every bad request of the ONNX backend's tests, in
process (the bundles under `up` are in test_up_formats.py)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelambda.errors import SpecError
from modelambda.runtime import errors
from modelambda.runtime.app import App
from modelambda.runtime.backends import BUILTIN, registered
from modelambda.runtime.errors import ModelLoadError
from modelambda.spec import load_spec
from tests.conftest import make_app
from tests.formats.conftest import (
    FORMATS,
    ROWS,
    TFLITE_DATA,
    iris,
    labels,
    make_lightgbm,
    make_tflite,
    make_xgboost,
    train_lightgbm,
    train_xgboost,
    write_service,
)
from tests.functional.test_bad_input import CASES, furl_error
from tests.functional.test_bad_input import furl_event as body_event
from tests.functional.test_event_formats import HTTP_EVENTS, V1_KEYS, load_event
from tests.functional.test_event_formats import furl_event as method_event

REFERENCE = np.load(TFLITE_DATA / "iris_mlp_reference_probs.npy")


@pytest.fixture(scope="module")
def apps(services: dict[str, Path]) -> dict[str, App]:
    return {name: make_app(root) for name, root in services.items()}


def expected_outputs(framework: str) -> set[str]:
    return {"output_0"} if framework == "tflite" else {"label", "probabilities"}


# --- registration and the spec --------------------------------------------------------------


def test_the_three_backends_are_registered_like_the_others() -> None:
    from importlib.metadata import entry_points

    declared = {ep.name: ep.value for ep in entry_points(group="modelambda.backends")}
    for framework in FORMATS:
        assert declared[framework] == BUILTIN[framework] == registered()[framework]


@pytest.mark.parametrize("model,framework", [("model.tflite", "tflite"),
                                             ("model.ubj", "xgboost"),
                                             ("model.json", "xgboost"),
                                             ("model.lgb", "lightgbm"),
                                             ("model.txt", "lightgbm")])
def test_the_spec_tells_the_framework_without_being_told(tmp_path: Path, model: str,
                                                         framework: str) -> None:
    suffix = Path(model).suffix
    if framework == "tflite":
        root = make_tflite(tmp_path / "svc")
    elif framework == "xgboost":
        root = make_xgboost(tmp_path / "svc", suffix=suffix, framework=None)
    else:
        root = make_lightgbm(tmp_path / "svc", suffix=suffix, framework=None)
    assert load_spec(root).model.framework == framework


def test_a_json_file_that_is_not_xgboost_needs_the_framework(tmp_path: Path) -> None:
    root = write_service(tmp_path / "svc", "svc", "model.json", None)
    (root / "model.json").write_text('{"tokenizer": {"version": [1]}}')
    with pytest.raises(SpecError) as caught:
        load_spec(root)
    (problem,) = caught.value.problems
    assert "[model] framework (missing)" in problem and '"xgboost"' in problem


def test_a_text_file_that_is_not_lightgbm_needs_the_framework(tmp_path: Path) -> None:
    root = write_service(tmp_path / "svc", "svc", "model.txt", None)
    (root / "model.txt").write_text("notes about the model\n")
    with pytest.raises(SpecError, match=r"\.txt file can be many things.*lightgbm"):
        load_spec(root)


# --- the contract: the same request through every event format ------------------------------


@pytest.mark.parametrize("framework", FORMATS)
def test_direct_invoke_answers_the_iris_classes(apps: dict[str, App], framework: str) -> None:
    answer = apps[framework].handle({"instances": ROWS})
    assert set(answer) == {"predictions", "model_name", "model_version"}
    assert answer["model_name"] == f"iris-{framework}"
    assert labels(answer["predictions"]) == [0, 2]
    for prediction in answer["predictions"]:
        probabilities = prediction if framework == "tflite" else prediction["probabilities"]
        assert len(probabilities) == 3
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("framework", FORMATS)
@pytest.mark.parametrize("event", sorted(HTTP_EVENTS))
def test_every_http_event_gives_the_direct_answer(apps: dict[str, App], framework: str,
                                                  event: str) -> None:
    app = apps[framework]
    direct = app.handle(load_event("direct.json"))
    request = load_event(event)
    original = copy.deepcopy(request)
    response = app.handle(request)
    assert request == original
    assert set(response) == HTTP_EVENTS[event][1]
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == direct
    if HTTP_EVENTS[event][1] == V1_KEYS:
        assert isinstance(response["multiValueHeaders"], dict)


@pytest.mark.parametrize("framework", FORMATS)
def test_get_returns_the_models_metadata(apps: dict[str, App], framework: str) -> None:
    app = apps[framework]
    response = app.handle(method_event("GET", f"/v2/models/iris-{framework}"))
    assert response["statusCode"] == 200
    meta = json.loads(response["body"])
    assert meta["platform"] == framework
    [tensor] = meta["inputs"]
    assert tensor["shape"] == [-1, 4]
    assert tensor["datatype"] == ("FP64" if framework == "lightgbm" else "FP32")
    assert {o["name"] for o in meta["outputs"]} == expected_outputs(framework)


@pytest.mark.parametrize("framework", FORMATS)
def test_a_v2_request_gets_the_same_numbers(apps: dict[str, App], framework: str) -> None:
    app = apps[framework]
    direct = app.handle({"instances": ROWS})["predictions"]
    body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                        "data": [x for row in ROWS for x in row]}]}
    outputs = {o["name"]: o for o in app.handle(body)["outputs"]}
    assert set(outputs) == expected_outputs(framework)
    if framework == "tflite":
        assert outputs["output_0"]["shape"] == [2, 3]
        assert outputs["output_0"]["data"] == pytest.approx([x for p in direct for x in p])
    else:
        assert outputs["label"]["data"] == [0, 2]
        assert outputs["probabilities"]["data"] == pytest.approx(
            [x for p in direct for x in p["probabilities"]])


# --- bad requests: each case of the ONNX backend's tests, then a good request ------------------


def bad_cases(framework: str) -> list[Any]:
    out = []
    for name, case in CASES.items():
        if name == "overflows_float32" and framework == "lightgbm":
            continue  # LightGBM takes float64 rows: 1e39 is a valid number there
        out.append(pytest.param(framework, case, id=f"{framework}-{name}"))
    return out


def still_serves(app: App) -> None:
    assert labels(app.handle({"instances": ROWS})["predictions"]) == [0, 2]
    response = app.handle(body_event(json.dumps({"instances": ROWS})))
    assert response["statusCode"] == 200


@pytest.mark.parametrize("framework,case", [c for f in FORMATS for c in bad_cases(f)])
def test_bad_request_through_function_url(apps: dict[str, App], framework: str,
                                          case: Any) -> None:
    app = apps[framework]
    status, error_type, message = furl_error(app, body_event(case.body))
    assert (status, error_type) == (case.status, case.error.__name__), message
    for fragment in case.fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    still_serves(app)


@pytest.mark.parametrize("framework,case", [c for f in FORMATS for c in bad_cases(f)])
def test_bad_request_as_direct_invoke(apps: dict[str, App], framework: str,
                                      case: Any) -> None:
    app = apps[framework]
    with pytest.raises(case.error) as caught:
        app.handle(case.direct)
    assert caught.value.error_type == type(caught.value).__name__ == case.error.__name__
    still_serves(app)


@pytest.mark.parametrize("framework", FORMATS)
def test_a_batch_over_max_batch_is_refused(tmp_path: Path, framework: str) -> None:
    make = {"tflite": make_tflite, "xgboost": make_xgboost, "lightgbm": make_lightgbm}
    root = make[framework](tmp_path / "svc")
    spec = root / "modelambda.toml"
    spec.write_text(spec.read_text() + "max_batch = 2\n")
    app = make_app(root)
    with pytest.raises(errors.BatchTooLarge, match="at most 2"):
        app.handle({"instances": [*ROWS, ROWS[0]]})
    still_serves(app)


# --- TFLite: batches of any size from a model fixed at batch 1 --------------------------------


def test_tflite_answers_150_rows_like_keras(apps: dict[str, App]) -> None:
    x, _ = iris()
    answer = np.array(apps["tflite"].handle({"instances": x.tolist()})["predictions"])
    assert answer.shape == (150, 3)
    np.testing.assert_allclose(answer, REFERENCE, atol=1e-5)


def test_tflite_batch_sizes_can_change_between_requests(apps: dict[str, App]) -> None:
    x, _ = iris()
    app = apps["tflite"]
    for start, size in ((0, 1), (1, 150 - 1), (3, 7), (100, 1), (10, 50)):
        answer = np.array(app.handle({"instances": x[start:start + size].tolist()})[
            "predictions"])
        np.testing.assert_allclose(answer, REFERENCE[start:start + size], atol=1e-5)


def test_tflite_row_by_row_when_the_graph_cannot_be_resized(services: dict[str, Path]) -> None:
    app = make_app(services["tflite"])
    backend = app.backend
    interpreter = backend.interpreter

    class Fixed:  # an interpreter whose inputs cannot be resized
        def __getattr__(self, name: str) -> Any:
            return getattr(interpreter, name)

        def resize_tensor_input(self, index: int, shape: list[int]) -> None:
            if shape[0] != 1:
                raise RuntimeError("tensor is fixed at batch 1")
            interpreter.resize_tensor_input(index, shape)

    backend.interpreter = Fixed()
    x, _ = iris()
    answer = np.array(app.handle({"instances": x[:20].tolist()})["predictions"])
    np.testing.assert_allclose(answer, REFERENCE[:20], atol=1e-5)
    assert backend._resizable is False


# --- XGBoost and LightGBM: objectives -----------------------------------------------------------


@pytest.mark.parametrize("objective", ["binary:logistic", "binary:logitraw"])
def test_xgboost_binary_classifiers_answer_two_probabilities(tmp_path: Path,
                                                             objective: str) -> None:
    root = write_service(tmp_path / "svc", "svc", "model.ubj", None)
    train_xgboost(root / "model.ubj", objective)
    predictions = make_app(root).handle({"instances": ROWS})["predictions"]
    assert [p["label"] for p in predictions] == [0, 1]
    for p in predictions:
        assert len(p["probabilities"]) == 2 and sum(p["probabilities"]) == pytest.approx(1.0)


def test_xgboost_softmax_answers_labels_and_probabilities(tmp_path: Path) -> None:
    root = write_service(tmp_path / "svc", "svc", "model.json", "xgboost")
    train_xgboost(root / "model.json", "multi:softmax")
    predictions = make_app(root).handle({"instances": ROWS})["predictions"]
    assert [p["label"] for p in predictions] == [0, 2]
    assert all(sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-5) for p in predictions)


def test_xgboost_regression_answers_one_number_per_row(tmp_path: Path) -> None:
    root = write_service(tmp_path / "svc", "svc", "model.json", "xgboost")
    train_xgboost(root / "model.json", "reg:squarederror")
    predictions = make_app(root).handle({"instances": ROWS})["predictions"]
    assert len(predictions) == 2 and all(isinstance(p, float) for p in predictions)
    assert predictions[0] < 0.5 < 1.5 < predictions[1]


def test_lightgbm_binary_and_regression(tmp_path: Path) -> None:
    binary = write_service(tmp_path / "binary", "binary", "model.txt", "lightgbm")
    train_lightgbm(binary / "model.txt", "binary")
    predictions = make_app(binary).handle({"instances": ROWS})["predictions"]
    assert [p["label"] for p in predictions] == [0, 1]
    regression = write_service(tmp_path / "regression", "regression", "model.txt", "lightgbm")
    train_lightgbm(regression / "model.txt", "regression")
    values = make_app(regression).handle({"instances": ROWS})["predictions"]
    assert values[0] < 0.5 < 1.5 < values[1]


def test_the_outputs_option_picks_labels_only(tmp_path: Path) -> None:
    root = make_xgboost(tmp_path / "svc")
    spec = root / "modelambda.toml"
    spec.write_text(spec.read_text() + '\n[model.options]\noutputs = ["label"]\n')
    assert make_app(root).handle({"instances": ROWS})["predictions"] == [0, 2]


def test_missing_values_pass_when_the_spec_allows_them(tmp_path: Path) -> None:
    root = make_lightgbm(tmp_path / "svc")
    spec = root / "modelambda.toml"
    spec.write_text(spec.read_text().replace('framework = "lightgbm"\n',
                                             'framework = "lightgbm"\nallow_nonfinite = true\n'))
    predictions = make_app(root).handle({"instances": [[5.1, math.nan, 1.4, 0.2]]})
    assert labels(predictions["predictions"]) == [0]


# --- a damaged model file: one clear error at load, naming the file and the format ------------


CORRUPT = {"tflite": ("model.tflite", "TFLite"), "xgboost": ("model.ubj", "XGBoost"),
           "xgboost-json": ("model.json", "XGBoost"), "lightgbm": ("model.txt", "LightGBM")}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
@pytest.mark.parametrize("content", [b"\x00\x01garbage\xff" * 20, b"tree\nversion=v4\n"
                                     b'{"learner": {}, "version": [3, 0, 0]}'])
def test_a_damaged_model_file_is_one_clear_load_error(tmp_path: Path, kind: str,
                                                      content: bytes) -> None:
    name, what = CORRUPT[kind]
    framework = kind.split("-")[0]
    root = write_service(tmp_path / "svc", "svc", name, framework)
    (root / name).write_bytes(content)
    with pytest.raises(ModelLoadError) as caught:
        make_app(root)
    message = str(caught.value)
    assert message.startswith(f"{name} is not a loadable {what} model"), message
    assert "\n" not in message
