"""Where running emulators are found: one record per emulator, stale ones dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelambda.local import state
from tests.conftest import ROOT
from tests.emulator.conftest import Emu


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "state"
    monkeypatch.setenv("MODELAMBDA_STATE_DIR", str(directory))
    monkeypatch.delenv("MODELAMBDA_ENDPOINT", raising=False)
    yield directory


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_records_are_one_per_emulator_and_found_by_function(state_dir: Path) -> None:
    state.register("http://127.0.0.1:9000", ["iris"], {"s3_url": "http://127.0.0.1:5000"})
    state.register("http://127.0.0.1:9001/", ["minilm"])
    assert len(list(state_dir.glob("*.json"))) == 2

    records = state.running()
    assert [r["url"] for r in records] == ["http://127.0.0.1:9001", "http://127.0.0.1:9000"]
    assert records[1]["s3_url"] == "http://127.0.0.1:5000"
    assert all(r["pid"] == os.getpid() for r in records)
    found = state.find("iris")
    assert found is not None and found["url"] == "http://127.0.0.1:9000"
    assert state.find("nothing") is None

    state.unregister("http://127.0.0.1:9001")
    assert [r["url"] for r in state.running()] == ["http://127.0.0.1:9000"]
    state.unregister()
    assert state.running() == []


def test_the_most_recently_started_emulator_wins_a_name_both_serve(state_dir: Path) -> None:
    state.register("http://127.0.0.1:9000", ["iris"])
    state.register("http://127.0.0.1:9001", ["iris"])
    found = state.find("iris")
    assert found is not None and found["url"] == "http://127.0.0.1:9001"


def test_stale_and_broken_records_are_ignored_and_removed(state_dir: Path) -> None:
    state.register("http://127.0.0.1:9000", ["live"])
    state_dir.joinpath("1-1.json").write_text(json.dumps(
        {"url": "http://127.0.0.1:1", "pid": _dead_pid(), "functions": ["iris"]}))
    # a pid that is alive but was reused by another process since the record was written
    state_dir.joinpath("2-2.json").write_text(json.dumps(
        {"url": "http://127.0.0.1:2", "pid": os.getpid(), "functions": ["iris"],
         "process_start": "not-when-we-started"}))
    state_dir.joinpath("3-3.json").write_text("{half a rec")
    state_dir.joinpath("4-4.json").write_text('{"url": 1, "pid": 1, "functions": "x"}')

    assert [r["functions"] for r in state.running()] == [["live"]]
    assert state.find("iris") is None
    assert sorted(p.name for p in state_dir.glob("*.json")) == [f"{os.getpid()}-9000.json"]


def test_a_killed_emulators_record_is_dropped(state_dir: Path) -> None:
    # GIVEN a process that registered and ended without unregistering (as after kill -9)
    child = subprocess.run(
        [sys.executable, "-c", "from modelambda.local import state; "
         "state.register('http://127.0.0.1:9002', ['iris'])"],
        env={**os.environ, "MODELAMBDA_STATE_DIR": str(state_dir)}, check=True)
    assert child.returncode == 0 and len(list(state_dir.glob("*.json"))) == 1
    # THEN nobody is sent to it
    assert state.find("iris") is None
    assert list(state_dir.glob("*.json")) == []


def test_endpoint_variable_overrides_the_records(state_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state.register("http://127.0.0.1:9000", ["iris"])
    monkeypatch.setenv("MODELAMBDA_ENDPOINT", "http://example.test:1234/")
    assert state.find("anything") == {"url": "http://example.test:1234", "functions": None}


def _invoke(name: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELAMBDA_ENDPOINT"}
    return subprocess.run([sys.executable, "-m", "modelambda.cli.main", "invoke", name,
                           "--data", "{}"], capture_output=True, text=True, cwd=ROOT,
                          env={**env, "MODELAMBDA_STATE_DIR": str(state_dir)}, timeout=120)


def test_invoke_name_reaches_each_of_two_running_emulators(
        state_dir: Path, make_function: Callable[..., Any]) -> None:
    # GIVEN two emulators, each serving its own function, the second started last
    first, second = Emu(), Emu()
    try:
        first.add(make_function("def handler(e, c):\n    return 'first'\n", name="one"))
        second.add(make_function("def handler(e, c):\n    return 'second'\n", name="two"))
        state.register(first.url, ["one"])
        state.register(second.url, ["two"])

        # THEN `invoke NAME` asks the one that serves NAME
        done = _invoke("one", state_dir)
        assert (done.returncode, done.stdout.strip()) == (0, '"first"'), done.stderr
        done = _invoke("two", state_dir)
        assert (done.returncode, done.stdout.strip()) == (0, '"second"'), done.stderr

        # WHEN the last one stops, the first is still found
        state.unregister(second.url)
        second.stop()
        done = _invoke("one", state_dir)
        assert (done.returncode, done.stdout.strip()) == (0, '"first"'), done.stderr
        done = _invoke("two", state_dir)
        assert done.returncode != 0
        assert f"no running emulator serves 'two' ({first.url}: one)" in done.stderr
    finally:
        second.stop()
        first.stop()
    state.unregister(first.url)
    done = _invoke("one", state_dir)
    assert done.returncode != 0 and "no emulator is running" in done.stderr
