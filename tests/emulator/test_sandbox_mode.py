"""Whether environments are sandboxed is said truly: in the warning and on /health."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelambda.local import sandbox
from modelambda.local.sandbox import SandboxSpec, build_command
from tests.emulator.conftest import Emu


def _spec(tmp_path: Path) -> SandboxSpec:
    return SandboxSpec(python="python3", handler="fn.handler", task_dir=str(tmp_path),
                       runtime_dir=str(tmp_path), tmp_dir=str(tmp_path / "tmp"))


def test_switching_the_sandbox_off_says_it_was_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    monkeypatch.setattr(sandbox, "_warned", set())
    assert sandbox.bwrap_path() is not None  # bwrap is there ...
    argv, _, _ = build_command(_spec(tmp_path), "3.12", use_bwrap=False)  # ... and not used
    assert "bwrap" not in argv[0]
    warning = capsys.readouterr().err
    assert "the sandbox is off as asked (--no-sandbox" in warning
    assert "not found" not in warning
    build_command(_spec(tmp_path), "3.12", use_bwrap=False)
    assert capsys.readouterr().err == ""  # said once


def test_a_missing_bwrap_is_named_as_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    monkeypatch.setattr(sandbox, "_warned", set())
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    build_command(_spec(tmp_path), "3.12")
    warning = capsys.readouterr().err
    assert "bwrap not found" in warning and "as asked" not in warning
    assert sandbox.sandbox_mode(None) == "plain"


def _health(emu: Emu) -> dict[str, Any]:
    health: dict[str, Any] = json.loads(
        urllib.request.urlopen(f"{emu.url}/health", timeout=10).read())
    return health


def test_health_reports_the_mode_environments_really_run_in(
        emu: Emu, make_function: Callable[..., Any]) -> None:
    assert _health(emu)["sandbox"] == "bwrap"  # what a function would get by default
    emu.add(make_function("import os\ndef handler(e, c):\n    return os.getcwd()\n",
                          name="plain", use_bwrap=False))
    result = emu.client.invoke(FunctionName="plain", Payload=b"{}")
    assert json.loads(result["Payload"].read()) != "/var/task"  # really not in bwrap
    health = _health(emu)
    assert health["sandbox"] == "plain"
    assert [f["sandbox"] for f in health["functions"]] == ["plain"]

    emu.add(make_function("def handler(e, c):\n    return 1\n", name="boxed"))
    health = _health(emu)
    assert health["sandbox"] == "mixed"
    assert {f["name"]: f["sandbox"] for f in health["functions"]} == {"plain": "plain",
                                                                     "boxed": "bwrap"}
