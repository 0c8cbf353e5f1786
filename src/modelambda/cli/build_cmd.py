"""``modelambda build DIR [--strategy S]``: a strategy's artifacts, checked against the limits."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "build the artifacts of a strategy, checked against Lambda's limits"
EPILOG = """examples:
  modelambda build examples/iris                       # the spec's [strategy]
  modelambda build examples/iris --strategy s3         # any of the six, no spec edit
  modelambda build examples/minilm-embeddings --strategy layer --arch arm64
  modelambda build examples/iris --strategy image --json | jq .limits
"""


def register(sub: Any) -> None:
    from modelambda import strategies

    p = sub.add_parser("build", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--strategy", choices=strategies.names(),
                   help="default: the spec's [strategy] kind; another strategy gets its local "
                        "defaults for what the spec does not name")
    p.add_argument("--arch", choices=("x86_64", "arm64"), help="default: the spec's")
    p.add_argument("--python", metavar="PATH",
                   help="interpreter to compile bytecode with (default: the runtime's version)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if nothing changed since the last build")
    p.add_argument("--no-import-check", action="store_true",
                   help="skip importing the handler from the built files in the target "
                        "interpreter (on by default: it finds what slimming or a missing "
                        "wheel broke)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.package.build import build
    from modelambda.package.checks import LimitExceeded

    def say(line: str) -> None:
        print(f"build: {line}", file=sys.stderr, flush=True)

    try:
        result = build(args.directory, args.strategy, architecture=args.arch,
                       python=args.python, log=say, force=args.force,
                       check_imports=not args.no_import_check)
    except LimitExceeded as exc:
        print(f"modelambda build: refused, nothing written or uploaded:\n{exc}", file=sys.stderr)
        if exc.manifest is not None:
            print(f"(details in {exc.manifest})", file=sys.stderr)
        return 2
    manifest = result.manifest
    if args.json:
        print(json.dumps(manifest, indent=1))
        return 0
    for artifact in manifest["artifacts"]:
        zipped = f"{artifact['zipped_bytes']:>13,} zipped" if artifact["zipped_bytes"] else \
            " " * 20
        print(f"{artifact['path']:<32} {artifact['unzipped_bytes']:>13,} unzipped {zipped}  "
              f"sha256 {artifact['sha256'][:16]}  ({artifact['contents']})")
    for check in manifest["limits"]:
        mark = "ok  " if check["ok"] else ("note" if check["severity"] == "note" else "FAIL")
        print(f"  {mark} {check['name']}: {check['value']:,} of {check['limit']:,} "
              f"{check['unit']} (margin {check['margin']:,})"
              + (f": {check['note']}" if not check["ok"] and check["note"] else ""))
    print(f"manifest: {result.out / 'manifest.json'}")
    return 0
