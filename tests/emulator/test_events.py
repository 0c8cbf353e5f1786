"""Asynchronous (Event) invocations: queued, retried twice, then the on-failure file."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.emulator.conftest import Emu


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_failing_event_is_retried_twice_then_written_to_on_failure(
        emu: Emu, make_function: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    on_failure = tmp_path / "on-failure.jsonl"
    emu.add(make_function("""
        def handler(event, context):
            with open("/mnt/out/attempts", "a") as f:
                f.write(context.aws_request_id + "\\n")
            raise RuntimeError("always fails")
        """, mounts={"/mnt/out": out}, on_failure=on_failure, event_retry_delays_s=(0.1, 0.2)))

    response = emu.client.invoke(FunctionName="fn", InvocationType="Event",
                                 Payload=json.dumps({"job": 7}))
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]

    (record,) = wait_for(lambda: records(on_failure))
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"job": 7}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    # each attempt ran with the same request id, as Lambda's retries do
    assert (out / "attempts").read_text().split() == [request_id] * 3


def test_event_survives_an_environment_killed_mid_invoke(
        emu: Emu, make_function: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    on_failure = tmp_path / "on-failure.jsonl"
    emu.add(make_function("""
        import time
        def handler(event, context):
            with open("/mnt/out/attempts", "a") as f:
                f.write("start\\n")
            time.sleep(event["sleep"])
            with open("/mnt/out/attempts", "a") as f:
                f.write("done\\n")
            return "ok"
        """, mounts={"/mnt/out": out}, on_failure=on_failure, event_retry_delays_s=(0.1, 0.1)))
    emu.client.invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"sleep": 1.5}')

    # GIVEN the event is running in an environment
    wait_for(lambda: (out / "attempts").exists())
    function = emu.thread.function("fn")
    (env,) = function.environments
    assert env.proc is not None
    # WHEN that environment is killed mid-invoke
    os.killpg(env.proc.pid, signal.SIGKILL)
    # THEN the event is retried in a new environment and completes; nothing goes to on-failure
    wait_for(lambda: (out / "attempts").read_text().split().count("done") == 1)
    assert (out / "attempts").read_text().split() == ["start", "start", "done"]
    time.sleep(0.3)
    assert records(on_failure) == []


def test_event_payload_over_1mb_is_refused(emu: Emu, make_function: Callable[..., Any]) -> None:
    from botocore.exceptions import ClientError

    emu.add(make_function("def handler(e, c):\n    return 1\n"))
    try:
        emu.client.invoke(FunctionName="fn", InvocationType="Event",
                          Payload=json.dumps({"x": "a" * 1_100_000}))
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "RequestEntityTooLargeException"
    else:
        raise AssertionError("expected a 413")
