"""The init phase overlaps the ONNX session's creation with the pipeline's import and setup,
and still reports each failure as before (the model's first)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from modelambda.runtime import ConfigError, ModelLoadError
from modelambda.runtime.app import App
from modelambda.runtime.config import PipelineConfig
from modelambda.runtime.paths import Paths
from modelambda.spec import compile_runtime_config, load_spec
from tests.conftest import IRIS

ROWS = json.loads((IRIS / "request.json").read_text())
HOOK: dict[str, Any] = {}


def setup_hook(model_path: str) -> None:
    HOOK["setup_ran"].set()
    if HOOK.get("fail"):
        raise RuntimeError("the setup hook failed")


def iris_app(tmp_path: Path, model: Path = IRIS / "model.onnx", fail: bool = False) -> App:
    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    shutil.copy(model, service / "model.onnx")
    config = compile_runtime_config(load_spec(service))
    config.pipeline = PipelineConfig(setup=f"{__name__}:setup_hook")
    HOOK.update(setup_ran=threading.Event(), fail=fail)
    return App(config, Paths(str(service), tmp_dir=str(tmp_path)), log=lambda _line: None)


def no_session_thread_left() -> bool:
    return not any(t.name == "modelambda-onnx-session" for t in threading.enumerate())


def test_the_session_builds_while_the_setup_hook_runs(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    real = ort.InferenceSession
    seen: list[bool] = []

    def session(*args: Any, **kwargs: Any) -> Any:
        # sequential loading would get here before the hook runs: then this waits in vain
        seen.append(HOOK["setup_ran"].wait(timeout=10))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)
    app = iris_app(tmp_path)
    assert seen == [True]
    assert "predictions" in app.handle(ROWS)
    assert no_session_thread_left()


def test_a_failing_setup_hook_waits_for_the_session_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"setup setup_hook failed: .*the setup hook failed"):
        iris_app(tmp_path, fail=True)
    assert no_session_thread_left()


@pytest.mark.parametrize("fail", [False, True])
def test_a_broken_model_is_the_error_even_when_setup_fails_too(tmp_path: Path,
                                                               fail: bool) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError, match=r"model\.onnx is not a loadable ONNX model"):
        iris_app(tmp_path, broken, fail=fail)
    assert HOOK["setup_ran"].is_set()
