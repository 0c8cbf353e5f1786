"""``modelambda bench DIR``: cold starts broken down, warm latency, throughput, memory and the
bill per strategy and memory size, on the local emulator; bench.json plus PNG charts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "measure cold start, latency, throughput and cost per strategy and memory size"
EPILOG = """examples:
  modelambda bench examples/iris --strategies bundle,s3 --memory 512,1769
  modelambda bench examples/minilm-embeddings --memory 512,1024,1769,3008 --cold 3 --warm 30
  modelambda bench examples/iris --concurrency 1,4 --out /tmp/iris-bench
  modelambda advise examples/iris --from-bench examples/iris/.modelambda/bench/bench.json

Each memory size runs as its own function on the emulator, which gives it Lambda's CPU share
(1769 MB = one vCPU) when it can use control groups; bench.json records whether it could
(emulator.cgroups). Cold starts are split into runtime start, imports, model fetch, model
load and first prediction from the environment's own output (REPORT, the runtime's init
record and Python's import profile).
"""


def _ints(text: str, what: str) -> list[int]:
    from modelambda.errors import UsageError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} takes comma-separated whole numbers, not {text!r}") from None
    if not values:
        raise UsageError(f"{what} needs at least one value")
    return values


def strategy_list(text: str | None) -> list[str]:
    from modelambda import strategies

    if not text:
        return []
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        strategies.get(name)  # UsageError: unknown strategy, naming the known ones
    return names


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--strategies", metavar="S,S", help="comma-separated (default: all six)")
    p.add_argument("--memory", default="512,1024,1769,3008", metavar="MB,MB",
                   help="memory sizes in MB (default: %(default)s)")
    p.add_argument("--cold", type=int, default=3, metavar="N",
                   help="cold starts per strategy and size (default: %(default)s)")
    p.add_argument("--warm", type=int, default=20, metavar="N",
                   help="warm invocations per strategy and size (default: %(default)s)")
    p.add_argument("--concurrency", default="1,4,16", metavar="C,C",
                   help="client concurrency levels for throughput (default: %(default)s)")
    p.add_argument("--data", metavar="JSON", help="the request to send (default: "
                   "DIR/request.json)")
    p.add_argument("--arch", help="x86_64 or arm64 (default: the spec's)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where bench.json and the charts go (default: DIR/.modelambda/bench)")
    p.add_argument("--no-charts", action="store_true", help="bench.json only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda import limits
    from modelambda.bench import BenchConfig, run_bench, write_bench
    from modelambda.errors import UsageError
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    if args.arch is not None and args.arch not in limits.ARCHITECTURES:
        raise UsageError(f"unknown architecture {args.arch!r}; known: "
                         f"{', '.join(limits.ARCHITECTURES)}")
    request = None
    if args.data is not None:
        try:
            request = json.loads(args.data)
        except ValueError as exc:
            raise UsageError(f"--data is not JSON: {exc}") from None
    config = BenchConfig(strategies=strategy_list(args.strategies),
                         memory=_ints(args.memory, "--memory"), cold=args.cold,
                         warm=args.warm, concurrency=_ints(args.concurrency, "--concurrency"),
                         request=request, architecture=args.arch)

    def say(line: str) -> None:
        if sys.stderr.isatty():
            print(f"\nbench: {line}", file=sys.stderr, flush=True)

    doc = run_bench(spec, config, log=say)
    out = args.out or spec.root / ".modelambda" / "bench"
    path = write_bench(doc, out)
    charts: list[Path] = []
    if not args.no_charts:
        from modelambda.bench.charts import write_charts

        charts = write_charts(doc, out)
        doc["charts"] = [str(c) for c in charts]
        write_bench(doc, out)
    print(summary(doc))
    print(f"\nwrote {path}" + "".join(f"\n      {c}" for c in charts))
    return 0


def summary(doc: dict[str, Any]) -> str:
    emulator = doc.get("emulator", {})
    lines = [f"{doc['service']}: emulator sandbox {emulator.get('sandbox')}, cgroups "
             f"{emulator.get('cgroups')}",
             f"{'strategy':<9} {'MB':>5} {'cold ms':>8} {'start':>6} {'imports':>7} "
             f"{'fetch':>6} {'load':>6} {'1st':>6} {'warm p50':>8} {'p99':>7} {'rps@max':>8} "
             f"{'max MB':>6} {'$/M warm':>9}"]
    for strategy, result in doc.get("results", {}).items():
        for memory, row in result.get("memory", {}).items():
            if "error" in row:
                lines.append(f"{strategy:<9} {memory:>5} failed: {row['error'][:80]}")
                continue
            parts = row["cold"]["breakdown"]
            levels = row.get("throughput", {})
            top = levels[max(levels, key=int)].get("rps") if levels else None
            warm = row["warm"]["client_ms"]
            lines.append(
                f"{strategy:<9} {memory:>5} {row['cold']['cold_ms']:>8,.0f} "
                f"{parts['runtime_start']:>6,.0f} {parts['imports']:>7,.0f} "
                f"{parts['fetch']:>6,.0f} {parts['load']:>6,.0f} "
                f"{parts['first_prediction']:>6,.0f} "
                f"{warm['p50']:>8,.1f} {warm['p99']:>7,.1f} "
                f"{top if top is not None else '-':>8} {row['warm']['max_memory_mb']:>6} "
                f"{row['bill']['cost_per_million_warm']:>9,.3f}")
        picks = result.get("power_tuning", {}).get("picks")
        if picks:
            lines.append(f"{'':<9} Power Tuning picks: cost {picks['cost']} MB, speed "
                         f"{picks['speed']} MB, balanced {picks['balanced']} MB")
    return "\n".join(lines)
