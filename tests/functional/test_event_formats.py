"""One request through every event format the runtime understands gives the same predictions.

The events in tests/events/ follow AWS's documented samples (see tests/events/README.md); the
app is the iris example, built once for the module.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from modelambda.runtime import events
from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.spec import compile_runtime_config, load_spec

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris"
EVENTS = REPO / "tests" / "events"

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]

V1_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
V2_KEYS = {"statusCode", "headers", "cookies", "body", "isBase64Encoded"}

HTTP_EVENTS = {
    "apigw-rest-v1.json": (events.REST_V1, V1_KEYS),
    "http-api-v2.json": (events.HTTP_V2, V2_KEYS),
    "function-url.json": (events.FUNCTION_URL, V2_KEYS),
    "function-url-base64.json": (events.FUNCTION_URL, V2_KEYS),
}


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="module")
def app_log() -> list[str]:
    """Every line the module's app logs (what CloudWatch would get)."""
    return []


@pytest.fixture(scope="module")
def app(app_log: list[str]) -> App:
    return App(compile_runtime_config(load_spec(IRIS)), Paths.from_environment(),
               log=app_log.append)


@pytest.fixture(scope="module")
def direct_result(app: App) -> dict[str, Any]:
    result = app.handle(load_event("direct.json"), None)
    assert isinstance(result, dict)
    return result


def header(response: dict[str, Any], name: str) -> str | None:
    found = {k.lower(): v for k, v in response["headers"].items()}
    return found.get(name.lower())


def furl_event(method: str = "POST", path: str = "/", body: Any = None) -> dict[str, Any]:
    event = load_event("function-url.json")
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["rawPath"] = path
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-type", None)
        event["headers"].pop("content-length", None)
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


# --- the sample events themselves ---------------------------------------------------------


def test_direct_sample_is_the_plain_request() -> None:
    assert load_event("direct.json") == {"instances": ROWS}


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_sample_event_carries_the_request_as_a_post(name: str) -> None:
    event = load_event(name)
    raw = event["body"]
    if event["isBase64Encoded"]:
        raw = base64.b64decode(raw, validate=True).decode()
    assert json.loads(raw) == {"instances": ROWS}
    method = event.get("httpMethod") or event["requestContext"]["http"]["method"]
    assert method == "POST"


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_sample_event_is_recognised_as_its_kind(name: str) -> None:
    assert events.event_kind(load_event(name)) == HTTP_EVENTS[name][0]
    assert events.event_kind(load_event("direct.json")) == events.DIRECT


def test_payload_2_0_samples_use_lower_case_header_names() -> None:
    for name in ("http-api-v2.json", "function-url.json", "function-url-base64.json"):
        headers = load_event(name)["headers"]
        assert all(k == k.lower() for k in headers), name


# --- the same request through each format -------------------------------------------------


def test_direct_invoke_answers_with_predictions(direct_result: dict[str, Any]) -> None:
    assert set(direct_result) == {"predictions", "model_name", "model_version"}
    assert direct_result["model_name"] == "iris"
    predictions = direct_result["predictions"]
    assert len(predictions) == len(ROWS)
    # The iris example: setosa (0) for the first row, virginica (2) for the second.
    assert [p["label"] for p in predictions] == [0, 2]
    for p in predictions:
        assert len(p["probabilities"]) == 3
        assert sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_http_event_gives_the_direct_predictions_in_its_response_shape(
    app: App, direct_result: dict[str, Any], name: str
) -> None:
    _, keys = HTTP_EVENTS[name]
    event = load_event(name)
    original = copy.deepcopy(event)
    response = app.handle(event, None)

    assert event == original, "the handler must not modify the event"
    assert set(response) == keys
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "application/json"
    assert response["isBase64Encoded"] is False
    assert isinstance(response["body"], str)
    assert json.loads(response["body"]) == direct_result
    if keys == V1_KEYS:
        assert isinstance(response["multiValueHeaders"], dict)
    else:
        assert isinstance(response["cookies"], list)


def test_every_format_gives_identical_predictions(app: App) -> None:
    answers = {name: json.loads(app.handle(load_event(name), None)["body"])["predictions"]
               for name in HTTP_EVENTS}
    answers["direct.json"] = app.handle(load_event("direct.json"), None)["predictions"]
    first = answers["direct.json"]
    assert all(predictions == first for predictions in answers.values()), answers


def test_direct_payload_given_as_a_json_string_is_decoded(
    app: App, direct_result: dict[str, Any]
) -> None:
    assert app.handle(json.dumps({"instances": ROWS}), None) == direct_result


# --- GET, other methods ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/v2/models/iris", "/v2/models/iris/"])
def test_get_through_function_url_returns_metadata(app: App, path: str) -> None:
    response = app.handle(furl_event("GET", path), None)
    assert set(response) == V2_KEYS
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "application/json"
    meta = json.loads(response["body"])
    assert meta["name"] == "iris"
    assert meta["versions"] == [app.model.version]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}


