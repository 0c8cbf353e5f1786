"""Bad input is a 4xx that says what is wrong, never a dead environment.

Each bad request goes through a Function URL event (status, error type, a message naming the
problem) and, where Lambda would deliver it, as a direct invoke (the error class, whose name is
the errorType). After each, a good request in the same app must still be answered.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelambda.limits import SYNC_PAYLOAD_BYTES
from modelambda.runtime import errors
from modelambda.runtime.app import App
from modelambda.runtime.paths import Paths
from modelambda.spec import compile_runtime_config, load_spec

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris"
EVENTS = REPO / "tests" / "events"

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
GOOD = {"instances": ROWS}
V2_RESPONSE_KEYS = {"statusCode", "headers", "cookies", "body", "isBase64Encoded"}
NO_DIRECT = object()  # this bad input cannot arrive as a direct invoke


def build_app(service_dir: Path, log: Callable[[str], Any] = lambda line: None) -> App:
    return App(compile_runtime_config(load_spec(service_dir)), Paths.from_environment(), log=log)


@pytest.fixture(scope="module")
def app() -> App:
    return build_app(IRIS)


@pytest.fixture(scope="module")
def capped_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    service = tmp_path_factory.mktemp("capped") / "iris"
    shutil.copytree(IRIS, service)
    toml = service / "modelambda.toml"
    text = toml.read_text()
    assert 'framework = "onnx"\n' in text
    toml.write_text(text.replace('framework = "onnx"\n', 'framework = "onnx"\nmax_batch = 2\n', 1))
    capped = build_app(service)
    assert capped.model.max_batch == 2
    return capped


def furl_event(body: str | None, *, b64: bool = False) -> dict[str, Any]:
    """The sample Function URL event carrying ``body`` (already a string) as is."""
    event: dict[str, Any] = json.loads((EVENTS / "function-url.json").read_text())
    if body is None:
        event.pop("body")
    else:
        event["body"] = base64.b64encode(body.encode()).decode() if b64 else body
        event["headers"]["content-length"] = str(len(event["body"]))
    event["isBase64Encoded"] = b64
    return event


def call_furl(app: App, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.handle(event, None)
    assert set(response) == V2_RESPONSE_KEYS
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"])


def furl_error(app: App, event: dict[str, Any]) -> tuple[int, str, str]:
    status, body = call_furl(app, event)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message"}, body
    return status, body["error"]["type"], body["error"]["message"]


def assert_still_serves(app: App) -> None:
    direct = app.handle(dict(GOOD), None)
    assert [p["label"] for p in direct["predictions"]] == [0, 2]
    status, body = call_furl(app, furl_event(json.dumps(GOOD)))
    assert status == 200
    assert body == direct


def assert_mentions(message: str, fragments: tuple[str, ...]) -> None:
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


# --- bad bodies, through a Function URL and as direct invokes ------------------------------


@dataclass
class Bad:
    body: str  # the HTTP body, exactly as the client sends it
    direct: Any  # the direct-invoke payload, or NO_DIRECT
    error: type[errors.RequestError]
    fragments: tuple[str, ...]  # what the message must mention
    status: int = 400


def bad(instances_json: str, direct_instances: Any, error: type[errors.RequestError],
        *fragments: str) -> Bad:
    return Bad('{"instances": ' + instances_json + "}", {"instances": direct_instances},
               error, fragments)


CASES = {
    "non_json_body": Bad("instances=5.1,3.5,1.4,0.2", "instances=5.1,3.5,1.4,0.2",
                         errors.InvalidJSON, ("not valid JSON",)),
    "missing_instances": Bad(json.dumps({"rows": ROWS}), {"rows": ROWS},
                             errors.MissingField, ("'instances'", "rows")),
    "body_is_a_list": Bad(json.dumps(ROWS), ROWS, errors.MissingField, ("instances", "list")),
    "wrong_number_of_features": bad("[[5.1, 3.5, 1.4]]", [[5.1, 3.5, 1.4]],
                                    errors.ShapeError, "expected 4", "got 3"),
    "too_many_features": bad("[[5.1, 3.5, 1.4, 0.2, 9.9]]", [[5.1, 3.5, 1.4, 0.2, 9.9]],
                             errors.ShapeError, "expected 4", "got 5"),
    "ragged_rows": bad("[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0]]", [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0]],
                       errors.ShapeError, "same shape"),
    "strings_for_floats": bad('[["5.1", "3.5", "1.4", "0.2"]]', [["5.1", "3.5", "1.4", "0.2"]],
                              errors.DTypeError, "numbers", "strings"),
    "one_string_among_floats": bad('[[5.1, "3.5", 1.4, 0.2]]', [[5.1, "3.5", 1.4, 0.2]],
                                   errors.DTypeError, "numbers", "strings"),
    "null_value": bad("[[5.1, null, 1.4, 0.2]]", [[5.1, None, 1.4, 0.2]],
                      errors.DTypeError, "numbers", "null"),
    "null_instance": bad("[null]", [None], errors.DTypeError, "numbers", "null"),
    "nan": bad("[[NaN, 3.5, 1.4, 0.2]]", [[math.nan, 3.5, 1.4, 0.2]],
               errors.InvalidValue, "finite", "nan"),
    "infinity": bad("[[5.1, Infinity, 1.4, 0.2]]", [[5.1, math.inf, 1.4, 0.2]],
                    errors.InvalidValue, "finite", "inf"),
    "minus_infinity": bad("[[5.1, 3.5, -Infinity, 0.2]]", [[5.1, 3.5, -math.inf, 0.2]],
                          errors.InvalidValue, "finite", "-inf"),
    "overflows_float32": bad("[[1e39, 3.5, 1.4, 0.2]]", [[1e39, 3.5, 1.4, 0.2]],
                             errors.InvalidValue, "finite", "float32"),
    "empty_batch": bad("[]", [], errors.EmptyBatch, "empty"),
    "instances_is_an_object": bad('{"input": [5.1, 3.5, 1.4, 0.2]}',
                                  {"input": [5.1, 3.5, 1.4, 0.2]},
                                  errors.ShapeError, "must be a list", "dict"),
    "instances_is_a_string": bad('"5.1,3.5,1.4,0.2"', "5.1,3.5,1.4,0.2",
                                 errors.ShapeError, "must be a list", "str"),
    "flat_single_instance": bad("[5.1, 3.5, 1.4, 0.2]", [5.1, 3.5, 1.4, 0.2],
                                errors.ShapeError, "wrap each instance in a list"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_body_through_function_url(app: App, case: Bad) -> None:
    status, error_type, message = furl_error(app, furl_event(case.body))
    assert (status, error_type) == (case.status, case.error.__name__), message
    assert status == case.error.status
    assert_mentions(message, case.fragments)
    assert_still_serves(app)


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_body_as_direct_invoke(app: App, case: Bad) -> None:
    with pytest.raises(case.error) as caught:
        app.handle(case.direct, None)
    # awslambdaric reports the class name as errorType: it must be the wire name.
    assert type(caught.value).__name__ == case.error.__name__
    assert caught.value.error_type == case.error.__name__
    assert_mentions(str(caught.value), case.fragments)
    assert_still_serves(app)


def test_nan_and_infinity_in_the_body_are_accepted_by_the_json_parser() -> None:
    # The premise of the NaN/Infinity cases: Python's json takes these literals, so they reach
    # the contract check instead of failing as InvalidJSON.
    assert math.isnan(json.loads(CASES["nan"].body)["instances"][0][0])
    assert json.loads(CASES["infinity"].body)["instances"][0][1] == math.inf


def test_deeply_nested_json_body(app: App) -> None:
    # 100 KB of "[" is well under the payload limit but deeper than json's recursion limit:
    # the parser raises RecursionError, which must still be a 400, not an unhandled exception.
    body = "[" * 100_000
    status, error_type, message = furl_error(app, furl_event(body))
    assert (status, error_type) == (400, "InvalidJSON")
    assert_mentions(message, ("JSON",))
    with pytest.raises(errors.InvalidJSON):
        app.handle(body, None)  # a direct payload that is a JSON string is parsed too
    assert_still_serves(app)


def test_empty_body_through_function_url(app: App) -> None:
    status, error_type, message = furl_error(app, furl_event(None))
    assert (status, error_type) == (400, "MissingField")
    assert_mentions(message, ("instances", "empty body"))
    assert_still_serves(app)


# --- limits: batch size, payload size ---------------------------------------------------


def test_batch_over_max_batch_through_function_url(capped_app: App) -> None:
    rows = [*ROWS, ROWS[0]]
    event = furl_event(json.dumps({"instances": rows}))
    status, error_type, message = furl_error(capped_app, event)
    assert (status, error_type) == (413, "BatchTooLarge")
    assert_mentions(message, ("3 instances", "at most 2", "max_batch"))
    assert_still_serves(capped_app)  # two rows: exactly the cap


def test_batch_over_max_batch_as_direct_invoke(capped_app: App) -> None:
    with pytest.raises(errors.BatchTooLarge) as caught:
        capped_app.handle({"instances": [*ROWS, ROWS[0]]}, None)
    assert caught.value.status == 413
    assert_mentions(str(caught.value), ("at most 2",))
    assert_still_serves(capped_app)


def test_v2_batch_over_max_batch(capped_app: App) -> None:
    rows = [*ROWS, ROWS[0]]
    body = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32",
                        "data": [x for row in rows for x in row]}]}
    status, error_type, _ = furl_error(capped_app, furl_event(json.dumps(body)))
    assert (status, error_type) == (413, "BatchTooLarge")
    with pytest.raises(errors.BatchTooLarge):
        capped_app.handle(body, None)
    assert_still_serves(capped_app)


def test_default_app_takes_more_than_the_capped_batch(app: App) -> None:
    status, body = call_furl(app, furl_event(json.dumps({"instances": ROWS * 50})))
    assert status == 200
    assert len(body["predictions"]) == 100


def test_invalid_base64_body(app: App) -> None:
    event = furl_event(None)
    event["body"] = "this is {not} base64!"
    event["isBase64Encoded"] = True
    status, error_type, message = furl_error(app, event)
    assert (status, error_type) == (400, "InvalidBase64")
    assert_mentions(message, ("base64",))
    assert_still_serves(app)


def test_base64_body_that_is_not_json(app: App) -> None:
    status, error_type, message = furl_error(app, furl_event("a,b,c\n1,2,3", b64=True))
    assert (status, error_type) == (400, "InvalidJSON")
    assert_mentions(message, ("JSON",))
    assert_still_serves(app)


def test_base64_body_that_is_not_utf8(app: App) -> None:
    event = furl_event(None)
    event["body"] = base64.b64encode(b'{"instances": "\xff\xfe"}').decode()
    event["isBase64Encoded"] = True
    status, error_type, message = furl_error(app, event)
    assert (status, error_type) == (400, "InvalidJSON")
    assert_mentions(message, ("UTF-8",))
    assert_still_serves(app)


def padded(size: int) -> str:
    """A valid request padded with whitespace to exactly ``size`` bytes."""
    body = json.dumps(GOOD)
    return body + " " * (size - len(body))


def test_body_over_6_mb(app: App) -> None:
    body = padded(SYNC_PAYLOAD_BYTES + 1)
    assert len(body.encode()) == 6291457
    status, error_type, message = furl_error(app, furl_event(body))
    assert (status, error_type) == (413, "PayloadTooLarge")
    assert_mentions(message, ("6291457", "6291456"))
    assert_still_serves(app)


def test_base64_body_over_6_mb_decoded(app: App) -> None:
    status, error_type, message = furl_error(
        app, furl_event(padded(SYNC_PAYLOAD_BYTES + 1), b64=True))
    assert (status, error_type) == (413, "PayloadTooLarge")
    assert_mentions(message, ("6291456",))
    assert_still_serves(app)


def test_body_of_exactly_6_mb_is_served(app: App) -> None:
    body = padded(SYNC_PAYLOAD_BYTES)
    assert len(body.encode()) == 6291456
    status, result = call_furl(app, furl_event(body))
    assert status == 200
    assert [p["label"] for p in result["predictions"]] == [0, 2]


# --- v2 protocol bad input --------------------------------------------------------------


V2_CASES = {
    "data_count_mismatch": ({"name": "input", "shape": [2, 4], "datatype": "FP32",
                             "data": [1.0] * 7}, errors.ShapeError, ("needs 8 values",)),
    "unknown_datatype": ({"name": "input", "shape": [1, 4], "datatype": "FLOAT",
                          "data": [1.0] * 4}, errors.DTypeError, ("unknown datatype",)),
    "missing_data": ({"name": "input", "shape": [1, 4], "datatype": "FP32"},
                     errors.MissingField, ("data",)),
    "wrong_features": ({"name": "input", "shape": [1, 3], "datatype": "FP32",
                        "data": [1.0] * 3}, errors.ShapeError, ("expected 4",)),
}


@pytest.mark.parametrize("tensor,error,fragments", V2_CASES.values(), ids=list(V2_CASES))
def test_bad_v2_request(app: App, tensor: dict[str, Any], error: type[errors.RequestError],
                        fragments: tuple[str, ...]) -> None:
    body = {"inputs": [tensor]}
    status, error_type, message = furl_error(app, furl_event(json.dumps(body)))
    assert (status, error_type) == (400, error.__name__)
    assert_mentions(message, fragments)
    with pytest.raises(error):
        app.handle(body, None)
    assert_still_serves(app)


# --- the per-invocation log line --------------------------------------------------------


def invocation_lines(lines: list[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) for r in records)
    return [r for r in records if r.get("message") == "invocation"]


def check_emf(record: dict[str, Any]) -> None:
    aws = record["_aws"]
    assert isinstance(aws["Timestamp"], int)
    [directive] = aws["CloudWatchMetrics"]
    assert directive["Namespace"]
    for metric in directive["Metrics"]:
        assert isinstance(record[metric["Name"]], int | float), metric
    for dimension_set in directive["Dimensions"]:
        for dimension in dimension_set:
            assert isinstance(record[dimension], str), dimension


def test_log_lines_for_an_error_then_a_success() -> None:
    lines: list[str] = []
    fresh = build_app(IRIS, log=lines.append)
    assert [json.loads(line)["message"] for line in lines] == ["init"]

    status, error_type, _ = furl_error(fresh, furl_event('{"instances": [[5.1, 3.5, 1.4]]}'))
    assert (status, error_type) == (400, "ShapeError")
    status, _ = call_furl(fresh, furl_event(json.dumps(GOOD)))
    assert status == 200

    first, second = invocation_lines(lines)
    for record in (first, second):
        check_emf(record)
        assert record["function_name"] == "iris"
        assert record["model_version"] == fresh.model.version
        assert record["event"] == "function-url"
        assert record["level"] == "INFO"
    assert (first["status"], first["error_type"], first["cold"]) == (400, "ShapeError", True)
    assert first["cold_start"] == 1
    assert (second["status"], second["error_type"], second["cold"]) == (200, None, False)
    assert second["cold_start"] == 0
    assert second["batch_size"] == 2


def test_log_line_for_a_direct_invoke_error() -> None:
    lines: list[str] = []
    fresh = build_app(IRIS, log=lines.append)

    class Context:
        aws_request_id = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"

    with pytest.raises(errors.EmptyBatch):
        fresh.handle({"instances": []}, Context())
    fresh.handle(dict(GOOD), Context())

    first, second = invocation_lines(lines)
    check_emf(first)
    assert first["request_id"] == Context.aws_request_id
    assert (first["event"], first["status"], first["error_type"]) == ("direct", 400, "EmptyBatch")
    assert first["cold"] is True
    assert (second["status"], second["error_type"], second["cold"]) == (200, None, False)
