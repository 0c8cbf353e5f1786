"""Cold start is the product: what importing the runtime costs, and what it must not pull in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import modelambda.errors
import modelambda.runtime
from tests.conftest import IRIS

FORBIDDEN = ("boto3", "botocore", "pydantic", "modelambda.cli", "modelambda.spec",
             "numpy", "onnxruntime", "sklearn", "skops")
# Generous against the measured ~1-3 ms so that a noisy shared machine does not flake, yet
# tight enough to catch an eager numpy (~100 ms) or boto3 (~180 ms) import.
IMPORT_BUDGET_MS = 40.0


def run_python(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_the_runtime_is_cheap_and_lean() -> None:
    result = run_python(
        "import sys, time, json\n"
        "t = time.perf_counter()\n"
        "import modelambda.runtime\n"
        "ms = (time.perf_counter() - t) * 1000\n"
        f"print(json.dumps({{'ms': ms, 'loaded': [m for m in {FORBIDDEN!r} if m in sys.modules]}}))"
    )
    assert result["loaded"] == []
    assert float(result["ms"]) < IMPORT_BUDGET_MS  # type: ignore[arg-type]


def test_handler_for_an_onnx_service_imports_only_its_backend(tmp_path: Path) -> None:
    # GIVEN a built bundle layout: the compiled config and the model at the task root
    from modelambda.spec import compile_runtime_config, load_spec

    config = compile_runtime_config(load_spec(IRIS), {"kind": "bundle", "path": "model.onnx"})
    (tmp_path / "modelambda.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "model.onnx").write_bytes((IRIS / "model.onnx").read_bytes())
    # WHEN Lambda imports the handler with its environment and calls it
    result = run_python(
        "import sys, json\n"
        "import modelambda.runtime.handler as h\n"
        "out = h.handle({'instances': [[5.1, 3.5, 1.4, 0.2]]}, None)\n"
        "heavy = [m for m in ('boto3', 'pydantic', 'sklearn', 'skops', 'modelambda.cli',"
        " 'modelambda.spec', 'tomllib') if m in sys.modules]\n"
        "print(json.dumps({'out': out, 'heavy': heavy}))",
        env={"LAMBDA_TASK_ROOT": str(tmp_path), "AWS_LAMBDA_FUNCTION_NAME": "iris"},
    )
    # THEN it answers, and nothing but the ONNX backend was imported
    assert result["out"]["predictions"][0]["label"] == 0  # type: ignore[index]
    assert result["heavy"] == []


def test_loading_a_config_never_compiles_the_spec(tmp_path: Path) -> None:
    # GIVEN a task root holding only a spec, and one holding a compiled config
    from modelambda.spec import compile_runtime_config, load_spec

    spec_only = tmp_path / "spec-only"
    spec_only.mkdir()
    (spec_only / "modelambda.toml").write_text((IRIS / "modelambda.toml").read_text())
    built = tmp_path / "built"
    built.mkdir()
    config = compile_runtime_config(load_spec(IRIS), {"kind": "bundle", "path": "model.onnx"})
    (built / "modelambda.json").write_text(json.dumps(config.to_dict()))
    # WHEN the runtime loads its config from each
    result = run_python(
        "import sys, json\n"
        "from modelambda.runtime.config import load_config\n"
        "from modelambda.runtime.errors import ConfigError\n"
        "from modelambda.runtime.paths import Paths\n"
        f"name = load_config(Paths({str(built)!r}), {{}}).function_name\n"
        "try:\n"
        f"    load_config(Paths({str(spec_only)!r}), {{}})\n"
        "    error = None\n"
        "except ConfigError as exc:\n"
        "    error = str(exc)\n"
        "print(json.dumps({'name': name, 'error': error,\n"
        "                  'spec': 'modelambda.spec' in sys.modules,\n"
        "                  'tomllib': 'tomllib' in sys.modules}))"
    )
    # THEN the compiled one loads, the spec is refused with what to do, and neither
    # imported the spec compiler
    assert result["name"] == "iris"
    assert "modelambda build" in str(result["error"])
    assert "MODELAMBDA_CONFIG" in str(result["error"])
    assert result["spec"] is False and result["tomllib"] is False


def test_public_surfaces_are_complete_and_sorted() -> None:
    for module in (modelambda.runtime, modelambda.errors):
        exported = [n for n in dir(module) if n[0].isupper() and n not in ("Path",)]
        assert sorted(module.__all__) == module.__all__
        assert set(exported) <= set(module.__all__)


def test_snapstart_reseed_gives_restored_environments_their_own_randomness() -> None:
    import random

    import numpy as np

    from modelambda.runtime.snapstart import reseed

    # GIVEN two "restores" of the same snapshot state
    random.seed(0)
    np.random.seed(0)
    state = (random.getstate(), np.random.get_state())
    reseed()
    first = (random.random(), np.random.random())
    random.setstate(state[0])
    np.random.set_state(state[1])
    reseed()
    second = (random.random(), np.random.random())
    # THEN they draw different numbers
    assert first[0] != second[0] and first[1] != second[1]
