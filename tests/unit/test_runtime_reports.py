"""What the runtime recovers from, it says: nothing is swallowed silently."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from modelambda.runtime import snapstart
from modelambda.runtime.app import App
from modelambda.runtime.config import PipelineConfig
from modelambda.runtime.paths import Paths
from modelambda.runtime.sources import ModelSource, Resolved, make_source
from modelambda.spec import compile_runtime_config, load_spec
from tests.conftest import IRIS

ROWS = json.loads((IRIS / "request.json").read_text())


def records(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def test_tmp_that_cannot_be_freed_is_logged(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a store source whose old version's /tmp files cannot all be deleted
    source = make_source({"kind": "efs", "model": "iris"}, Paths(str(tmp_path),
                         tmp_dir=str(tmp_path)), verify=False)
    lines: list[str] = []
    source.log = lines.append
    old = Path(source.scratch("v1"))
    (old / "model.onnx").write_bytes(b"x")

    def rmtree(path: str, onerror: Any) -> None:
        onerror(None, f"{path}/model.onnx", (PermissionError, PermissionError("denied"), None))
        onerror(None, f"{path}/gone", (FileNotFoundError, FileNotFoundError("gone"), None))

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    # WHEN it forgets that version
    source.forget("v1")  # type: ignore[attr-defined]
    # THEN it says what it could not delete (and not what was already gone)
    [record] = records(lines)
    assert record["level"] == "WARNING" and record["message"] == "cannot free /tmp"
    assert record["errors"] == [f"{old}/model.onnx: denied"]


def test_forgetting_a_version_frees_its_files_quietly(tmp_path: Path) -> None:
    source = make_source({"kind": "efs", "model": "iris"}, Paths(str(tmp_path),
                         tmp_dir=str(tmp_path)), verify=False)
    lines: list[str] = []
    source.log = lines.append
    old = Path(source.scratch("v1"))
    (old / "sub").mkdir()
    (old / "sub" / "f").write_bytes(b"x")
    source.forget("v1")  # type: ignore[attr-defined]
    source.forget("never-fetched")  # type: ignore[attr-defined]
    assert not old.exists() and lines == []


def test_snapstart_without_its_hooks_module_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    lines: list[str] = []

    class FakeApp:
        log = lines.append

        class config:
            function_name = "iris"

    assert snapstart.register(FakeApp()) is False  # type: ignore[arg-type]
    [record] = records(lines)
    assert record["level"] == "WARNING" and "not registered" in record["message"]
    assert record["function_name"] == "iris" and record["error"]


# --- a refresh whose setup fails, and whose serving version's setup then fails too ---------

SETUP = {"calls": 0, "fail_from": 10**9}


def setup_hook(model_path: str) -> None:
    SETUP["calls"] += 1
    if SETUP["calls"] >= SETUP["fail_from"]:
        raise RuntimeError(f"setup call {SETUP['calls']} failed")


class NewVersionEachPoll(ModelSource):
    refresh_s = 3600.0

    def resolve(self) -> str:
        return str(IRIS / "model.onnx")

    def poll(self) -> Resolved | None:
        return Resolved(str(IRIS / "model.onnx"), "v2")


def test_a_failed_setup_restore_is_logged_and_serving_goes_on(tmp_path: Path) -> None:
    config = compile_runtime_config(load_spec(IRIS), {
        "kind": "plugin", "class": f"{__name__}:NewVersionEachPoll"})
    config.pipeline = PipelineConfig(setup=f"{__name__}:setup_hook")
    lines: list[str] = []
    SETUP.update(calls=0, fail_from=10**9)
    app = App(config, Paths(str(tmp_path), tmp_dir=str(tmp_path)), log=lines.append)
    # WHEN the new version's setup fails, and so does re-running the serving one's
    SETUP["fail_from"] = SETUP["calls"] + 1
    app.refresh_now()
    # THEN both failures are logged, and the old version still answers
    failures = [r for r in records(lines) if r.get("level") == "WARNING"]
    assert len(failures) == 2
    assert ["setup call 2 failed" in failures[0]["error"],
            "setup call 3 failed" in failures[1]["error"]] == [True, True]
    assert "serving version" in failures[1]["message"]
    assert app.state.version != "v2"
    assert "predictions" in app.handle(ROWS)
