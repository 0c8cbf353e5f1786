"""Each command through the real console script (`.venv/bin/modelambda`), as a user runs it:
stdout, stderr and exit codes, and one bad input per command (exit 2, one line, no traceback).

The examples are copied into tmp_path: nothing is built inside the repository.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelambda
from modelambda.local.s3server import free_port
from tests.cli.conftest import CLI, copy_iris, one_error_line, run_cli
from tests.conftest import IRIS

REQUEST = json.loads((IRIS / "request.json").read_text())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """This environment, with emulator records of this test only (none running at first)."""
    return {**os.environ, "MODELAMBDA_STATE_DIR": str(tmp_path / "emulators")}


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    return copy_iris(tmp_path / "iris")


class Running:
    """A long-running command (endpoint serve, up): its output lines as they come."""

    def __init__(self, *args: str | Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([str(CLI), *map(str, args)], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout} s:\n" + "\n".join(self.seen))

    def interrupt(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        self.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def close(self) -> None:
        self.reader.join(10)  # the last lines, up to end of file
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.close()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for process in started:
        process.kill()


def post(url: str, body: object) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


# --- --version and the command itself ---------------------------------------------------


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"modelambda {modelambda.__version__}\n"


def test_unknown_command_is_named() -> None:
    done = run_cli("deploy-everything")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "modelambda: error: argument COMMAND: invalid choice: 'deploy-everything'")


# --- init ---------------------------------------------------------------------------------


def test_init(iris: Path, tmp_path: Path, env: dict[str, str]) -> None:
    service = tmp_path / "svc"
    done = run_cli("init", service, "--model", iris / "model.onnx", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"wrote {service / 'model.onnx'}", f"wrote {service / 'modelambda.toml'}",
        f"wrote {service / 'request.json'}",
        f"next: modelambda invoke {service} --data @{service / 'request.json'}"]
    assert json.loads((service / "request.json").read_text()) == {
        "instances": [[0.0, 0.0, 0.0, 0.0]]}
    assert 'framework = "onnx"' in (service / "modelambda.toml").read_text()


def test_init_bad_input(tmp_path: Path, env: dict[str, str]) -> None:
    done = run_cli("init", tmp_path / "svc", "--model", tmp_path / "missing.onnx", env=env)
    assert "missing.onnx: no such file or directory" in one_error_line(done, "init")


# --- build --------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_bundle(iris: Path, env: dict[str, str]) -> None:
    done = run_cli("build", iris, "--strategy", "bundle", env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    manifest = iris / ".modelambda" / "build" / "bundle" / "manifest.json"
    assert out.splitlines()[-1] == f"manifest: {manifest}"
    assert "function.zip" in out and "FAIL" not in out
    assert all(line.startswith("build: ") for line in done.stderr.splitlines())
    recorded = json.loads(manifest.read_text())
    assert all(check["ok"] for check in recorded["limits"] if check["severity"] != "note")


def test_build_bad_input(tmp_path: Path, env: dict[str, str]) -> None:
    done = run_cli("build", tmp_path / "nowhere", "--strategy", "bundle", env=env)
    line = one_error_line(done, "build")
    assert f"{tmp_path / 'nowhere'} is not a directory" in line


# --- invoke (in-process on a service directory: no emulator runs) -------------------------


def test_invoke(iris: Path, env: dict[str, str]) -> None:
    done = run_cli("invoke", iris, "--data", json.dumps(REQUEST), env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # stdout is exactly the payload
    assert [p["label"] for p in answer["predictions"]] == [0, 2]
    assert done.stderr.splitlines()[-1].startswith("REPORT RequestId: ")
    assert "Traceback" not in done.stderr


def test_invoke_bad_input(iris: Path, env: dict[str, str]) -> None:
    done = run_cli("invoke", iris, "--data", "{not json", env=env)
    assert "--data is not valid JSON" in one_error_line(done, "invoke")


# --- models (a directory store) -----------------------------------------------------------


def test_models(iris: Path, tmp_path: Path, env: dict[str, str]) -> None:
    store = tmp_path / "store"

    def models(*args: str | Path) -> str:
        done = run_cli("models", *args, "--store", store, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        return done.stdout

    first = models("publish", iris, "--alias", "live").split(" version ")[1].split()[0]
    assert models("publish", iris, "--model", iris / "model.onnx", "--version", "2") == \
        f"published iris version 2 ({iris / 'model.onnx'}) to {store}\n"
    assert models("promote", iris, "2", "--alias", "live") == f"live: {first} -> 2\n"
    listing = json.loads(models("list", iris))
    assert listing["model"] == "iris" and sorted(listing["versions"]) == sorted([first, "2"])
    assert listing["aliases"]["live"]["version"] == "2"
    assert models("rollback", iris, "--alias", "live") == f"live: 2 -> {first}\n"
    assert models("gc", iris, "--dry-run") == "would remove 1 version(s): 2\n"
    assert models("gc", iris) == "removed 1 version(s): 2\n"
    assert list(json.loads(models("list", iris))["versions"]) == [first]


def test_models_bad_input(iris: Path, tmp_path: Path, env: dict[str, str]) -> None:
    done = run_cli("models", "promote", iris, "9", "--store", tmp_path / "store", env=env)
    assert "has no complete version '9'" in one_error_line(done, "models")


# --- endpoint -----------------------------------------------------------------------------


def test_endpoint_package(iris: Path, tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "out" / "model.tar.gz"
    done = run_cli("endpoint", "package", iris, "-o", target, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {target} (sha256 ")
    with tarfile.open(target) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "model.onnx"]


def test_endpoint_package_bad_input(iris: Path, tmp_path: Path, env: dict[str, str]) -> None:
    done = run_cli("endpoint", "package", iris, "-o", tmp_path, env=env)
    assert f"-o {tmp_path} is a directory" in one_error_line(done, "endpoint")


def test_endpoint_serve(iris: Path, env: dict[str, str], running: list[Running]) -> None:
    port = free_port()
    serve = Running("endpoint", "serve", iris, "--port", str(port), env=env)
    running.append(serve)
    line = serve.wait_for("serving iris at", timeout=120)
    url = f"http://127.0.0.1:{port}"
    assert line.startswith(f"serving iris at {url}: ")
    with urllib.request.urlopen(f"{url}/ping", timeout=30) as response:
        assert response.status == 200
    status, answer = post(f"{url}/invocations", REQUEST)
    assert status == 200 and isinstance(answer, dict)
    assert [p["label"] for p in answer["predictions"]] == [0, 2]
    assert serve.interrupt() == 0
    assert not any("Traceback" in line for line in serve.seen)


def test_endpoint_serve_bad_input(iris: Path, env: dict[str, str]) -> None:
    done = run_cli("endpoint", "serve", iris, "--port", "70000", env=env)
    assert "--port 70000: must be 0..65535" in one_error_line(done, "endpoint")


# --- up -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_up(iris: Path, env: dict[str, str], running: list[Running]) -> None:
    port = free_port()
    up = Running("up", iris, "--port", str(port), env=env)
    running.append(up)
    up.wait_for("modelambda: ready on", timeout=900)
    status, answer = post(f"http://127.0.0.1:{port}/fn/iris/", REQUEST)
    assert status == 200 and isinstance(answer, dict)
    assert [p["label"] for p in answer["predictions"]] == [0, 2]
    # invoke NAME finds the running emulator
    done = run_cli("invoke", "iris", "--data", json.dumps(REQUEST), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"] == answer["predictions"]
    assert up.interrupt() == 0
    assert up.seen[-1] == "modelambda: stopped"
    assert not any("Traceback" in line for line in up.seen)


def test_up_bad_input(iris: Path, env: dict[str, str]) -> None:
    done = run_cli("up", iris, "--port", "70000", env=env)
    assert "--port 70000: must be 0..65535" in one_error_line(done, "up")


@pytest.mark.slow
def test_models_reach_the_embedded_s3_of_a_running_up(tmp_path: Path, env: dict[str, str],
                                                      running: list[Running]) -> None:
    service = copy_iris(tmp_path / "iris", 'kind = "s3"\nbucket = "models"\nprefix = "p"')
    no_aws = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    port = free_port()
    up = Running("up", service, "--port", str(port), env=no_aws)
    running.append(up)
    s3_url = up.wait_for("embedded S3 (moto) at", timeout=300).split(" at ")[1].strip()
    up.wait_for("modelambda: ready on", timeout=900)

    done = run_cli("models", "list", service, env=no_aws)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"modelambda models: using the embedded S3 at {s3_url} of "
                                  "the running `modelambda up`")
    listing = json.loads(done.stdout)
    assert listing["store"] == "s3://models/p"
    live = listing["aliases"]["live"]["version"]  # what `up` published for its function
    assert list(listing["versions"]) == [live]

    done = run_cli("models", "publish", service, "--model", service / "model.onnx",
                   "--version", "2", "--alias", "live", env=no_aws)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"published iris version 2 ({service / 'model.onnx'}) to "
                           "s3://models/p; live -> 2\n")
    assert up.interrupt() == 0
