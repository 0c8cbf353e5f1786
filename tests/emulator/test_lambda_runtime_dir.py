"""modelambda's runtime client ships in the runtime directory (/var/runtime), so environments
need nothing of where modelambda is installed: a clone or a venv under /tmp or /var, which the
sandbox hides, works as well as one under $HOME."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelambda
from modelambda.local import lambda_runtime as runtime_module
from modelambda.local.lambda_runtime import CLIENT_FILES, ship_client
from modelambda.local.sandbox import SandboxSpec, build_command, bwrap_mounts
from tests.conftest import IRIS

PACKAGE = Path(modelambda.__file__).resolve().parent


def test_the_client_files_are_shipped_once_per_content(tmp_path: Path) -> None:
    name = ship_client(tmp_path)
    assert name.startswith(".modelambda-client-") and not name.isidentifier()
    for file in CLIENT_FILES:
        assert (tmp_path / name / file).read_bytes() == (PACKAGE / "local" / file).read_bytes()
    assert ship_client(tmp_path) == name
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no staging left behind


def test_other_client_files_get_their_own_directory(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first = ship_client(tmp_path)
    monkeypatch.setattr(runtime_module, "_client_sources",
                        lambda: ("0123456789abcdef", {"pyric.py": b"# another version\n"}))
    second = ship_client(tmp_path)
    assert second != first and (tmp_path / first / "pyric.py").is_file()
    assert (tmp_path / second / "pyric.py").read_bytes() == b"# another version\n"


@pytest.mark.parametrize("client,entry", [("python", None), ("awslambdaric",
                                                               "snapstart_boot.py")])
def test_no_path_of_the_installation_reaches_the_sandbox(tmp_path: Path, client: str,
                                                         entry: str | None) -> None:
    spec = SandboxSpec(python=sys.executable, handler="fn.handler",
                       task_dir=str(tmp_path / "task"), runtime_dir=str(tmp_path / "runtime"),
                       tmp_dir=str(tmp_path / "tmp"), runtime_client=client, entry=entry)
    (tmp_path / "runtime").mkdir()
    argv, _, _ = build_command(spec, "3.12", use_bwrap=True)
    assert not [a for a in argv if str(PACKAGE) in a]
    script = argv[argv.index("-S") + 1]
    assert script.startswith("/var/runtime/.modelambda-client-")
    assert script.endswith(entry or "pyric.py")
    assert not [a for a in bwrap_mounts(spec) if str(PACKAGE) in a]


@pytest.fixture
def installed_under_tmp() -> Iterator[Path]:
    """modelambda's package tree copied under /tmp (as a clone or a CI venv there would
    have it), to put first on PYTHONPATH."""
    with tempfile.TemporaryDirectory(prefix="modelambda-install-", dir="/tmp") as site:
        shutil.copytree(PACKAGE, Path(site) / "modelambda",
                        ignore=shutil.ignore_patterns("__pycache__"))
        yield Path(site)


def _environment(site: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELAMBDA_ENDPOINT"}
    return {**env, "PYTHONPATH": str(site), "MODELAMBDA_STATE_DIR": str(state)}


@pytest.mark.slow
def test_snapstart_and_the_python_client_run_from_an_installation_under_tmp(
        installed_under_tmp: Path, tmp_path: Path, python312: str, lambda_runtime: Path) -> None:
    env = _environment(installed_under_tmp, tmp_path / "state")
    where = subprocess.run([sys.executable, "-c", "import modelambda; print(modelambda.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed_under_tmp))  # the copy runs, not the checkout

    # the pure-Python client, on an emulator of that installation
    task = tmp_path / "task"
    task.mkdir()
    (task / "fn.py").write_text("def handler(event, context):\n    return {'got': event}\n")
    script = textwrap.dedent(f"""
        import json, urllib.request
        from modelambda.local.emulator import EmulatorThread
        from modelambda.local.settings import FunctionSettings
        with EmulatorThread(sink=lambda line: None) as emu:
            emu.add_function(FunctionSettings(
                name="fn", handler="fn.handler", task_dir={str(task)!r}, python={python312!r},
                runtime_dir={str(lambda_runtime)!r}, runtime_client="python"))
            request = urllib.request.Request(
                emu.url + "/2015-03-31/functions/fn/invocations", data=b'{{"n": 1}}')
            print(urllib.request.urlopen(request, timeout=60).read().decode())
    """)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"got": {"n": 1}}, done.stderr

    # SnapStart, through `modelambda up` of that installation
    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    spec = service / "modelambda.toml"
    spec.write_text(spec.read_text().replace("[service]\n", "[service]\nsnapstart = true\n", 1))
    up = subprocess.Popen([sys.executable, "-m", "modelambda.cli.main", "up", str(service),
                           "--port", "0", "--no-warmup"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        assert up.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            lines.append(line)
            if "ready on" in line or not line:
                break
        ready = [line for line in lines if "ready on" in line]
        assert ready, "".join(lines)
        url = ready[0].split("ready on ")[1].split()[0]
        # the alias: SnapStart restores published versions only
        request = urllib.request.Request(f"{url}/2015-03-31/functions/iris:live/invocations",
                                         data=(IRIS / "request.json").read_bytes(),
                                         headers={"X-Amz-Log-Type": "Tail"})
        with urllib.request.urlopen(request, timeout=120) as response:
            body = json.loads(response.read())
            failed = response.headers.get("X-Amz-Function-Error")
        assert not failed, body
        assert [p["label"] for p in body["predictions"]] == [0, 2]
        health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=10).read())
        assert health["functions"][0]["snapshot"]["state"] == "snapshot"  # really restored
    finally:
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0, "".join(lines) + rest
