"""Model formats: what `modelambda optimize` changes, as ratios measured in one run.

Pairs, each built as a bundle by `modelambda build` (no import check) and started from its
unpacked zip in the target interpreter (python3.12, isolated: -I -S, only the bundle on
sys.path), as Lambda starts it:

- iris trained with scikit-learn (the example's RandomForest, skops), XGBoost and LightGBM,
  each against its ONNX conversion (`optimize --to onnx`);
- MiniLM (float32 ONNX) against its int8 quantisation (`optimize --quantize int8`), with the
  mean cosine similarity of both embeddings to sentence-transformers' references;
- the TFLite iris MLP alone, for scale.

Per variant: the function's size unzipped and zipped, the model's size, the cold start (a
fresh process from the first import to the first answer: median of --runs, the variants of
a pair alternating so that machine noise hits both alike) and the warm latency (median of 50
invocations in that process). Ratios are new / original.

Usage: python benchmarks/formats.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
IRIS = ROOT / "examples" / "iris"
MINILM = ROOT / "examples" / "minilm-embeddings"
MINILM_DATA = ROOT / "tests" / "data" / "minilm"
TFLITE = ROOT / "tests" / "data" / "iris-tflite" / "iris_mlp.tflite"
WARM = 50

START = """
import json, sys, time
t0 = time.perf_counter()
sys.path[:0] = [sys.argv[1]]
import modelambda.runtime.handler as h
event = json.loads(sys.argv[2])
out = h.handle(event, None)
cold = (time.perf_counter() - t0) * 1000
warm = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); h.handle(event, None); warm.append((time.perf_counter() - t) * 1000)
print(json.dumps({"cold_ms": cold, "warm_ms": statistics.median(warm) if warm else None,
                  "predictions": out["predictions"]}))
