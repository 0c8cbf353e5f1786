"""A small pure-Python Lambda runtime interface client, for where awslambdaric has no wheel.

It does what awslambdaric does for a handler: import it (reporting init errors with the same
error types), then loop: ``GET /next``, call ``handler(event, context)``, ``POST`` the
response or the error. Standalone on purpose (stdlib only, no modelambda imports): the
emulator copies it into the runtime directory and runs it by path inside the environment, as
``python -S /var/runtime/<client dir>/pyric.py module.function`` (``lambda_runtime.py``),
where modelambda itself is not importable. Its ``RuntimeClient`` also serves SnapStart's
forked environments (``snapstart_boot.py``).

The error types are literals here for that reason; ``errortypes.py`` holds the same names for
the emulator's side, and a test checks that the two agree.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import socket
import sys
import time
import traceback
from typing import Any

API = "/2018-06-01/runtime"

# The names and values of modelambda/local/errortypes.py (a test checks that they agree):
# literals here, because this file runs where modelambda cannot be imported.
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
UNKNOWN = "Runtime.Unknown"


class RuntimeClient:
    """The Runtime API calls, over one keep-alive connection with Nagle off."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[Any, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.address)
                self.conn.connect()
                assert self.conn.sock is not None
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # The three calls awslambdaric makes of its native client, same signatures.
    def next(self) -> tuple[bytes, dict[str, str]]:
        response, body = self._request("GET", f"{API}/invocation/next")
        return body, dict(response.getheaders())

    def post_invocation_result(self, invoke_id: str, result_data: bytes,
                               content_type: str = "application/json", *rest: Any) -> None:
        self._request("POST", f"{API}/invocation/{invoke_id}/response", result_data,
                      {"Content-Type": content_type})

    def post_error(self, invoke_id: str, error_response_data: str | bytes, xray_fault: str,
                   *rest: Any) -> None:
        data = error_response_data.encode() if isinstance(error_response_data, str) \
            else error_response_data
        self._request("POST", f"{API}/invocation/{invoke_id}/error", data,
                      {"Content-Type": "application/json",
                       "Lambda-Runtime-Function-Error-Type": _error_type(data)})

    def post_init_error(self, payload: dict[str, Any]) -> None:
        self._request("POST", f"{API}/init/error", json.dumps(payload).encode(),
                      {"Content-Type": "application/json",
                       "Lambda-Runtime-Function-Error-Type": payload["errorType"]})


def _error_type(data: bytes) -> str:
    try:
        return str(json.loads(data).get("errorType", UNKNOWN))
    except (ValueError, AttributeError):
        return UNKNOWN


class Fault(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _Obj:
    def __init__(self, data: dict[str, Any] | None) -> None:
        for key, value in (data or {}).items():
            setattr(self, key, value)


class Context:
    """The attributes and method of awslambdaric's LambdaContext that handlers use."""

    def __init__(self, headers: dict[str, str]) -> None:
        env = os.environ
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)
        context = headers.get("Lambda-Runtime-Client-Context")
        self.client_context = _Obj(json.loads(context)) if context else None
        identity = headers.get("Lambda-Runtime-Cognito-Identity")
        self.identity = _Obj(json.loads(identity)) if identity else _Obj({})

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler(name: str) -> Any:
    """Import ``module.function``; Fault with awslambdaric's error types on failure."""
    try:
        module_name, function = name.rsplit(".", 1)
    except ValueError as exc:
        raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{name}': {exc}") from exc
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault(IMPORT_MODULE_ERROR,
                    f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise Fault(USER_CODE_SYNTAX_ERROR,
                    f"Syntax error in module '{module_name}': {exc}") from exc
    handler = getattr(module, function, None)
    if handler is None:
        raise Fault(HANDLER_NOT_FOUND,
                    f"Handler '{function}' missing on module '{module_name}'")
    return handler


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__,
            "requestId": "", "stackTrace": traceback.format_tb(exc.__traceback__)}


def main(argv: list[str]) -> None:
    # Run by path, Python put this file's directory first on sys.path; put the working
    # directory (the task root) there, as `python -m awslambdaric` has it.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.getcwd()
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)
    try:
        handler = load_handler(argv[1])
    except Fault as fault:
        client.post_init_error(error_payload(fault, fault.error_type))
        sys.exit(1)
    except Exception as exc:  # the module raised while importing
        client.post_init_error(error_payload(exc))
        sys.exit(1)
    while True:
        body, headers = client.next()
        context = Context(headers)
        try:
            result = handler(json.loads(body or b"null"), context)
            data = json.dumps(result).encode()
        except Exception as exc:
            client.post_error(context.aws_request_id, json.dumps(error_payload(exc)), "")
            continue
        client.post_invocation_result(context.aws_request_id, data)


if __name__ == "__main__":
    main(sys.argv)
