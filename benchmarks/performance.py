"""Every row of the performance table (issue 13) in one command.

Runs the benchmarks that measure them, one after another, each as its own process with
``--json`` (so one that fails leaves the others' rows), reads the ``"summary"`` dict of each
JSON (``{row_id: {"value", "unit", "goal", "met", "detail"}}``) and prints one table:

    1  warm invoke overhead over the in-process handler       emulator.py
    2  throughput against MLServer at concurrency 1, 4, 16    emulator.py
    3  cold start through the emulator against hand-written   cold_emulator.py
    4  cold start of the runtime in a bare process            cold_start.py
    5  MiniLM s3 strategy against bundle                      strategies.py
    6  up to ready against MLServer's start to ready          emulator.py

Usage: python benchmarks/performance.py [--quick] [--only NAME,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# (name, script and its own arguments); emulator.py's cold section is cold_emulator.py's job
BENCHMARKS: dict[str, list[str]] = {
    "emulator": ["emulator.py", "--skip", "cold"],
    "cold_emulator": ["cold_emulator.py"],
    "cold_start": ["cold_start.py"],
    "strategies": ["strategies.py", "--models", "minilm", "--strategies", "bundle,s3"],
}

# the rows, in its order: (row number, row id, what it is)
ROWS = [
    (1, "warm_overhead_ms", "warm invoke, p50 overhead over in-process"),
    (2, "throughput_c1", "throughput vs MLServer, c=1"),
    (2, "throughput_c4", "throughput vs MLServer, c=4"),
    (2, "throughput_c16", "throughput vs MLServer, c=16"),
    (3, "cold_emulator_iris", "cold start vs hand-written, iris"),
    (3, "cold_emulator_minilm", "cold start vs hand-written, MiniLM"),
    (3, "emulator_startup_ms", "  emulator's own start-up (no goal)"),
    (4, "cold_bare_iris", "bare-process runtime cold start, iris"),
    (4, "cold_bare_minilm", "bare-process runtime cold start, MiniLM"),
    (5, "s3_vs_bundle_minilm", "MiniLM s3 vs bundle cold start"),
    (6, "up_ready_vs_mlserver", "up to ready vs MLServer start to ready"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(name: str, quick: bool, out: Path) -> dict[str, Any]:
    """Run one benchmark; its summary, or {"error": why}."""
    argv = [sys.executable, str(BENCH / BENCHMARKS[name][0]), *BENCHMARKS[name][1:],
            "--json", str(out)]
    if quick:
        argv.append("--quick")
    out.unlink(missing_ok=True)
    log(f"== {name}: {' '.join(argv[1:])}")
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False)
    seconds = round(time.perf_counter() - started, 1)
    log(f"== {name}: exit {done.returncode} after {seconds} s")
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"exit {done.returncode}, no JSON ({exc})", "seconds": seconds}
    summary = data.get("summary")
    if not isinstance(summary, dict):
        return {"error": f"exit {done.returncode}, its JSON has no summary", "seconds": seconds}
    # sections that failed inside a benchmark that still finished (emulator.py's "failed")
    failed = "; ".join(f"{k} failed: {v[:150]}" for k, v in (data.get("failed") or {}).items())
    return {"rows": summary, "seconds": seconds, "exit": done.returncode,
            **({"error": failed} if failed else {})}


def table(results: dict[str, dict[str, Any]]) -> str:
    rows: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, result in results.items():
        for row_id, row in result.get("rows", {}).items():
            rows[row_id] = row
            source[row_id] = name
    out = [f"{'#':>2s} {'row':44s} {'measured':>18s} {'goal':>14s} {'met':>4s}"]
    for number, row_id, label in ROWS:
        row = rows.get(row_id)
        if row is None:
            why = next((r["error"] for n, r in results.items() if "error" in r
                        and row_id in EXPECTED.get(n, ())), "not measured")
            out.append(f"{number:2d} {label:44s} {'-':>18s} {'':14s} {'':4s}  ({why})")
            continue
        unit = row.get("unit", "")
        measured = f"{row['value']:.3f} {unit}"
        goal = "" if row_id == "emulator_startup_ms" else f"{SENSE[row_id[:5]]} {row['goal']:g}"
        met = "" if row_id == "emulator_startup_ms" else ("yes" if row["met"] else "NO")
        out.append(f"{number:2d} {label:44s} {measured:>18s} {goal:>14s} {met:>4s}")
        out.append(f"   {'':44s} {row.get('detail', '')} [{source[row_id]}]")
    return "\n".join(out)


# how each goal reads: below, at least, at most
SENSE = {"warm_": "<", "throu": ">=", "cold_": "<=", "s3_vs": "<=", "up_re": "<="}

# which rows each benchmark gives (to say why a row is missing)
EXPECTED = {
    "emulator": ("warm_overhead_ms", "throughput_c1", "throughput_c4", "throughput_c16",
                 "up_ready_vs_mlserver"),
    "cold_emulator": ("cold_emulator_iris", "cold_emulator_minilm", "emulator_startup_ms"),
    "cold_start": ("cold_bare_iris", "cold_bare_minilm"),
    "strategies": ("s3_vs_bundle_minilm",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="every row of issue 13's table, one command")
    parser.add_argument("--quick", action="store_true",
                        help="each benchmark's --quick (fewer samples, shorter runs)")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"benchmarks to run, comma-separated ({', '.join(BENCHMARKS)})")
    parser.add_argument("--json", type=Path, default=RESULTS / "performance.json")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only {','.join(unknown)}: benchmarks are {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    load = os.getloadavg()
    results = {name: run(name, args.quick, RESULTS / f"performance-{name}.json")
               for name in names}
    elapsed = round(time.perf_counter() - began, 1)
    print("\nIssue 13's table, measured in one run "
          f"({'--quick, ' if args.quick else ''}{elapsed} s; load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs)\n")
    print(table(results), flush=True)
    args.json.write_text(json.dumps({"quick": args.quick, "elapsed_s": elapsed,
                                     "load_average_start": load,
                                     "load_average_end": os.getloadavg(),
                                     "benchmarks": results}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