""".replace("import json, sys, time", "import json, statistics, sys, time")


def mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


def cli(*args: str | Path) -> None:
    done = subprocess.run([sys.executable, "-m", "modelambda.cli.main", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"modelambda {' '.join(map(str, args))} failed:\n{done.stderr}")


def spec_text(name: str, path: str, framework: str, memory: int = 1024, extra: str = "") -> str:
    return (f'[service]\nname = "{name}"\nmemory_mb = {memory}\n\n[model]\npath = "{path}"\n'
            f'framework = "{framework}"\n{extra}')


def iris_rows() -> list[list[float]]:
    from sklearn.datasets import load_iris

    rows: list[list[float]] = load_iris().data.tolist()
    return rows


def services(tmp: Path) -> list[tuple[str, Path, Path]]:
    """(name, original service, optimised service) pairs."""
    from tests.formats.conftest import train_lightgbm, train_xgboost

    rows = iris_rows()
    pairs = []
    originals = {
        "iris scikit-learn": ("model.skops", "sklearn",
                              '\n[model.options]\ntrusted_types = ["sklearn.tree._tree.Tree"]\n'),
        "iris XGBoost": ("model.json", "xgboost", ""),
        "iris LightGBM": ("model.txt", "lightgbm", ""),
    }
    for name, (file, framework, extra) in originals.items():
        original = tmp / framework
        original.mkdir()
        if framework == "sklearn":
            shutil.copy(IRIS / "model.skops", original / file)
        elif framework == "xgboost":
            train_xgboost(original / file)
        else:
            train_lightgbm(original / file)
        (original / "request.json").write_text(json.dumps({"instances": rows}))
        (original / "modelambda.toml").write_text(spec_text(framework, file, framework,
                                                            extra=extra))
        cli("optimize", original, "--to", "onnx", "--check", "150", "--min-agreement", "1")
        converted = tmp / f"{framework}-onnx"
        converted.mkdir()
        shutil.copy(original / f"model.{framework}.onnx", converted / "model.onnx")
        (converted / "modelambda.toml").write_text(spec_text(f"{framework}-onnx", "model.onnx",
                                                             "onnx"))
        for service in (original, converted):
            (service / "modelambda.toml").write_text(
                (service / "modelambda.toml").read_text()
                + '\n[build]\nexclude_files = ["request.json", "model.*.onnx"]\n')
        pairs.append((name, original, converted))
    minilm = tmp / "minilm"
    shutil.copytree(MINILM, minilm, ignore=shutil.ignore_patterns("model", ".modelambda"))
    from tests.conftest import link_minilm

    link_minilm(minilm / "model")
    cli("optimize", minilm, "--quantize", "int8")
    int8 = tmp / "minilm-int8"
    shutil.copytree(minilm, int8, ignore=shutil.ignore_patterns("model", ".modelambda"))
    shutil.copytree(minilm / "model.int8", int8 / "model")
    shutil.rmtree(minilm / "model.int8")
    pairs.append(("MiniLM", minilm, int8))
    tflite = tmp / "tflite"
    tflite.mkdir()
    shutil.copy(TFLITE, tflite / "model.tflite")
    (tflite / "modelambda.toml").write_text(spec_text("tflite", "model.tflite", "tflite"))
    pairs.append(("iris TFLite", tflite, tflite))
    return pairs


def built(service: Path, tmp: Path) -> dict[str, Any]:
    from modelambda.package.build import build

    result = build(service, "bundle", check_imports=False)
    artifact = result.manifest["artifacts"][0]
    task = tmp / f"task-{service.name}"
    shutil.rmtree(task, ignore_errors=True)
    with zipfile.ZipFile(result.out / "function.zip") as archive:
        archive.extractall(task)
    model = sum(e.size for e in result.model_entries)
    return {"task": task, "unzipped": artifact["unzipped_bytes"],
            "zipped": artifact["zipped_bytes"], "model": model,
            "memory": result.spec.service.memory_mb,
            "dependencies": sorted(result.manifest["dependencies"])}


def start(python: str, info: dict[str, Any], event: dict[str, Any], warm: int
          ) -> dict[str, Any]:
    task = info["task"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "MODELAMBDA_TASK_ROOT": str(task), "LAMBDA_TASK_ROOT": str(task),
           "MODELAMBDA_TMP_DIR": tempfile.gettempdir(), "AWS_REGION": "us-east-1",
           "AWS_LAMBDA_FUNCTION_NAME": "bench",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(info["memory"])}
    done = subprocess.run([python, "-I", "-S", "-c", START, str(task), json.dumps(event),
                           str(warm)], capture_output=True, text=True, env=env, cwd=task)
    if done.returncode != 0:
        raise SystemExit(f"{task} did not start:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(python: str, name: str, original: Path, new: Path, runs: int,
            tmp: Path) -> dict[str, Any]:
    if name == "MiniLM":
        texts = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
        event: dict[str, Any] = {"instances": texts}
    else:
        event = {"instances": iris_rows()[:2]}
    variants = {"original": built(original, tmp)}
    if new != original:
        variants["new"] = built(new, tmp)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for key in variants:  # warm the page cache
        start(python, variants[key], event, 0)
    for _ in range(runs):
        for key in variants:
            samples[key].append(start(python, variants[key], event, WARM))
    row: dict[str, Any] = {"model": name}
    for key, info in variants.items():
        row[key] = {"unzipped_bytes": info["unzipped"], "zipped_bytes": info["zipped"],
                    "model_bytes": info["model"], "dependencies": info["dependencies"],
                    "cold_ms": round(statistics.median(s["cold_ms"] for s in samples[key]), 1),
                    "warm_ms": round(statistics.median(s["warm_ms"] for s in samples[key]), 3)}
        if name == "MiniLM":
            reference = np.load(MINILM_DATA / "reference_embeddings.npy")
            got = np.array(samples[key][0]["predictions"])
            cosine = np.sum(got * reference, axis=1) / (
                np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
            row[key]["mean_cosine"] = round(float(cosine.mean()), 4)
    if "new" in row:
        row["ratios"] = {k: round(row["new"][k] / row["original"][k], 3) for k in (
            "unzipped_bytes", "zipped_bytes", "model_bytes", "cold_ms", "warm_ms")}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<18} {'variant':<10} {'unzipped':>10} {'zipped':>10} {'model':>10} "
            f"{'cold start':>11} {'warm':>9}  notes")
    lines = [head, "-" * len(head)]
    for row in rows:
        for key in ("original", "new"):
            if key not in row:
                continue
            v = row[key]
            label = key if row["model"] != "iris TFLite" else "tflite"
            if row["model"] == "MiniLM":
                label = "float32" if key == "original" else "int8"
            elif key == "new":
                label = "ONNX"
            heavy = [d for d in v["dependencies"] if d.startswith(("scipy", "scikit"))]
            notes = (f"cosine {v['mean_cosine']:.4f}" if "mean_cosine" in v else
                     f"ships {', '.join(heavy)}" if heavy else "")
            lines.append(f"{row['model'] if key == 'original' else '':<18} {label:<10} "
                         f"{mb(v['unzipped_bytes']):>10} {mb(v['zipped_bytes']):>10} "
                         f"{mb(v['model_bytes']):>10} {v['cold_ms']:>8.0f} ms "
                         f"{v['warm_ms']:>6.2f} ms  {notes}")
        if "ratios" in row:
            r = row["ratios"]
            lines.append(f"{'':<18} {'ratio':<10} {r['unzipped_bytes']:>10.2f} "
                         f"{r['zipped_bytes']:>10.2f} {r['model_bytes']:>10.2f} "
                         f"{r['cold_ms']:>11.2f} {r['warm_ms']:>9.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per variant")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from modelambda.local.interpreters import find_python

    python = find_python("python3.12")
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelambda-formats-") as name:
        tmp = Path(name)
        for model, original, new in services(tmp):
            print(f"measuring {model} ...", file=sys.stderr, flush=True)
            rows.append(measure(python, model, original, new, args.runs, tmp))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
