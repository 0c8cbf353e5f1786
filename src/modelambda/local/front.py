"""The emulator's front doors, on one loopback port.

- the Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``), so boto3's
  ``lambda`` client works unchanged against ``endpoint_url``: RequestResponse, Event, DryRun,
  Tail logs, and the service's documented errors; the function named as Lambda takes it
  (``name``, ``name:qualifier``, a full ARN or a partial one, ``123456789012:function:name``,
  each with an optional qualifier, or ``?Qualifier=``), the qualifier a version (``$LATEST``,
  ``1``) or an alias, and ``X-Amz-Executed-Version`` the version that ran;
- a Function URL per function at ``/fn/{name}/...``, on the function's alias (as ``deploy``
  creates it): any HTTP request becomes a payload 2.0 event, and the function's answer an
  HTTP response by Function URL rules;
- the v2 inference protocol paths (``/v2/models/{name}/...``), routed to the function that
  serves that model, through the same Function URL conversion;
- ``/`` in a browser, and ``/console/...``: the console (``local/console/``);
- ``GET /health``: each function's environments, and how they are isolated (``sandbox``:
  bwrap or plain; ``cgroups``: v1, v2 or off, per function and overall).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from modelambda import limits
from modelambda.local.console import wants_page
from modelambda.local.function import Function, Throttled
from modelambda.local.httpserver import HttpRequest, HttpResponse
from modelambda.local.results import Invocation, InvocationResult

if TYPE_CHECKING:
    from modelambda.local.emulator import Emulator

INVOKE_PREFIX = "/2015-03-31/functions/"
JSON = ("Content-Type", "application/json")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "application/graphql")


def service_error(status: int, code: str, message: str, request_id: str,
                  **extra: str) -> HttpResponse:
    """An AWS rest-json service error, as botocore parses it."""
    body = {"Type": "User", "message": message, **extra}
    return HttpResponse(status, json.dumps(body).encode(), [
        JSON, ("x-amzn-ErrorType", code), ("x-amzn-RequestId", request_id)])


def too_large_response() -> HttpResponse:
    return service_error(413, "RequestEntityTooLargeException",
                         f"Request must be smaller than {limits.SYNC_PAYLOAD_BYTES} bytes for "
                         "the InvokeFunction operation", str(uuid.uuid4()))


class Front:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path.startswith(INVOKE_PREFIX) and path.endswith("/invocations"):
            if request.method != "POST":
                return service_error(405, "UnknownOperationException",
                                     f"{request.method} {path}: invoke with POST",
                                     str(uuid.uuid4()))
            name = path[len(INVOKE_PREFIX):-len("/invocations")]
            return await self.invoke_api(name, request)
        if path == "/fn" or path.startswith("/fn/"):
            name, _, rest = path[len("/fn/"):].partition("/")
            return await self.function_url(name, "/" + rest, request)
        if path.startswith("/v2/"):
            return await self.v2(path, request)
        if path.startswith("/console") or (path == "/" and wants_page(request)):
            return await self.emulator.console.handle(request)
        if path in ("/health", "/"):
            return HttpResponse(200, json.dumps(self.emulator.describe()).encode(), [JSON])
        return HttpResponse(404, json.dumps({"message": f"no route for {path}; see /health"})
                            .encode(), [JSON])

    # --- Invoke API ---------------------------------------------------------------------

    def _resolve(self, raw: str, qualifier: str | None
                  ) -> tuple[Function | None, str | None, str]:
        """The function name as Lambda takes it -> (the function or None, the version it
        names or None, the ARN as invoked: with the qualifier when one was given).

        ``name``, ``name:qualifier``, ``arn:aws:lambda:region:account:function:name[:q]`` and
        the partial ``account:function:name[:q]``; a ``Qualifier`` parameter must agree with
        a qualifier in the name (else ValueError, Lambda's InvalidParameterValueException)."""
        parts = raw.split(":")
        if parts[0] == "arn" and len(parts) in (7, 8) and parts[5] == "function":
            parts = parts[6:]
        elif len(parts) in (3, 4) and parts[1] == "function":
            parts = parts[2:]
        name, own = parts[0], ":".join(parts[1:]) or None
        if own and qualifier and own != qualifier:
            raise ValueError("The derived qualifier from the function name does not match "
                             "the specified qualifier.")
        qualifier = own or qualifier or None
        function = self.emulator.functions.get(name)
        arn = (function.settings.arn if function else
               f"arn:aws:lambda:us-east-1:000000000000:function:{name}")
        if qualifier:
            arn += f":{qualifier}"
        version = function.version_for(qualifier) if function else None
        return (function if version else None), version, arn

    async def invoke_api(self, raw_name: str, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        try:
            function, version, arn = self._resolve(raw_name, request.query.get("Qualifier"))
        except ValueError as exc:
            return service_error(400, "InvalidParameterValueException", str(exc), request_id)
        if function is None or version is None:
            return service_error(404, "ResourceNotFoundException", f"Function not found: {arn}",
                                 request_id)
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        payload = request.body or b"{}"
        try:
            json.loads(payload, parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:
            return service_error(400, "InvalidRequestContentException",
                                 f"Could not parse request body into json: {exc}", request_id)
        try:
            client_context = _client_context(request)
        except ValueError:
            return service_error(400, "InvalidRequestContentException",
                                 "X-Amz-Client-Context must be a base64-encoded JSON object",
                                 request_id)
        if kind == "DryRun":
            return HttpResponse(204, b"", [("x-amzn-RequestId", request_id)])
        if kind == "Event":
            if len(payload) > limits.ASYNC_PAYLOAD_BYTES:
                return service_error(413, "RequestEntityTooLargeException",
                                     f"Request must be smaller than {limits.ASYNC_PAYLOAD_BYTES}"
                                     " bytes for the InvokeAsync operation", request_id)
            await function.submit_event(payload, request_id, version, arn)
            return HttpResponse(202, b"", [("x-amzn-RequestId", request_id)])
        if kind != "RequestResponse":
            return service_error(400, "InvalidParameterValueException",
                                 f"Unsupported invocation type {kind!r}", request_id)
        invocation = Invocation(payload, request_id=request_id, client_context=client_context,
                                version=version, function_arn=arn)
        try:
            result = await function.invoke(invocation)
        except Throttled as exc:
            return service_error(429, "TooManyRequestsException", "Rate Exceeded.", request_id,
                                 Reason=exc.reason)
        headers = [JSON, ("x-amzn-RequestId", request_id),
                   ("X-Amz-Executed-Version", result.version)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if request.headers.get("x-amz-log-type") == "Tail":
            headers.append(("X-Amz-Log-Result",
                            base64.b64encode(result.tail().encode()).decode()))
        return HttpResponse(200, result.payload, headers)

    # --- Function URL -------------------------------------------------------------------

    async def function_url(self, name: str, path: str, request: HttpRequest) -> HttpResponse:
        function = self.emulator.functions.get(name)
        if function is None:
            return HttpResponse(404, json.dumps({"Message": f"no function {name!r}"}).encode(),
                                [JSON])
        return await self._through_url(function, path, request)

    async def _through_url(self, function: Function, path: str,
                           request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        event = url_event(function.settings.name, path, request, request_id)
        alias = function.settings.alias  # the URL is on the alias, as deploy makes it
        invocation = Invocation(json.dumps(event).encode(), request_id=request_id,
                                version=function.aliases[alias],
                                function_arn=f"{function.settings.arn}:{alias}")
        try:
            result = await function.invoke(invocation)
        except Throttled:
            return HttpResponse(429, b'{"Message":"Rate Exceeded."}', [JSON])
        return url_response(result)

    async def v2(self, path: str, request: HttpRequest) -> HttpResponse:
        if path.rstrip("/") in ("/v2/health/ready", "/v2/health/live"):
            return HttpResponse(200, b'{"ready":true}', [JSON])
        parts = path.split("/")
        if len(parts) >= 4 and parts[2] == "models":
            function = self.emulator.by_model(parts[3])
            if function is not None:
                return await self._through_url(function, path, request)
            return v2_not_found(f"model {parts[3]!r} not found")
        return v2_not_found(f"no v2 route {path}")


def _not_json(name: str) -> Any:
    """NaN, Infinity and -Infinity: Python's json reads them, JSON (RFC 8259) and Lambda do
    not; the runtime client would fail on them (Runtime.UnmarshalError)."""
    raise ValueError(f"{name} is not a JSON value")


def v2_not_found(message: str) -> HttpResponse:
    """A 404 on the v2 paths, in the runtime's error shape (``{"error": {type, message}}``)."""
    return HttpResponse(404, json.dumps({"error": {"type": "NotFound", "message": message}})
                        .encode(), [JSON])


def _client_context(request: HttpRequest) -> str | None:
    """The X-Amz-Client-Context header's JSON text; ValueError unless base64 of a JSON
    object (the runtime client builds the context's ``client``, ``custom`` and ``env`` from
    its keys: awslambdaric fails the invocation on anything else)."""
    if "x-amz-client-context" not in request.headers:
        return None
    try:
        text = base64.b64decode(request.headers["x-amz-client-context"], validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    return text


def url_event(function_name: str, path: str, request: HttpRequest,
              request_id: str) -> dict[str, Any]:
    """The payload 2.0 event a Function URL sends for this HTTP request."""
    headers = {k: v for k, v in request.headers.items() if k != "cookie"}
    content_type = headers.get("content-type", "")
    body: str | None = None
    is_base64 = False
    if request.body:
        textual = content_type.startswith(_TEXT_TYPES) or not content_type
        try:
            body = request.body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            body = None
        if body is None:
            body, is_base64 = base64.b64encode(request.body).decode(), True
    url_id = function_name.lower()[:32]
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path,
        "rawQueryString": request.raw_query, "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.us-east-1.on.aws", "domainPrefix": url_id,
            "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "requestId": request_id, "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000)},
        "isBase64Encoded": is_base64,
    }
    if "cookie" in request.headers:
        event["cookies"] = [c.strip() for c in request.headers["cookie"].split(";")]
    if request.query:
        event["queryStringParameters"] = request.query
    if body is not None:
        event["body"] = body
    return event


def url_response(result: InvocationResult) -> HttpResponse:
    """The function's result -> an HTTP response, by Function URL rules."""
    trace = [("x-amzn-RequestId", result.request_id)]
    if result.function_error:
        return HttpResponse(502, b'{"Message":"Internal Server Error"}', [JSON, *trace])
    try:
        value = json.loads(result.payload)
    except ValueError:
        return HttpResponse(502, b'{"Message":"Internal Server Error"}', [JSON, *trace])
    if not (isinstance(value, dict) and "statusCode" in value):
        # A JSON result without statusCode: 200, the JSON itself as the body.
        return HttpResponse(200, result.payload, [JSON, *trace])
    try:
        status = int(value["statusCode"])
        body = value.get("body") or ""
        data = (base64.b64decode(body) if value.get("isBase64Encoded")
                else (body if isinstance(body, str) else json.dumps(body)).encode())
    except (TypeError, ValueError, binascii.Error):
        return HttpResponse(502, b'{"Message":"Internal Server Error"}', [JSON, *trace])
    headers = [(str(k), str(v)) for k, v in (value.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(c)) for c in value.get("cookies") or []]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(JSON)
    return HttpResponse(status, data, headers + trace)
