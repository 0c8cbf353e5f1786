"""Lambda behaviours the emulator reproduces since issue 10's fixes: the response limit and
what follows it, REPORT lines of failed invocations, an init retried inside the invocation,
SnapStart's own init limit, Event retries and age, and a Runtime API only its environment can
use."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from modelambda import limits
from modelambda.local.settings import FunctionSettings
from tests.emulator.conftest import Emu


def call(emu: Emu, name: str = "fn", payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    response = emu.client.invoke(FunctionName=name, Payload=json.dumps(payload or {}),
                                 LogType="Tail", **kwargs)
    data = response["Payload"].read()
    response["raw"] = data
    response["body"] = json.loads(data)
    response["log"] = base64.b64decode(response.get("LogResult", "")).decode()
    result: dict[str, Any] = response
    return result


def report(log: str) -> str:
    return next(line for line in log.splitlines() if line.startswith("REPORT "))


def field(line: str, name: str) -> str | None:
    found = re.search(rf"\t{name}: ([^\t]+)", line)
    return found.group(1) if found else None


# The handler answers with a JSON string of exactly `event["size"]` bytes (quotes included).
SIZED = """
def handler(event, context):
    return "x" * (event["size"] - 2)
"""


def test_a_response_of_6mb_plus_100_passes_a_bigger_one_fails_and_the_next_succeeds(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    # Lambda's response limit is 6 MB + 100 bytes (LAMBDA_FACTS: Runtime API)
    emu.add(make_function(SIZED))
    ok = call(emu, payload={"size": limits.SYNC_RESPONSE_BYTES})
    assert "FunctionError" not in ok and len(ok["raw"]) == 6_291_556

    over = call(emu, payload={"size": limits.SYNC_RESPONSE_BYTES + 1})
    assert over["FunctionError"] == "Unhandled"
    assert over["body"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert "Status: error\tError Type: Function.ResponseSizeTooLarge" in report(over["log"])

    # the runtime exits after its 413: the next request gets a new environment, not its corpse
    after = call(emu, payload={"size": 10})
    assert "FunctionError" not in after and after["body"] == "x" * 8


def test_failed_invocations_report_status_and_error_type(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    emu.add(make_function("""
import os, time
def handler(event, context):
    if event.get("raise"):
        raise KeyError("k")
    if event.get("exit"):
        os._exit(3)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return "ok"
""", timeout_s=1))
    fine = report(call(emu)["log"])
    assert "Status" not in fine and "Error Type" not in fine

    raised = report(call(emu, payload={"raise": True})["log"])
    assert field(raised, "Status") == "error" and field(raised, "Error Type") == "KeyError"

    exited = report(call(emu, payload={"exit": True})["log"])
    assert field(exited, "Status") == "error"
    assert field(exited, "Error Type") == "Runtime.ExitError"

    timed_out = report(call(emu, payload={"sleep": 3})["log"])
    assert field(timed_out, "Status") == "timeout" and field(timed_out, "Error Type") is None


def test_an_init_retried_inside_the_invocation_is_in_its_duration(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    # Lambda: an init past 10 s (here 0.5 s) is retried inside the first invocation, under
    # the function's timeout; that REPORT has no Init Duration, its Duration holds the init
    emu.add(make_function("import time\ntime.sleep(0.8)\ndef handler(e, c):\n    return 'ok'\n",
                          init_timeout_s=0.5, timeout_s=10))
    result = call(emu)
    assert result["body"] == "ok"
    line = report(result["log"])
    assert field(line, "Init Duration") is None
    assert float(str(field(line, "Duration")).split()[0]) >= 800
    # and the next one is an ordinary warm invocation
    warm = report(call(emu)["log"])
    assert float(str(field(warm, "Duration")).split()[0]) < 500


def test_snapstart_init_has_the_longer_of_130_s_and_the_timeout(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    settings = make_function("import time\ntime.sleep(1.0)\ndef handler(e, c):\n    return 'ok'\n",
                             snapstart=True, init_timeout_s=0.5)
    # SnapStart's limit, not the on-demand 10 s (here 0.5 s)
    assert settings.snapshot_init_timeout_s == 130
    assert FunctionSettings(**{**settings.__dict__, "timeout_s": 300}).snapshot_init_timeout_s \
        == 300
    emu.add(settings)
    result = call(emu, Qualifier="live")  # SnapStart restores published versions
    assert result["body"] == "ok" and "FunctionError" not in result
    assert "Restore Duration" in report(result["log"])


def test_each_restored_snapstart_environment_has_its_own_tmp(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    # Lambda restores the snapshot's disk with its memory: each restored environment starts
    # with the /tmp that init left, and what it writes there is its own
    emu.add(make_function("""
