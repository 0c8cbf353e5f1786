"""Real services on the emulator: iris staged for python3.12, through every front door."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelambda.local.services import function_for
from modelambda.local.settings import FunctionSettings
from tests.conftest import IRIS, ROOT, make_app
from tests.emulator.conftest import Emu

ROWS = json.loads((IRIS / "request.json").read_text())


@pytest.fixture(scope="module")
def iris_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("svc") / "iris"
    shutil.copytree(IRIS, target, ignore=shutil.ignore_patterns(".modelambda"))
    spec = target / "modelambda.toml"  # a variable of its own (the build does not change)
    spec.write_text(spec.read_text() + '\n[service.environment]\nLOG_WHO = "me"\n')
    return target


@pytest.fixture(scope="module")
def iris_settings(iris_service: Path) -> FunctionSettings:
    settings, _ = function_for(iris_service)
    return settings


@pytest.fixture(scope="module")
def iris_emu(iris_settings: FunctionSettings) -> Iterator[Emu]:
    emu = Emu()
    emu.add(iris_settings, ("iris",))
    yield emu
    emu.stop(drain_s=2)


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body if method == "POST" else None,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_specs_variables_and_alias_reach_the_function(
        iris_settings: FunctionSettings) -> None:
    assert iris_settings.environment["LOG_WHO"] == "me"
    assert iris_settings.alias == "live"
    env = iris_settings.lambda_environment("127.0.0.1:1", "on-demand")
    assert env["LOG_WHO"] == "me" and env["AWS_SESSION_TOKEN"]


def test_boto3_and_function_url_give_the_in_process_predictions(iris_emu: Emu) -> None:
    expected = make_app(IRIS).handle(ROWS)
    through_boto3 = json.loads(iris_emu.client.invoke(
        FunctionName="iris", Payload=json.dumps(ROWS))["Payload"].read())
    status, headers, body = post(f"{iris_emu.url}/fn/iris/", json.dumps(ROWS).encode())
    assert through_boto3 == expected
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == expected


def test_function_url_errors_and_metadata(iris_emu: Emu) -> None:
    status, _, body = post(f"{iris_emu.url}/fn/iris/", b'{"instances": [[1, 2]]}')
    assert status == 400 and json.loads(body)["error"]["type"] == "ShapeError"
    status, _, body = post(f"{iris_emu.url}/fn/iris/", b"", method="GET")
    assert status == 200 and json.loads(body)["name"] == "iris"
    status, _, _ = post(f"{iris_emu.url}/fn/nothing/", b"{}")
    assert status == 404


def test_v2_protocol_path_is_routed_to_the_model(iris_emu: Emu) -> None:
    body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                        "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}
    status, _, raw = post(f"{iris_emu.url}/v2/models/iris/infer", json.dumps(body).encode())
    assert status == 200
    outputs = {o["name"]: o for o in json.loads(raw)["outputs"]}
    assert outputs["label"]["data"] == [0, 2]


def test_health_lists_environments(iris_emu: Emu) -> None:
    iris_emu.client.invoke(FunctionName="iris", Payload=json.dumps(ROWS))
    status, _, raw = post(f"{iris_emu.url}/health", b"", method="GET")
    health = json.loads(raw)
    (function,) = health["functions"]
    assert status == 200 and health["sandbox"] == "bwrap"
    assert function["name"] == "iris" and function["environments"]
    env = function["environments"][0]
    assert env["state"] == "idle" and env["rss_mb"] > 20 and env["invocations"] >= 1


def test_stop_drains_in_flight_requests(make_function: Callable[..., Any]) -> None:
    emu = Emu()
    emu.add(make_function("import time\ndef handler(e, c):\n    time.sleep(1)\n"
                          "    return 'done'\n"))
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.append(
        emu.client.invoke(FunctionName="fn", Payload=b"{}")["Payload"].read()))
    caller.start()
    deadline = time.monotonic() + 30
    while not any(e["state"] == "busy" for e in emu.environments("fn")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    emu.stop(drain_s=10)  # while the request is in flight
    caller.join(timeout=10)
    assert results == [b'"done"']


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(pid))
    return found


def test_up_serves_invoke_and_stops_cleanly(tmp_path: Path) -> None:
    # its own copy of the service, so processes of other tests' emulators don't count
    iris_service = tmp_path / "iris"
    shutil.copytree(IRIS, iris_service, ignore=shutil.ignore_patterns(".modelambda"))
    env = {**os.environ, "MODELAMBDA_STATE_DIR": str(tmp_path / "state")}
    up = subprocess.Popen([sys.executable, "-m", "modelambda.cli.main", "up", str(iris_service),
                           "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, cwd=ROOT)
    try:
        assert up.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            lines.append(line)
            if "ready on" in line or not line:
                break
        ready = next(line for line in lines if "ready on" in line)
        assert any("iris answered" in line for line in lines)  # the warm-up request
        url = ready.split("ready on ")[1].split()[0]
        # `invoke NAME` finds the running emulator through the state file
        done = subprocess.run([sys.executable, "-m", "modelambda.cli.main", "invoke", "iris",
                               "--data", json.dumps(ROWS)], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        assert [p["label"] for p in json.loads(done.stdout)["predictions"]] == [0, 2]
        assert done.stderr.startswith("REPORT RequestId:")
        (function,) = json.loads(urllib.request.urlopen(f"{url}/health").read())["functions"]
        # the warm-up and `invoke NAME` both went to the alias: one warm environment of 1
        assert [e["version"] for e in function["environments"]] == ["1"]
        assert _processes_mentioning(str(iris_service))  # environments are running
    finally:
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=30)
    assert up.returncode == 0, rest
    assert "stopped" in rest
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(iris_service)) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:200]
                 for pid in _processes_mentioning(str(iris_service))}
    assert leftovers == {}  # no orphans
    assert list((tmp_path / "state").glob("*.json")) == []  # its record is gone
