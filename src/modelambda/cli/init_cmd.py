"""``modelambda init DIR --model PATH``: write a commented spec and an example request."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "write a modelambda.toml (and request.json) for a model file"
EPILOG = """examples:
  modelambda init iris-service --model model.onnx
  modelambda invoke iris-service --data @iris-service/request.json
  modelambda init my-classifier --model model.skops --name classifier
"""


def register(sub: Any) -> None:
    p = sub.add_parser("init", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory to write")
    p.add_argument("--model", type=Path, required=True, metavar="PATH",
                   help="the model file (or directory); copied into DIR unless already there")
    p.add_argument("--name", help="function name (default: DIR's name)")
    p.add_argument("--framework", help="override the framework guessed from the file")
    p.add_argument("--force", action="store_true", help="overwrite an existing modelambda.toml")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.scaffold import scaffold

    written = scaffold(args.directory, args.model, name=args.name, framework=args.framework,
                       force=args.force)
    for path in written.files:
        print(f"wrote {path}")
    for note in written.notes:
        print(f"note: {note}")
    request = (f"@{written.request}" if written.request is not None
               else "'{\"instances\": [...]}'")
    first = "trust the types above (see the note), then " if written.untrusted else ""
    print(f"next: {first}modelambda invoke {args.directory} --data {request}")
    return 0
