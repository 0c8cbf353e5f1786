"""Hostile input: hypothesis strategies and the checks every answer must pass.

Shared by the property tests beside this file (a few hundred examples in the default run) and
``benchmarks/reliability_hostile.py`` (10,000+). What every answer must be, whatever came in:

- never a crash: the in-process app raises only the errors it designs (``RequestError`` and its
  subclasses, 4xx), never the ``unexpected ...`` 500 that stands for a bug; an emulator's
  environment keeps serving (the same environment id, its invocation count going up);
- no 5xx but the designed ones (none, for these inputs to iris: a 500 or 502 is a bug);
- every error body a JSON object carrying a message (``message``, ``Message``,
  ``errorMessage``, ``error.message`` or the console's ``error``, as each surface spells it).
"""

from __future__ import annotations

import base64
import json
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from modelambda.runtime import errors
from modelambda.runtime.app import App
from modelambda.runtime.v2 import V2_TO_NUMPY

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
IRIS = ROOT / "examples" / "iris"
GOOD_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
GOOD = {"instances": GOOD_ROWS}


class Finding(AssertionError):
    """An answer that breaks a rule above (the property fails with it)."""


@dataclass
class Tally:
    """What a run saw, for the reliability table."""

    cases: int = 0
    crashes: int = 0
    unexpected_5xx: int = 0
    non_json_errors: int = 0
    examples: list[str] = field(default_factory=list)

    def failed(self, what: str, detail: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples) < 5:
            self.examples.append(f"{what}: {detail[:300]}")

    @property
    def outcome(self) -> str:
        bad = self.crashes + self.unexpected_5xx + self.non_json_errors
        return "pass" if not bad else "FAIL: " + "; ".join(self.examples)


# --- values -------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                    | st.dictionaries(TEXT, inner, max_size=5), max_leaves=20)
NUMBER = (st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6)
          | st.sampled_from([float("nan"), float("inf"), 2**63, -2**64, 1e308, True]))

ROW = (st.lists(NUMBER, min_size=4, max_size=4)  # the right width, any number
       | st.lists(NUMBER, max_size=7)  # the wrong width
       | st.lists(st.lists(NUMBER, max_size=4), max_size=4)  # one level too deep
       | st.dictionaries(st.sampled_from(["input", "float_input", "x", ""]),
                         st.lists(NUMBER, max_size=4), max_size=2)  # objects by input name
       | SCALARS | JSON)
INSTANCES = (st.lists(ROW, max_size=6) | st.lists(st.lists(NUMBER, min_size=4, max_size=4),
                                                   min_size=1, max_size=3)
             | st.just([[1.0, 2.0, 3.0, 4.0]] * 1025) | JSON)
V2_TENSOR = st.fixed_dictionaries(
    {}, optional={"name": TEXT | JSON, "datatype": st.sampled_from(list(V2_TO_NUMPY)) | JSON,
                  "shape": st.lists(st.integers(-3, 2**40) | st.booleans() | SCALARS,
                                    max_size=3) | JSON,
                  "data": st.lists(NUMBER, max_size=12) | INSTANCES})
V2_BODY = st.fixed_dictionaries({"inputs": st.lists(V2_TENSOR, max_size=3) | JSON},
                                optional={"id": JSON, "parameters": JSON})
BODY = (st.builds(lambda i: {"instances": i}, INSTANCES) | V2_BODY
        | st.dictionaries(TEXT, JSON, max_size=3) | JSON)


def body_text(body: Any) -> str:
    """A body as a client sends it: JSON (NaN and infinities as Python writes them)."""
    return json.dumps(body)


RAW_BODY = (BODY.map(body_text) | TEXT
            | st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
            | BODY.map(lambda b: body_text(b)[: max(0, len(body_text(b)) // 2)]))  # truncated


# --- events ---------------------------------------------------------------------------------

def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


HTTP_SAMPLES = ["apigw-rest-v1.json", "http-api-v2.json", "function-url.json"]
# Triggers modelambda does not decode: they arrive as direct invokes (an ALB event has the
# REST shape: requestContext + httpMethod, and is decoded as one)
OTHER_TRIGGERS = [
    {"requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
     "httpMethod": "POST", "path": "/", "headers": {"content-type": "application/json"},
     "body": json.dumps(GOOD), "isBase64Encoded": False},
    {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(GOOD), "messageId": "1"}]},
    {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(GOOD)}}]},
    {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"},
                                                  "object": {"key": "k"}}}]},
    {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": GOOD},
]


