"""Lambda event codecs: every trigger's event -> one Request, one result -> that trigger's shape.

Understood: direct invokes (the payload is the request), API Gateway REST (v1 proxy), HTTP API
(payload 2.0) and Function URLs (2.0 too, told apart by their domain). Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from modelambda.limits import SYNC_PAYLOAD_BYTES
from modelambda.runtime.errors import InvalidBase64, InvalidJSON, PayloadTooLarge

DIRECT, REST_V1, HTTP_V2, FUNCTION_URL = "direct", "rest-v1", "http-v2", "function-url"

JSON_HEADERS = {"Content-Type": "application/json"}


class Request:
    __slots__ = ("body", "headers", "kind", "method", "path")

    def __init__(self, kind: str, method: str = "POST", path: str = "/", body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.method = method
        self.path = path
        self.body = body  # the parsed JSON body (or direct payload); None when there is none
        self.headers = headers or {}  # lower-case names


def event_kind(event: Any) -> str:
    if isinstance(event, dict):
        context = event.get("requestContext")
        if isinstance(context, dict):
            if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
                domain = str(context.get("domainName", ""))
                return FUNCTION_URL if ".lambda-url." in domain else HTTP_V2
            if "httpMethod" in event:
                return REST_V1
    return DIRECT


def _body_bytes(event: dict[str, Any]) -> bytes | None:
    raw = event.get("body")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidJSON(f"the event's body must be a string, got {type(raw).__name__}")
    if event.get("isBase64Encoded"):
        if len(raw) > SYNC_PAYLOAD_BYTES * 4 // 3 + 4:
            raise PayloadTooLarge(_too_large(len(raw) * 3 // 4))
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidBase64(f"isBase64Encoded is true but the body is not base64: {exc}")\
                from exc
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > SYNC_PAYLOAD_BYTES:
        raise PayloadTooLarge(_too_large(len(data)))
    return data


def _too_large(size: int) -> str:
    return (f"request body is {size} bytes; Lambda takes at most {SYNC_PAYLOAD_BYTES} bytes "
            "per synchronous request: split the batch")


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"the body is not UTF-8 text: {exc}") from exc
    except ValueError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidJSON("the body is not usable JSON: nested too deeply") from exc


def decode(event: Any) -> Request:
    """Turn any supported event into a Request. Raises RequestError subclasses on bad input."""
    kind = event_kind(event)
    if kind == DIRECT:
        if isinstance(event, (str, bytes)):  # a payload that is itself a JSON string
            event = parse_json(event.encode() if isinstance(event, str) else event)
        return Request(kind, body=event)
    raw_headers = event.get("headers")  # an object from API Gateway and Function URLs; a
    # hand-made event may carry anything there, and headers only inform: ignored if not one
    headers = ({str(k).lower(): str(v) for k, v in raw_headers.items()}
               if isinstance(raw_headers, dict) else {})
    if kind == REST_V1:
        method, path = str(event.get("httpMethod", "POST")), str(event.get("path", "/"))
    else:
        http = event["requestContext"]["http"]
        method, path = str(http.get("method", "POST")), str(event.get("rawPath", "/"))
    data = _body_bytes(event)
    body = parse_json(data) if data is not None else None
    return Request(kind, method.upper(), path, body, headers)


def encode(kind: str, status: int, payload: Any) -> Any:
    """The function's result for this event kind, with ``payload`` as the JSON body."""
    if kind == DIRECT:
        return payload
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    if kind == REST_V1:
        return {"statusCode": status, "headers": dict(JSON_HEADERS), "multiValueHeaders": {},
                "body": body, "isBase64Encoded": False}
    return {"statusCode": status, "headers": dict(JSON_HEADERS), "cookies": [], "body": body,
            "isBase64Encoded": False}
