"""``modelambda advise DIR``: every option for this model and this traffic, side by side,
with a recommendation and the facts that decided it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "compare the strategies and options for this model and traffic, and recommend one"
EPILOG = """examples:
  modelambda advise examples/iris
  modelambda advise examples/minilm-embeddings --requests-per-day 2000000 --peak-rps 80
  modelambda advise examples/iris --p99-ms 300 --requests-per-day 50
  modelambda advise examples/iris --model-updates-per-month 30 --json | jq .recommendation
  modelambda advise examples/iris --from-bench examples/iris/.modelambda/bench/bench.json \\
      --plot advise.png

Options: the six strategies (endpoint = a SageMaker real-time endpoint), SnapStart on those
that allow it, provisioned concurrency, SageMaker Serverless Inference as the endpoint, and
Lambda Managed Instances. Sizes come from real builds; cold starts from a measured local
profile (--from-bench, or a short profile run) scaled to Lambda's CPU; prices from the dated
advisor/prices.json. The rules: modelambda/advisor/recommend.py.
"""


def register(sub: Any) -> None:
    p = sub.add_parser("advise", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--requests-per-day", type=float, default=10_000, metavar="N",
                   help="average traffic (default: %(default)g)")
    p.add_argument("--peak-rps", type=float, metavar="N",
                   help="peak requests per second (default: 3x the average, at least 1)")
    p.add_argument("--payload-kb", type=float, default=1.0, metavar="N",
                   help="request size in KB (default: %(default)g)")
    p.add_argument("--p99-ms", type=float, metavar="N", help="latency target for the p99")
    p.add_argument("--model-updates-per-month", type=float, default=1.0, metavar="N",
                   help="new model versions a month (default: %(default)g)")
    p.add_argument("--arch", default=None, help="x86_64 or arm64 (default: the spec's)")
    p.add_argument("--strategies", metavar="S,S", help="only these strategies (default: all)")
    p.add_argument("--from-bench", type=Path, metavar="FILE",
                   help="a bench.json of this model to take the local profile from")
    p.add_argument("--json", action="store_true", help="the same as data, on stdout")
    p.add_argument("--plot", type=Path, metavar="PATH",
                   help="write cold start and monthly cost per option as a PNG")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.advisor import Traffic, advise, gather, report
    from modelambda.advisor.traffic import check
    from modelambda.cli.bench_cmd import strategy_list
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    traffic = check(Traffic(requests_per_day=args.requests_per_day, peak_rps=args.peak_rps,
                            payload_kb=args.payload_kb, p99_ms=args.p99_ms,
                            model_updates_per_month=args.model_updates_per_month,
                            architecture=args.arch or spec.service.architecture))
    names = strategy_list(args.strategies) or None

    def say(line: str) -> None:
        print(f"advise: {line}", file=sys.stderr, flush=True)

    inputs = gather(spec, traffic, from_bench=args.from_bench, strategies=names, log=say)
    options, recommendation = advise(inputs)
    if args.plot is not None:
        report.plot(options, recommendation, args.plot)
        say(f"wrote {args.plot}")
    data = report.as_json(options, recommendation, inputs, spec.service.name)
    _keep_last(spec.root / ".modelambda" / "advise" / "advise.json", data, say)
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print(report.text(options, recommendation, inputs,
                          report.header_line(spec.service.name, inputs)))
    return 0


def _keep_last(path: Path, data: dict[str, Any], say: Any) -> None:
    """The last advice, where ``up``'s console shows it (a read-only service directory only
    loses that)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    except OSError as exc:
        say(f"cannot keep the advice in {path} for the console: {exc.strerror}")