@st.composite
def http_event(draw: st.DrawFn) -> dict[str, Any]:
    """A sample REST v1 / HTTP API / Function URL event with hostile parts."""
    event = sample(draw(st.sampled_from(HTTP_SAMPLES)))
    raw = draw(RAW_BODY | st.none())
    if raw is None:
        event.pop("body", None)
    elif draw(st.booleans()):
        event["body"] = base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = raw
        event["isBase64Encoded"] = draw(st.booleans() | st.sampled_from(["false", 1, None]))
    method = draw(st.sampled_from(["POST", "GET", "HEAD", "PUT", "DELETE", "post"]) | TEXT)
    path = draw(st.sampled_from(["/", "/v2/models/iris/infer", "/v2/models/x/ready",
                                 "/v2/health/ready", "/v2/models/iris"]) | TEXT)
    if "httpMethod" in event:
        event["httpMethod"], event["path"] = method, path
    else:
        event["requestContext"]["http"]["method"], event["rawPath"] = method, path
    for _ in range(draw(st.integers(0, 2))):  # any field, any value
        where = draw(st.sampled_from(["top", "requestContext", "http"]))
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        target = {"top": event, "requestContext": context, "http": http}[where]
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)) | TEXT)
            target[key] = draw(JSON)
    return event


EVENT = (http_event() | BODY | BODY.map(body_text) | st.sampled_from(OTHER_TRIGGERS)
         | JSON)


# --- the in-process app --------------------------------------------------------------------

def designed(exc: BaseException) -> bool:
    """An error the runtime raises on purpose for bad input (a 4xx), not a bug's 500."""
    return isinstance(exc, errors.RequestError)


def error_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("message", "Message", "errorMessage"):
        if isinstance(body.get(key), str):
            return str(body[key])
    inner = body.get("error")
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])
    return inner if isinstance(inner, str) else None  # the console's {"error": "..."}


def check_app_event(app: App, event: Any, tally: Tally) -> None:
    """One event through the app: designed errors only, JSON error bodies, alive after."""
    tally.cases += 1
    try:
        result = app.handle(event, None)
    except Exception as exc:  # a direct invoke's error: awslambdaric reports it
        if not designed(exc):
            tally.failed("unexpected_5xx", f"{type(exc).__name__}: {exc} for {event!r}")
        return
    if isinstance(result, dict) and "statusCode" in result and "body" in result \
            and not (isinstance(event, dict) and "statusCode" in event):
        status = result["statusCode"]
        try:
            body = json.loads(result["body"])
        except (TypeError, ValueError):
            tally.failed("non_json_errors", f"{status}: {result['body']!r}")
            return
        if status >= 500:
            tally.failed("unexpected_5xx", f"{status}: {body!r} for {event!r}")
        elif status >= 400 and error_message(body) is None:
            tally.failed("non_json_errors", f"{status}: {body!r}")


def check_still_serving(app: App, tally: Tally) -> None:
    answer = app.handle(dict(GOOD), None)
    if not (isinstance(answer, dict) and len(answer.get("predictions", [])) == 2):
        tally.failed("crashes", f"a good request after hostile ones got {answer!r}")


# --- the emulator's front doors -------------------------------------------------------------

HEADER_NAME = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
CONTENT_TYPES = st.sampled_from(["application/json", "text/plain", "application/octet-stream",
                                 "image/png", "", "application/json; charset=utf-16",
                                 "multipart/form-data; boundary=x"])


@dataclass
class HttpCase:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"{self.method} {self.path} {self.headers} {self.body[:120]!r}"


def _query(pairs: list[tuple[str, str]]) -> str:
    return ("?" + urllib.parse.urlencode(pairs)) if pairs else ""


