"""``modelambda optimize DIR [--to onnx] [--quantize int8] [--check N]``: a converted or
quantised model version beside the original, checked against it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "convert the model to ONNX or quantise it to int8, as a checked new version"
EPILOG = """examples:
  modelambda optimize examples/iris --quantize int8
  modelambda optimize my-sklearn-service --to onnx                 # writes model.sklearn.onnx
  modelambda optimize my-xgboost-service --to onnx --check 500 --min-agreement 1
  modelambda optimize examples/minilm-embeddings --quantize int8   # writes model.int8/
  modelambda optimize examples/minilm-embeddings --quantize int8 --publish --alias live

The new version goes beside the original and never replaces anything: a file gets one tag
per step (model.skops -> model.sklearn.onnx, model.onnx -> model.int8.onnx), a model
directory a sibling directory (model/ -> model.int8/). The check runs the service's
request.json instances, then rows generated from the model's input schema, through both
models; below a threshold nothing is written. The spec keeps its [model] path until you
switch it; the report of each run is in DIR/.modelambda/optimize/.
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction from 0 to 1 (e.g. 0.99)")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("optimize", help=HELP, description=HELP[0].upper() + HELP[1:] + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--to", choices=("onnx",),
                   help="convert a scikit-learn, XGBoost or LightGBM model to ONNX")
    p.add_argument("--quantize", choices=("int8",),
                   help="dynamic int8 quantisation of an ONNX model (after --to onnx when "
                        "both are given)")
    p.add_argument("--check", type=int, default=100, metavar="N",
                   help="inputs to run through both models (default 100; 0 skips the check)")
    p.add_argument("--min-agreement", type=_fraction, default=0.99, metavar="F",
                   help="classifiers: the least share of equal labels (default 0.99)")
    p.add_argument("--max-diff", type=_non_negative, metavar="F",
                   help="the largest absolute difference of any numeric output (default: "
                        "reported, not enforced)")
    p.add_argument("--min-cosine", type=_fraction, default=0.98, metavar="F",
                   help="vector outputs without labels (embeddings): the least mean cosine "
                        "similarity to the original's (default 0.98)")
    p.add_argument("--output", metavar="PATH",
                   help="the new version's path in DIR (default: the original's name with a "
                        "tag per step)")
    p.add_argument("--publish", action="store_true",
                   help="publish the new version to the spec's model store (s3, efs)")
    p.add_argument("--store", help="publish to this store instead: s3://BUCKET/PREFIX or a "
                                   "directory")
    p.add_argument("--version", help="the published version's name (default: a hash of its "
                                     "files)")
    p.add_argument("--alias", help="point this alias of the store at the published version "
                                   "(quantised ONNX of an ONNX service)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import UsageError
    from modelambda.optimize.check import Thresholds
    from modelambda.optimize.run import Request, optimize, validate
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    if args.version is not None and not (args.publish or args.store):
        raise UsageError("--version names the published version: add --publish or --store")
    request = Request(to=args.to, quantize=args.quantize, check=args.check,
                      thresholds=Thresholds(args.min_agreement, args.max_diff, args.min_cosine),
                      output=args.output, publish=bool(args.publish or args.store),
                      version=args.version, alias=args.alias)
    validate(spec, request)  # before the store is reached
    store = None
    if request.publish:
        from modelambda.cli.models_cmd import _store

        store = _store(args, spec)
        request.store = store

    def say(line: str) -> None:  # progress on a terminal; quiet in pipes and CI
        if sys.stderr.isatty():
            print(f"optimize: {line}", file=sys.stderr, flush=True)

    try:
        outcome = optimize(spec, request, say)
    except Exception as exc:
        if store is None:
            raise
        from modelambda.awserrors import explain
        from modelambda.errors import AwsError

        line = explain(exc, store.describe())
        if line is None:
            raise
        raise AwsError(line) from exc
    if args.json:
        print(json.dumps(_as_dict(spec, outcome), indent=1))
    else:
        _print(spec, outcome, store, args.alias)
    return 0


def _as_dict(spec: Any, outcome: Any) -> dict[str, Any]:
    return {"original": outcome.original.relative_to(spec.root).as_posix(),
            "new": outcome.new.relative_to(spec.root).as_posix(),
            "original_bytes": outcome.original_bytes, "new_bytes": outcome.new_bytes,
            "steps": outcome.steps,
            "check": outcome.check.as_dict() if outcome.check is not None else None,
            "report": str(outcome.report), "published": outcome.published,
            "notes": outcome.notes}


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


def _print(spec: Any, outcome: Any, store: Any, alias: str | None) -> None:
    original = outcome.original.relative_to(spec.root).as_posix()
    new = outcome.new.relative_to(spec.root).as_posix()
    for step in outcome.steps:
        print(step)
    check = outcome.check
    if check is None:
        print("check: skipped (--check 0)")
    else:
        print(f"check: {check.summary()}: passed")
        for note in [*check.notes, *outcome.notes]:
            print(f"  note: {note}")
    ratio = outcome.new_bytes / outcome.original_bytes if outcome.original_bytes else 0.0
    print(f"wrote {new} ({_size(outcome.new_bytes)}; {original}: "
          f"{_size(outcome.original_bytes)}, {ratio:.2f}x)")
    if outcome.published is not None:
        print(f"published {spec.model.name} version {outcome.published} to {store.describe()}"
              + (f"; {alias} -> {outcome.published}" if alias else ""))
    framework = "" if spec.model.framework == "onnx" else ' and framework = "onnx"'
    print(f"to serve it: set [model] path = \"{new}\"{framework} in {spec.file.name}, and add "
          f"\"{original}\" to [build] exclude_files (every file of the service directory "
          f"ships); until then {new} ships beside the model unless you exclude it")
    print(f"report: {outcome.report}")
