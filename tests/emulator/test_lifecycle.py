"""Lambda's lifecycle on the emulator: cold and warm, limits, crashes, init errors, logs."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import Emu

ECHO = """
import os
COUNT = 0
TOKEN = os.urandom(8).hex()  # one per process: tells environments apart (PIDs are namespaced)
def handler(event, context):
    global COUNT
    COUNT += 1
    print("hello from the handler", COUNT)
    return {"event": event, "count": COUNT, "pid": TOKEN,
            "request_id": context.aws_request_id, "name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "LAMBDA_TASK_ROOT", "_HANDLER",
                    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME")}}
"""

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB\t"
    r"Max Memory Used: (?P<used>\d+) MB(\tInit Duration: (?P<init>\d+\.\d\d) ms)?"
    r"(\tStatus: (?P<status>timeout|error)(\tError Type: (?P<error_type>\S+))?)?$", re.M)


def invoke(emu: Emu, name: str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    response = emu.client.invoke(FunctionName=name, Payload=json.dumps(payload or {}),
                                 LogType="Tail", **kwargs)
    response["body"] = json.loads(response["Payload"].read())
    response["log"] = base64.b64decode(response.get("LogResult", "")).decode()
    result: dict[str, Any] = response
    return result


def test_cold_then_warm_reuses_the_environment(emu: Emu, make_function: Callable[..., Any]
                                               ) -> None:
    emu.add(make_function(ECHO, memory_mb=256))
    first = invoke(emu, "fn", {"n": 1})
    second = invoke(emu, "fn", {"n": 2})

    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert first["body"]["event"] == {"n": 1} and second["body"]["count"] == 2
    assert first["body"]["pid"] == second["body"]["pid"]  # same process: warm
    cold, warm = REPORT.search(first["log"]), REPORT.search(second["log"])
    assert cold and warm
    assert cold["init"] is not None and warm["init"] is None  # Init Duration on cold only
    assert cold["id"] == first["body"]["request_id"]
    assert cold["size"] == "256" and 5 < int(cold["used"]) < 256  # measured, not made up
    assert int(warm["billed"]) >= float(warm["duration"])
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "$LATEST"
    (env,) = emu.environments("fn")
    assert env["invocations"] == 2 and env["state"] == "idle"


def test_the_function_sees_lambdas_environment(emu: Emu, make_function: Callable[..., Any]
                                               ) -> None:
    emu.add(make_function(ECHO, memory_mb=256, timeout_s=30))
    body = invoke(emu, "fn")["body"]
    assert body["name"] == "fn" and body["memory"] == "256"
    assert 0 < body["remaining_ms"] <= 30_000
    assert body["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": "fn.handler", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn"}


def test_tail_returns_the_invocations_own_log(emu: Emu, make_function: Callable[..., Any]
                                              ) -> None:
    emu.add(make_function(ECHO))
    invoke(emu, "fn")
    log = invoke(emu, "fn")["log"]
    assert "hello from the handler 2" in log
    assert "hello from the handler 1" not in log  # only this invocation's lines
    assert log.index("START RequestId") < log.index("hello") < log.index("END RequestId") \
        < log.index("REPORT RequestId")


def test_concurrency_up_to_the_limit_then_429(emu: Emu, make_function: Callable[..., Any]
                                              ) -> None:
    emu.add(make_function("import time\ndef handler(e, c):\n    time.sleep(1.5)\n    return 1\n",
                          reserved_concurrency=2))
    results: list[Any] = []

    def call() -> None:
        try:
            results.append(invoke(emu, "fn")["body"])
        except ClientError as exc:
            results.append(exc.response)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the first two are in flight when the third arrives
    for thread in threads:
        thread.join()
    throttled = [r for r in results if isinstance(r, dict) and "Error" in r]
    assert results.count(1) == 2 and len(throttled) == 1
    assert throttled[0]["Error"]["Code"] == "TooManyRequestsException"
    assert throttled[0]["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert throttled[0]["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert len(emu.environments("fn")) == 2


def test_timeout_kills_the_environment_and_the_next_invoke_is_cold(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("import time, os\nTOKEN = os.urandom(8).hex()\n"
                          "def handler(e, c):\n    if e.get('sleep'):\n"
                          "        time.sleep(5)\n    return TOKEN\n", timeout_s=1))
    pid = invoke(emu, "fn")["body"]
    start = time.monotonic()
    slow = invoke(emu, "fn", {"sleep": True})
    assert time.monotonic() - start < 4
    assert slow["FunctionError"] == "Unhandled"
    assert slow["body"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in slow["body"]["errorMessage"]
    assert "Task timed out after 1.00 seconds" in slow["log"]
    after = invoke(emu, "fn")
    assert "FunctionError" not in after and after["body"] != pid
    assert REPORT.search(after["log"])["init"] is not None  # type: ignore[index]


def test_out_of_memory_kills_the_environment(emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("import time\ndef handler(e, c):\n    blocks = []\n"
                          "    for _ in range(40):\n        blocks.append(b'x' * 20_000_000)\n"
                          "        time.sleep(0.05)\n    return len(blocks)\n", memory_mb=128))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled"
    assert result["body"]["errorType"] == "Runtime.OutOfMemory"
    report = REPORT.search(result["log"])
    assert report and int(report["used"]) >= 128
    assert emu.environments("fn") == []


def test_tmp_is_capped_at_ephemeral_storage(emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("""
        def handler(e, c):
            chunk = b"\\0" * (16 * 1024 * 1024)
            written = 0
            try:
                with open("/tmp/fill", "wb") as f:
                    while written < 600 * 1024 * 1024:
                        f.write(chunk)
                        f.flush()
                        written += len(chunk)
            except OSError as exc:
                return {"error": str(exc), "written_mb": written // 2**20}
            finally:
                import os
                os.remove("/tmp/fill")
            return {"written_mb": written // 2**20}
        """, ephemeral_mb=512, memory_mb=1024))
    body = invoke(emu, "fn")["body"]
    assert "No space left on device" in body["error"]
    assert 400 <= body["written_mb"] <= 512


def test_var_task_is_read_only(emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("""
        def handler(e, c):
            try:
                open("/var/task/new.txt", "w").write("x")
            except OSError as exc:
                return str(exc)
            return "written"
        """))
    assert "Read-only file system" in invoke(emu, "fn")["body"]


@pytest.mark.parametrize("handler,files,error_type", [
    ("fn.nothere", {}, "Runtime.HandlerNotFound"),
    ("missing.handler", {}, "Runtime.ImportModuleError"),
    ("broken.handler", {"broken.py": "import not_installed_anywhere\n"},
     "Runtime.ImportModuleError"),
    ("syntax.handler", {"syntax.py": "def handler(:\n"}, "Runtime.UserCodeSyntaxError"),
    ("fnhandler", {}, "Runtime.MalformedHandlerName"),
])
def test_init_errors_come_back_with_awslambdarics_types(
        emu: Emu, make_function: Callable[..., Any], handler: str, files: dict[str, str],
        error_type: str) -> None:
    emu.add(make_function(ECHO, handler=handler, files=files))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled"
    assert result["body"]["errorType"] == error_type
    assert "INIT_REPORT" in result["log"] and f"Error Type: {error_type}" in result["log"]


def test_handler_exception_is_a_function_error(emu: Emu, make_function: Callable[..., Any]
                                               ) -> None:
    emu.add(make_function("def handler(e, c):\n    raise ValueError('bad value here')\n"))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled"
    assert result["body"]["errorType"] == "ValueError"
    assert result["body"]["errorMessage"] == "bad value here"
    assert invoke(emu, "fn")["FunctionError"] == "Unhandled"  # environment survived
    assert len(emu.environments("fn")) == 1


def test_a_crash_fails_only_its_request_and_the_environment_is_replaced(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("import os\nTOKEN = os.urandom(8).hex()\n"
                          "def handler(e, c):\n    if e.get('crash'):\n"
                          "        os._exit(3)\n    return TOKEN\n"))
    before = invoke(emu, "fn")["body"]
    crashed = invoke(emu, "fn", {"crash": True})
    assert crashed["FunctionError"] == "Unhandled"
    assert crashed["body"]["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crashed["body"]["errorMessage"]
    after = invoke(emu, "fn")
    assert "FunctionError" not in after and after["body"] != before


def test_dry_run_unknown_function_qualifiers_and_payload_limits(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function(ECHO))
    dry = emu.client.invoke(FunctionName="fn", InvocationType="DryRun", Payload=b"{}")
    assert dry["StatusCode"] == 204
    assert emu.environments("fn") == []  # a dry run starts nothing

    for name, kwargs in (("nope", {}), ("fn", {"Qualifier": "prod"}), ("fn:prod", {})):
        with pytest.raises(ClientError) as info:
            emu.client.invoke(FunctionName=name, Payload=b"{}", **kwargs)
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert "Function not found: arn:aws:lambda:us-east-1:000000000000:function:" \
            in info.value.response["Error"]["Message"]

    arn = "arn:aws:lambda:us-east-1:000000000000:function:fn"
    for name, kwargs in ((arn, {}), ("fn", {"Qualifier": "$LATEST"}), (f"{arn}:$LATEST", {})):
        assert emu.client.invoke(FunctionName=name, Payload=b"{}", **kwargs)["StatusCode"] == 200

    with pytest.raises(ClientError) as info:
        emu.client.invoke(FunctionName="fn", Payload=json.dumps({"x": "a" * 6_300_000}))
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413

    with pytest.raises(ClientError) as info:
        emu.client.invoke(FunctionName="fn", Payload=b"{not json")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_response_over_6mb_is_a_function_error(emu: Emu, make_function: Callable[..., Any]
                                               ) -> None:
    emu.add(make_function("def handler(e, c):\n    return 'x' * 7_000_000\n"))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled"
    assert result["body"]["errorType"] == "Function.ResponseSizeTooLarge"


def test_idle_environments_are_reaped(make_function: Callable[..., Any]) -> None:
    emu = Emu(idle_timeout_s=1)
    try:
        emu.add(make_function(ECHO))
        invoke(emu, "fn")
        assert len(emu.environments("fn")) == 1
        deadline = time.monotonic() + 10
        while emu.environments("fn") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert emu.environments("fn") == []
        assert any("reaped after" in line for line in emu.lines)
    finally:
        emu.stop(drain_s=1)


def test_plain_processes_without_bwrap_still_work(make_function: Callable[..., Any]) -> None:
    emu = Emu()
    try:
        emu.add(make_function(ECHO, use_bwrap=False))
        body = invoke(emu, "fn", {"n": 1})["body"]
        assert body["event"] == {"n": 1}
        assert body["env"]["LAMBDA_TASK_ROOT"].endswith("task-fn")  # remapped, not /var/task
    finally:
        emu.stop(drain_s=1)


def test_client_context_reaches_the_function(emu: Emu, make_function: Callable[..., Any]
                                             ) -> None:
    emu.add(make_function("def handler(e, c):\n    return c.client_context.custom\n"))
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    result = emu.client.invoke(FunctionName="fn", Payload=b"{}", ClientContext=context)
    assert json.loads(result["Payload"].read()) == {"k": "v"}




def test_the_pure_python_runtime_client_does_the_same_loop(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    # Where awslambdaric has no wheel, modelambda's own client runs the handler.
    emu.add(make_function(ECHO, runtime_client="python"))
    first, second = invoke(emu, "fn", {"n": 1}), invoke(emu, "fn", {"n": 2})
    assert first["body"]["event"] == {"n": 1} and second["body"]["count"] == 2
    assert first["body"]["pid"] == second["body"]["pid"]
    assert first["body"]["request_id"] == REPORT.search(first["log"])["id"]  # type: ignore[index]
    assert 0 < first["body"]["remaining_ms"] <= 30_000


@pytest.mark.parametrize("handler,files,error_type", [
    ("fn.nothere", {}, "Runtime.HandlerNotFound"),
    ("broken.handler", {"broken.py": "import not_installed_anywhere\n"},
     "Runtime.ImportModuleError"),
    ("syntax.handler", {"syntax.py": "def handler(:\n"}, "Runtime.UserCodeSyntaxError"),
    ("fnhandler", {}, "Runtime.MalformedHandlerName"),
])
def test_the_pure_python_client_reports_init_errors_like_awslambdaric(
        emu: Emu, make_function: Callable[..., Any], handler: str, files: dict[str, str],
        error_type: str) -> None:
    emu.add(make_function(ECHO, handler=handler, files=files, runtime_client="python"))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled"
    assert result["body"]["errorType"] == error_type


def test_the_pure_python_client_reports_handler_errors(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("def handler(e, c):\n    raise KeyError('k')\n", runtime_client="python"))
    result = invoke(emu, "fn")
    assert result["FunctionError"] == "Unhandled" and result["body"]["errorType"] == "KeyError"
    assert invoke(emu, "fn")["body"]["errorType"] == "KeyError"  # the environment lives on


def test_an_init_over_the_limit_is_retried_inside_the_invocation(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    # Lambda: an init phase past 10 s (here 1 s) is retried within the first invocation,
    # under the function's timeout.
    emu.add(make_function("import time\ntime.sleep(1.5)\ndef handler(e, c):\n    return 'ok'\n",
                          init_timeout_s=1.0, timeout_s=10))
    result = invoke(emu, "fn")
    assert result["body"] == "ok" and "FunctionError" not in result
    assert any("Phase: init\tStatus: timeout" in line for line in emu.lines)
    assert len(emu.environments("fn")) == 1


@pytest.mark.parametrize("use_bwrap,error_type", [(None, "Runtime.ExitError"),
                                                   (False, "Runtime.StartError")])
def test_an_environment_that_cannot_start_fails_its_request_and_frees_its_slot(
        emu: Emu, make_function: Callable[..., Any], use_bwrap: bool | None,
        error_type: str) -> None:
    # inside bwrap the exec fails in the sandbox (the runtime exits); without it, spawning
    # fails in the emulator itself
    emu.add(make_function(ECHO, python="/nonexistent/python3.12", reserved_concurrency=1,
                          use_bwrap=use_bwrap))
    for _ in range(2):  # the second is not throttled: the slot was given back
        result = invoke(emu, "fn")
        assert result["FunctionError"] == "Unhandled"
        assert result["body"]["errorType"] == error_type
    assert emu.environments("fn") == []


def test_client_context_must_be_base64_json(emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function(ECHO))
    with pytest.raises(ClientError) as info:
        emu.client.invoke(FunctionName="fn", Payload=b"{}",
                          ClientContext=base64.b64encode(b"not json").decode())
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_the_developers_home_and_aws_files_are_not_visible(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    import os

    emu.add(make_function("""
import os
def handler(event, context):
    return {"home": sorted(os.listdir(event["home"])),
            "aws": [os.environ.get("AWS_SHARED_CREDENTIALS_FILE"),
                    os.environ.get("AWS_CONFIG_FILE")]}
"""))
    body = invoke(emu, "fn", {"home": os.path.expanduser("~")})["body"]
    assert ".cache" not in body["home"] and ".aws" not in body["home"]
    assert body["aws"] == ["/dev/null", "/dev/null"]
