"""``modelambda models publish|promote|rollback|list|gc DIR``: the versioned model store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "the versioned model store of the s3 and efs strategies"
EPILOG = """examples:
  modelambda models publish examples/iris --alias live
  modelambda models publish examples/iris --version 2 --store s3://my-bucket/models
  modelambda models promote examples/iris 2 --alias live
  modelambda models rollback examples/iris --alias live
  modelambda models list examples/iris
  modelambda models gc examples/iris --dry-run

The store is the spec's ([strategy] bucket/prefix for s3; for efs the directory that `up`
mounts) unless --store names another: s3://BUCKET/PREFIX or a directory. S3 is reached with
the usual AWS settings (AWS_ENDPOINT_URL_S3, credentials, region).
"""


def register(sub: Any) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP.capitalize() + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        a.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
        a.add_argument("--store", help="s3://BUCKET/PREFIX or a directory (default: the spec's)")
        a.set_defaults(run=run)
        return a

    publish = action("publish", "upload the model as a new version (never overwrites)")
    publish.add_argument("--version", help="default: the spec's, else a hash of the files")
    publish.add_argument("--alias", help="then point this alias at it")
    promote = action("promote", "point an alias at a version")
    promote.add_argument("version")
    promote.add_argument("--alias", default="live")
    rollback = action("rollback", "move an alias back to the version it pointed at before")
    rollback.add_argument("--alias", default="live")
    action("list", "versions and aliases")
    gc = action("gc", "remove versions no alias points to (nor keeps for rollback)")
    gc.add_argument("--dry-run", action="store_true")


def run(args: argparse.Namespace) -> int:
    from modelambda import modelstore
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    store = modelstore.open_store(args.store) if args.store else modelstore.default_store(spec)
    model = spec.model.name
    if args.action == "publish":
        version = modelstore.publish_service(spec, store, version=args.version,
                                             alias=args.alias)
        print(f"published {model} version {version} to {store.describe()}"
              + (f"; {args.alias} -> {version}" if args.alias else ""))
    elif args.action == "promote":
        before = modelstore.promote(store, model, args.version, args.alias)
        print(f"{args.alias}: {before or '(none)'} -> {args.version}")
    elif args.action == "rollback":
        current, target = modelstore.rollback(store, model, args.alias)
        print(f"{args.alias}: {current} -> {target}")
    elif args.action == "list":
        listing = {"store": store.describe(), "model": model,
                   "versions": {v: {k: (m or {}).get(k) for k in ("created", "framework")}
                                for v in modelstore.versions(store, model)
                                for m in [modelstore.manifest(store, model, v)]},
                   "aliases": modelstore.aliases(store, model)}
        print(json.dumps(listing, indent=1))
    elif args.action == "gc":
        removed = modelstore.gc(store, model, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {len(removed)} version(s): {', '.join(removed) or 'none'}")
    return 0