import os, time
open("/tmp/from-init", "w").write("snapshot")
def handler(event, context):
    mine = "/tmp/" + context.aws_request_id
    open(mine, "w").write("x")
    time.sleep(0.5)  # both requests in flight: two environments
    return sorted(os.listdir("/tmp")), open("/tmp/from-init").read(), mine[5:]
""", snapstart=True, reserved_concurrency=2))
    import threading

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(call(emu, "fn:1")["body"]))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    for listing, from_init, mine in results:
        assert from_init == "snapshot"
        assert listing == sorted(["from-init", mine])
    assert not any("shares /tmp" in line for line in emu.lines)


def test_a_runtime_api_serves_only_its_own_environment(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    import http.client

    # GIVEN two functions, each with a warm environment waiting for its next event
    emu.add(make_function("""
import http.client, os
def handler(event, context):
    if "steal" not in event:
        return os.environ["AWS_LAMBDA_RUNTIME_API"]
    conn = http.client.HTTPConnection(event["steal"], timeout=5)
    try:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        return conn.getresponse().status
    except (ConnectionError, http.client.HTTPException) as exc:
        return type(exc).__name__
"""))
    emu.add(make_function("def handler(e, c):\n    return 'victim'\n", name="victim"))
    assert call(emu, "victim")["body"] == "victim"
    (victim,) = emu.thread.function("victim").environments
    address = f"127.0.0.1:{victim.api.port}"

    # WHEN another local process, or another function's environment, polls its /next
    conn = http.client.HTTPConnection(address, timeout=5)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = conn.getresponse()
    body = json.loads(answer.read())
    conn.close()
    # THEN it is refused, and the environment's own runtime still gets its events
    assert answer.status == 403 and body["errorType"] == "AccessDenied"
    assert call(emu, payload={"steal": address})["body"] == 403
    assert call(emu, "victim")["body"] == "victim"
    assert call(emu)["body"].startswith("127.0.0.1:")  # its own API is its own


def _failures(path: Any, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            found = [json.loads(line) for line in path.read_text().splitlines()]
            if len(found) >= count:
                return found
        time.sleep(0.05)
    raise AssertionError("no on-failure record in time")


def test_event_retries_and_maximum_age_are_configurable(
        emu: Emu, make_function: Callable[..., FunctionSettings], tmp_path: Any) -> None:
    failing = "def handler(e, c):\n    raise RuntimeError('no')\n"
    # MaximumRetryAttempts = 0: one attempt, then the on-failure destination
    emu.add(make_function(failing, name="once", event_retries=0,
                          on_failure=tmp_path / "once.jsonl"))
    # MaximumEventAgeInSeconds: a retry due after the event's maximum age is not run
    emu.add(make_function(failing, name="aged", event_retry_delays_s=(0.6,),
                          event_max_age_s=0.3, on_failure=tmp_path / "aged.jsonl"))
    for name in ("once", "aged"):
        emu.client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    (once,) = _failures(tmp_path / "once.jsonl", 1)
    assert once["requestContext"]["condition"] == "RetriesExhausted"
    assert once["requestContext"]["approximateInvokeCount"] == 1
    (aged,) = _failures(tmp_path / "aged.jsonl", 1)
    assert aged["requestContext"]["condition"] == "EventAgeExceeded"
    assert aged["requestContext"]["approximateInvokeCount"] == 1
    assert aged["requestPayload"] == {"n": 1}
