"""An environment that died while idle does not fail the request that finds it dead.

Found by benchmarks/reliability.py (S3 faults at a cold start): an idle environment is frozen,
so a SIGKILL sent to it then takes effect only when the next invocation thaws it; that request
failed with Runtime.ExitError although its event never reached a runtime.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from tests.emulator.conftest import Emu


def test_request_finding_its_environment_killed_while_idle_runs_in_a_new_one(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function("""
        import os
        def handler(event, context):
            return {"pid": os.getpid(), "n": event["n"]}
        """))
    first = emu.client.invoke(FunctionName="fn", Payload=json.dumps({"n": 1}))
    assert "FunctionError" not in first
    # GIVEN the warm environment is killed while it waits (frozen) for its next event
    (env,) = emu.thread.function("fn").environments
    assert env.proc is not None
    time.sleep(0.1)  # past the freeze delay
    os.killpg(env.proc.pid, signal.SIGKILL)
    # WHEN the next request comes
    second = emu.client.invoke(FunctionName="fn", Payload=json.dumps({"n": 2}))
    # THEN it is served, by a new environment, and the dead one is gone
    assert "FunctionError" not in second, second["Payload"].read()
    assert json.loads(second["Payload"].read())["n"] == 2
    ids = [e["id"] for e in emu.environments("fn")]
    assert ids == ["fn-2"]
    assert any("was killed while frozen" in line for line in emu.lines)