@st.composite
def invoke_case(draw: st.DrawFn) -> HttpCase:
    """A request to the Invoke API naming iris (or not), with hostile headers and payload."""
    name = draw(st.sampled_from(["iris", "iris:live", "iris:1", "iris:$LATEST", "iris:9",
                                 "arn:aws:lambda:us-east-1:000000000000:function:iris",
                                 "000000000000:function:iris:live", "nope", "iris:live:x",
                                 "arn:aws:lambda", ":", "%00", "iris%2Flive"]))
    headers = {"Content-Type": "application/json"}
    if draw(st.booleans()):
        headers["X-Amz-Invocation-Type"] = draw(
            st.sampled_from(["RequestResponse", "DryRun", "Event", "Bogus", ""]))
    if draw(st.booleans()):
        headers["X-Amz-Log-Type"] = draw(st.sampled_from(["Tail", "None", "x"]))
    if draw(st.booleans()):
        headers["X-Amz-Client-Context"] = draw(
            st.sampled_from(["", "not base64", base64.b64encode(b"[1]").decode(),
                             base64.b64encode(b"{bad").decode(),
                             base64.b64encode(b"\xff\xfe").decode()]))
    query = draw(st.lists(st.tuples(st.sampled_from(["Qualifier", "x"]),
                                    st.sampled_from(["live", "1", "$LATEST", "9", ""])),
                          max_size=2))
    body = draw(EVENT.map(lambda e: json.dumps(e).encode()) | st.binary(max_size=64)
                | st.just(b""))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE"]))
    return HttpCase(method, f"/2015-03-31/functions/{name}/invocations{_query(query)}",
                    headers, body)


@st.composite
def url_case(draw: st.DrawFn) -> HttpCase:
    """A request to iris's Function URL or the v2 paths, with hostile parts."""
    prefix = draw(st.sampled_from(["/fn/iris", "/fn/iris/", "/fn/iris/v2/models/iris/infer",
                                   "/v2/models/iris/infer", "/v2/models/iris", "/v2/models/iris/",
                                   "/v2/models/iris/ready", "/v2/models/nope/infer",
                                   "/fn/nope/", "/v2/health/live", "/fn", "/",
                                   "/console/api/functions/", "/console/api/invocations/",
                                   "/console/api/latency/", "/console/api/models/iris/",
                                   "/console/static/", "/console/measurements/iris/"]))
    tail = draw(st.text(string.ascii_letters + string.digits + "/%.-_~", max_size=12)
                | st.sampled_from(["%C2%B2", "%D9%A3", "..%2F..%2Fetc%2Fpasswd", "%00", "%",
                                   "iris", "promote", "rollback", "..", "index.html"]))
    query = draw(st.lists(st.tuples(HEADER_VALUE, HEADER_VALUE), max_size=3))
    method = draw(st.sampled_from(["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    headers = {"Content-Type": draw(CONTENT_TYPES)}
    headers.update(draw(st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=4)))
    if draw(st.booleans()):
        headers["Cookie"] = draw(HEADER_VALUE)
    body = draw(RAW_BODY.map(lambda t: t.encode("utf-8", "surrogatepass"))
                | st.binary(max_size=64))
    if method == "HEAD":
        body = b""
    if (prefix + tail).rstrip("/").endswith("/console/api/live"):
        tail += "x"  # the live stream never ends: not a request/response case
    headers.pop("Content-Length", None)
    headers.pop("Transfer-Encoding", None)
    headers.pop("Host", None)
    headers.pop("Connection", None)
    headers.pop("Expect", None)
    return HttpCase(method, prefix + tail + _query(query), headers, body)


# what each answer may be: (status, the error-body rule applies)
DESIGNED_5XX: set[int] = set()  # none for iris with these inputs


def check_http_answer(case: HttpCase, status: int, headers: dict[str, str], body: bytes,
                      tally: Tally) -> None:
    tally.cases += 1
    if status >= 500 and status not in DESIGNED_5XX:
        tally.failed("unexpected_5xx", f"{status} {body[:200]!r} for {case!r}")
        return
    function_error = headers.get("x-amz-function-error")
    if function_error:  # the Invoke API's 200 carrying a function error: a designed one?
        try:
            payload = json.loads(body)
        except ValueError:
            tally.failed("non_json_errors", f"function error {body[:200]!r}")
            return
        error_type = payload.get("errorType", "") if isinstance(payload, dict) else ""
        if not _is_request_error(error_type):
            tally.failed("unexpected_5xx", f"function error {payload!r} for {case!r}")
        elif error_message(payload) is None:
            tally.failed("non_json_errors", f"function error {payload!r}")
        return
    if status >= 400 and case.method != "HEAD":
        try:
            payload = json.loads(body)
        except ValueError:
            tally.failed("non_json_errors", f"{status} {body[:200]!r} for {case!r}")
            return
        if error_message(payload) is None:
            tally.failed("non_json_errors", f"{status} {payload!r} for {case!r}")


def _is_request_error(name: str) -> bool:
    cls = getattr(errors, name, None)
    return isinstance(cls, type) and issubclass(cls, errors.RequestError)


Send = Callable[[HttpCase], tuple[int, dict[str, str], bytes]]
