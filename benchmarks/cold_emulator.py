"""Cold start through the emulator: modelambda against the hand-written handler, both as
functions in the same emulator, in one run.

Issue 13's row "cold start through the emulator, invoke to answer in a fresh environment,
against the hand-written handler", measured like with like: the hand-written handler
(``cold_start.HAND_IRIS_FUNCTION`` / ``HAND_MINILM_FUNCTION``, the least code a person would
write with onnxruntime) runs as a function of the same emulator, in the same sandbox (bwrap,
cgroups for the function's memory), under the same runtime client (awslambdaric), from a copy
of the same built task root (hard links: the same model file the build ships, the same
dependencies) with one module added, ``hand_written.py``, byte-compiled like the rest of the
task root. So the ratio is modelambda's runtime against the least code, with the emulator's
own cost on both sides.

That cost is reported on its own line: a do-nothing function through the emulator (sandbox,
interpreter, awslambdaric, the Runtime API) against the same do-nothing handler called in a
bare ``python3.12 -S`` process.

Every sample is a fresh environment (the function added under a new name, invoked once
through the Invoke API, timed from the request to the answer, then removed). The four kinds
take turns, the order flipping every round. The JSON's ``summary`` holds the rows
``cold_emulator_iris``, ``cold_emulator_minilm`` and ``emulator_startup_ms``.

Usage: python benchmarks/cold_emulator.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import cold_start  # noqa: E402  (also puts ROOT/src on sys.path)
from emulator import ColdEmulator  # noqa: E402

from modelambda.local.emulator import EmulatorThread  # noqa: E402

GOALS = {"cold_emulator_iris": 1.0, "cold_emulator_minilm": 1.0}
NOOP_FUNCTION = "def handler(event, context):\n    return {'predictions': []}\n"


def with_module(case: cold_start.Case, name: str, source: str, target: Path) -> Any:
    """The case's function with ``source`` as ``<name>.py`` (compiled for the function's
    interpreter) in a hard-linked copy of its task root, and ``<name>.handler`` its handler."""
    shutil.copytree(case.task, target, copy_function=os.link)
    (target / f"{name}.py").write_text(source)
    subprocess.run([case.settings.python, "-m", "compileall", "-q", str(target / f"{name}.py")],
                   check=True, timeout=120)
    return dataclasses.replace(case.settings, handler=f"{name}.handler", task_dir=target)


def measure(case: cold_start.Case, emu: EmulatorThread, runs: int, tmp: Path) -> dict[str, Any]:
    cold = ColdEmulator(emu)
    functions = {
        "modelambda": case.settings,
        "hand_written": with_module(case, "hand_written", case.hand_function,
                                    tmp / f"{case.name}-hand"),
        "noop": with_module(case, "noop", NOOP_FUNCTION, tmp / f"{case.name}-noop"),
    }
    noop_bare = cold_start.bare(NOOP_FUNCTION)

    def bare_noop() -> float:
        return cold_start.run_process(case.settings.python, noop_bare,
                                      ["{}", str(case.task)], case.task, case.pythonpath)[0]

    kinds = {**{kind: (lambda s=settings: cold.sample(s, case.event))
                for kind, settings in functions.items()},
             "noop_bare_process": bare_noop}
    for fn in kinds.values():  # the page cache, not measured
        fn()
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(runs):
        for kind in (list(kinds) if i % 2 == 0 else list(reversed(kinds))):
            samples[kind].append(kinds[kind]())
    med = {kind: statistics.median(v) for kind, v in samples.items()}
    result = {
        "runs": runs, "memory_mb": case.settings.memory_mb,
        **{f"{kind}_ms": round(v, 1) for kind, v in med.items()},
        "ratio": round(med["modelambda"] / med["hand_written"], 3),
        "emulator_startup_ms": round(med["noop"] - med["noop_bare_process"], 1),
        "samples_ms": {kind: [round(s, 1) for s in v] for kind, v in samples.items()},
    }
    print(f"{case.name:8s} modelambda {result['modelambda_ms']:7.1f} ms   hand-written "
          f"{result['hand_written_ms']:7.1f} ms   ratio {result['ratio']:.3f}   (both through "
          "the emulator)", flush=True)
    print(f"{'':8s} emulator start-up: a do-nothing function {result['noop_ms']:.1f} ms, the "
          f"same handler in a bare process {result['noop_bare_process_ms']:.1f} ms "
          f"(+{result['emulator_startup_ms']:.1f} ms)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="cold start through the emulator: "
                                     "modelambda against the hand-written handler")
    parser.add_argument("--runs", type=int, default=None, help="samples per kind (9; 5 with "
                        "--quick)")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "cold_emulator.json")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 9)
    began = time.perf_counter()
    results: dict[str, Any] = {"load_average_start": os.getloadavg(),
                               "sandbox": "bwrap" if shutil.which("bwrap") else "plain"}
    with tempfile.TemporaryDirectory(prefix="modelambda-cold-emu-") as tmp_name:
        tmp = Path(tmp_name)
        cases = cold_start.built_cases(tmp)
        results["python"] = cases["iris"].settings.python
        with EmulatorThread(sink=lambda _line: None) as emu:
            for name, case in cases.items():
                results[name] = measure(case, emu, runs, tmp)
    results["summary"] = {
        f"cold_emulator_{name}": cold_start.summary_row(
            results[name]["ratio"], GOALS[f"cold_emulator_{name}"],
            f"modelambda {results[name]['modelambda_ms']} ms / hand-written "
            f"{results[name]['hand_written_ms']} ms, both functions in the same emulator "
            f"({results[name]['memory_mb']} MB), median of {runs}; emulator start-up: "
            f"do-nothing function {results[name]['noop_ms']} ms vs bare process "
            f"{results[name]['noop_bare_process_ms']} ms")
        for name in cases}
    # no goal of its own: the emulator's cost, on both sides of the ratios above
    startup = results["minilm"]["emulator_startup_ms"]
    results["summary"]["emulator_startup_ms"] = {
        "value": startup, "unit": "ms", "goal": startup, "met": True,
        "detail": "a do-nothing function through the emulator minus the same handler in a "
                  "bare python3.12 -S process (2048 MB function); informational, no goal"}
    results["load_average_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json} ({results['elapsed_s']} s)")


if __name__ == "__main__":
    main()
