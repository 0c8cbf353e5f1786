"""SnapStart, locally: environments restored from a pre-initialised template."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelambda.local.services import function_for
from tests.conftest import IRIS
from tests.emulator.conftest import Emu

HOOKS = """
import os, time, random
from snapshot_restore_py import register_before_snapshot, register_after_restore
ORDER = []
time.sleep(1.0)  # an expensive init, paid once for the snapshot
TOKEN = os.urandom(4).hex()
register_before_snapshot(lambda: ORDER.append("before-1"))
register_before_snapshot(lambda: ORDER.append("before-2"))
register_after_restore(lambda: ORDER.append("after-1"))
register_after_restore(lambda: ORDER.append("after-2"))
random.seed(0)

def handler(event, context):
    return {"order": ORDER, "token": TOKEN, "random": random.random(),
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""


def call(emu: Emu, name: str = "fn", payload: bytes = b"{}") -> tuple[Any, str]:
    """Invoke the function's alias: SnapStart restores published versions only."""
    response = emu.client.invoke(FunctionName=name, Qualifier="live", Payload=payload,
                                 LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    return json.loads(response["Payload"].read()), log


def restore_ms(log: str) -> float:
    report = next(line for line in log.splitlines() if line.startswith("REPORT"))
    assert "Init Duration" not in report
    return float(report.split("Restore Duration: ")[1].split(" ms")[0])


def test_restored_environments_share_one_init_and_run_hooks_in_lambdas_order(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    emu.add(make_function(HOOKS, snapstart=True, reserved_concurrency=3))
    results: list[tuple[Any, str]] = []
    threads = [threading.Thread(target=lambda: results.append(call(emu))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    bodies = [body for body, _ in results]
    # before-snapshot hooks in reverse order of registration, after-restore ones in order
    assert all(b["order"] == ["before-2", "before-1", "after-1", "after-2"] for b in bodies)
    assert len({b["token"] for b in bodies}) == 1  # one init, restored three times
    assert all(b["init_type"] == "snap-start" for b in bodies)
    # each restore is far cheaper than the 1 s init it skips
    assert all(restore_ms(log) < 900 for _, log in results)
    assert len(emu.environments("fn")) == 3


# A postprocess that reports, per prediction, draws from `random` and numpy's generator and
# which environment answered (slow enough that concurrent requests get environments of their
# own). With NO_RESEED set, it switches off modelambda's after-restore re-seed before the
# runtime registers it: the control that shows what the re-seed changes.
RANDOM_PIPELINE = """
import os, random, time
import numpy.random  # numpy imports it lazily: here it is in the snapshot, seeded once
if os.environ.get("NO_RESEED"):
    import modelambda.runtime.snapstart as snapstart
    snapstart.reseed = lambda: None

def postprocess(outputs):
    time.sleep(0.5)
    rows = len(next(iter(outputs.values())))
    return [{"random": random.random(), "numpy": float(numpy.random.random()),
             "pid": os.getpid()} for _ in range(rows)]
"""


def _draws(emu: Emu, name: str) -> list[dict[str, Any]]:
    """The first prediction of two concurrent requests, answered by two restored
    environments."""
    results: list[tuple[Any, str]] = []
    request = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    threads = [threading.Thread(target=lambda: results.append(call(emu, name, request)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(restore_ms(log) > 0 for _, log in results)  # restored, not initialised
    draws = [body["predictions"][0] for body, _ in results]
    assert draws[0]["pid"] != draws[1]["pid"]  # two environments
    return draws


def test_iris_with_snapstart_warms_the_model_and_reseeds(tmp_path: Path) -> None:
    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    spec = (service / "modelambda.toml").read_text()
    (service / "modelambda.toml").write_text(
        spec.replace('timeout_s = 10', 'timeout_s = 10\nsnapstart = true')
        + '\n[pipeline]\npostprocess = "pipeline:postprocess"\n')
    (service / "pipeline.py").write_text(RANDOM_PIPELINE)
    settings, _ = function_for(service)
    assert settings.snapstart
    emu = Emu()
    try:
        emu.add(settings)
        emu.add(replace(settings, name="no-reseed",
                        environment={**settings.environment, "NO_RESEED": "1"}))
        # WITHOUT the after-restore re-seed, two environments restored from one snapshot
        # draw the same numbers (the generators' state is the snapshot's) ...
        same = _draws(emu, "no-reseed")
        assert same[0]["random"] == same[1]["random"]
        assert same[0]["numpy"] == same[1]["numpy"]
        # ... WITH it (the runtime's hook), each draws its own
        reseeded = _draws(emu, "iris")
        assert reseeded[0]["random"] != reseeded[1]["random"]
        assert reseeded[0]["numpy"] != reseeded[1]["numpy"]

        body, _ = call(emu, "iris", (IRIS / "request.json").read_bytes())
        assert len(body["predictions"]) == 2
        assert any('"message":"warm-up"' in line for line in emu.lines)  # before the snapshot
    finally:
        emu.stop(drain_s=1)


def test_restored_environments_keep_their_memory_and_their_subprocesses(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    # GIVEN an init that holds 90 MB, so three restored copies together exceed memory_mb
    emu.add(make_function("""
import subprocess
BLOB = b"x" * 90_000_000
def handler(event, context):
    return subprocess.run(["sh", "-c", "exit 3"]).returncode
""", snapstart=True, reserved_concurrency=3, memory_mb=256))
    results: list[tuple[Any, str]] = []
    threads = [threading.Thread(target=lambda: results.append(call(emu))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN each environment counts its own memory (none is killed through the template)
    # and a subprocess's exit status reaches the function
    assert [body for body, _ in results] == [3, 3, 3]
