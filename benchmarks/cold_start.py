"""Cold start: our handler against a hand-written minimal handler, in one run.

For iris (ONNX RandomForest) and MiniLM (90 MB ONNX + tokenizer), each sample is a fresh
Python process that goes from nothing to its first prediction:

- ``modelambda``: Lambda's view of our function: ``import modelambda.runtime.handler`` with
  ``LAMBDA_TASK_ROOT`` at a bundle layout (compiled ``modelambda.json``, model, hooks), then
  ``handle(event, None)``;
- ``hand-written``: the least code that does the same job with onnxruntime directly: import
  numpy and onnxruntime (and tokenizers), create the session, build the input, run, print.

Both run with the same interpreter, alternating, so machine noise hits them alike. The
result is the ratio of medians (ours / hand-written; under 1.0 would be faster). Also: the
import time of ``modelambda.runtime`` alone.

Usage: python benchmarks/cold_start.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED_MINILM = ROOT.parent / "shared" / "models" / "minilm"

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
    """The function's task root as a bundle unpacks it: runtime, config, model, user code."""
    from modelambda.spec import compile_runtime_config, load_spec

    spec = load_spec(service)
    target.mkdir(parents=True)
    copy_runtime(target)
    rel = spec.model.path
    if spec.model_path.is_dir():
        shutil.copytree(spec.model_path, target / rel)
    else:
        shutil.copy(spec.model_path, target / rel)
    for py in service.glob("*.py"):
        if py.name not in ("train.py", "get_model.py"):
            shutil.copy(py, target / py.name)
    config = compile_runtime_config(spec, {"kind": "bundle", "path": rel})
    (target / "modelambda.json").write_text(json.dumps(config.to_dict()))
    return target


def minilm_service(tmp: Path) -> Path:
    service = tmp / "minilm-src"
    shutil.copytree(ROOT / "examples" / "minilm-embeddings", service,
                    ignore=shutil.ignore_patterns("model"))
    (service / "model").mkdir()
    for name in ("model.onnx", "tokenizer.json", "sentence_bert_config.json"):
        shutil.copy(SHARED_MINILM / name, service / "model" / name)
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
    results: dict[str, object] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        iris = bundle_layout(ROOT / "examples" / "iris", tmp / "iris")
        minilm = bundle_layout(minilm_service(tmp), tmp / "minilm")
        results["import_modelambda_runtime_ms"] = round(import_time_ms(args.runs, iris), 2)
        print(f"import modelambda.runtime: {results['import_modelambda_runtime_ms']} ms")
        results["iris"] = compare("iris", iris, IRIS_EVENT, HAND_IRIS, args.runs)
        results["minilm"] = compare("minilm", minilm, MINILM_EVENT, HAND_MINILM, args.runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