def test_get_health_through_function_url(app: App) -> None:
    response = app.handle(furl_event("GET", "/v2/health/ready"), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"ready": True}


def test_get_on_a_stage_or_route_path_returns_metadata(app: App) -> None:
    # HTTP APIs put a named stage into rawPath (/prod/...), and routes have their own paths.
    for path in ("/prod", "/prod/predict", "/predict"):
        response = app.handle(furl_event("GET", path), None)
        assert response["statusCode"] == 200
        assert json.loads(response["body"])["name"] == "iris"


def test_get_another_models_path_is_404(app: App) -> None:
    response = app.handle(furl_event("GET", "/v2/models/other"), None)
    assert response["statusCode"] == 404
    error = json.loads(response["body"])["error"]
    assert error["type"] == "NotFound" and "'other'" in error["message"]


def test_an_unexpected_exception_is_a_logged_500_and_the_app_lives_on(
    app: App, app_log: list[str]
) -> None:
    # GIVEN a backend that hits a bug (not a modelambda error) once
    original = app.backend.predict

    def broken(inputs: Any) -> Any:
        raise KeyError("bug")

    app.backend.predict = broken  # type: ignore[method-assign]
    seen = len(app_log)
    try:
        response = app.handle(furl_event("POST", "/", {"instances": ROWS}), None)
    finally:
        app.backend.predict = original  # type: ignore[method-assign]
    # THEN the client gets a 500 that names it, without the traceback
    assert response["statusCode"] == 500
    error = json.loads(response["body"])["error"]
    assert error["type"] == "ModelError"
    assert error["message"] == "unexpected KeyError while serving the request: 'bug'"
    assert "Traceback" not in response["body"]
    # AND the log has the bug with its traceback, then the invocation as a 500 (both ERROR)
    logged = [json.loads(line) for line in app_log[seen:]]
    assert [(r["level"], r["message"]) for r in logged] == [
        ("ERROR", "unexpected error"), ("ERROR", "invocation")]
    bug, invocation = logged
    assert bug["function_name"] == "iris" and bug["error_type"] == "KeyError"
    assert bug["traceback"].startswith("Traceback (most recent call last)")
    assert "in broken" in bug["traceback"] and bug["traceback"].rstrip().endswith(
        "KeyError: 'bug'")
    assert invocation["status"] == 500 and invocation["error_type"] == "ModelError"
    assert invocation["event"] == events.FUNCTION_URL
    # AND the next request is served
    assert app.handle({"instances": ROWS}, None)["predictions"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_through_function_url_are_405(app: App, method: str) -> None:
    response = app.handle(furl_event(method, "/", {"instances": ROWS}), None)
    assert set(response) == V2_KEYS
    assert response["statusCode"] == 405
    error = json.loads(response["body"])["error"]
    assert error["type"] == "MethodNotAllowed"
    assert method in error["message"]


def test_put_through_rest_v1_is_405(app: App) -> None:
    event = load_event("apigw-rest-v1.json")
    event["httpMethod"] = "PUT"
    event["requestContext"]["httpMethod"] = "PUT"
    response = app.handle(event, None)
    assert set(response) == V1_KEYS
    assert response["statusCode"] == 405
    assert json.loads(response["body"])["error"]["type"] == "MethodNotAllowed"


# --- Open Inference Protocol v2 ---------------------------------------------------------


def v2_request(request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                                        "data": [x for row in ROWS for x in row]}]}
    if request_id is not None:
        body["id"] = request_id
    return body


def check_v2_outputs(result: dict[str, Any], direct_result: dict[str, Any]) -> None:
    assert result["model_name"] == "iris"
    assert result["model_version"] == direct_result["model_version"]
    outputs = {o["name"]: o for o in result["outputs"]}
    assert set(outputs) == {"label", "probabilities"}
    predictions = direct_result["predictions"]
    assert outputs["label"]["shape"] == [2]
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == [p["label"] for p in predictions]
    assert outputs["probabilities"]["shape"] == [2, 3]
    assert outputs["probabilities"]["datatype"] == "FP32"
    flat = [x for p in predictions for x in p["probabilities"]]
    assert outputs["probabilities"]["data"] == pytest.approx(flat)


def test_v2_request_direct(app: App, direct_result: dict[str, Any]) -> None:
    result = app.handle(v2_request("req-1"), None)
    check_v2_outputs(result, direct_result)
    assert result["id"] == "req-1"


def test_v2_request_through_function_url(app: App, direct_result: dict[str, Any]) -> None:
    response = app.handle(furl_event("POST", "/v2/models/iris/infer", v2_request()), None)
    assert set(response) == V2_KEYS
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "application/json"
    result = json.loads(response["body"])
    check_v2_outputs(result, direct_result)
    assert "id" not in result
