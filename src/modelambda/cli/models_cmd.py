"""``modelambda models publish|promote|rollback|list|gc DIR``: the versioned model store."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = "the versioned model store of the s3 and efs strategies"
EPILOG = """examples:
  modelambda models publish examples/iris --alias live
  modelambda models publish examples/iris --model retrained.onnx --alias live
  modelambda models publish examples/iris --version 2 --store s3://my-bucket/models
  modelambda models promote examples/iris 2 --alias live
  modelambda models rollback examples/iris --alias live
  modelambda models list examples/iris
  modelambda models gc examples/iris --dry-run

The store is the spec's ([strategy] bucket/prefix for s3; for efs the directory that `up`
mounts) unless --store names another: s3://BUCKET/PREFIX or a directory. S3 is reached with
the usual AWS settings (AWS_ENDPOINT_URL_S3, credentials, region); when none names an endpoint
and a running `modelambda up` serves the service from its embedded S3, that S3 is used.
"""

# One example per action, shown by `modelambda models ACTION --help`.
EXAMPLES = {
    "publish": """examples:
  modelambda models publish examples/iris --alias live
  modelambda models publish examples/iris --model retrained.onnx --version 2
  modelambda models publish examples/iris --store /tmp/store --alias live
""",
    "promote": """examples:
  modelambda models promote examples/iris 2 --alias live
  modelambda models promote examples/iris 2 --alias canary --store s3://my-bucket/models
""",
    "rollback": """examples:
  modelambda models rollback examples/iris --alias live
""",
    "list": """examples:
  modelambda models list examples/iris
  modelambda models list examples/iris --store /tmp/store | jq .aliases
""",
    "gc": """examples:
  modelambda models gc examples/iris --dry-run
  modelambda models gc examples/iris
""",
}


def register(sub: Any) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP.capitalize() + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = actions.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + ".",
            epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
        a.add_argument("--store", help="s3://BUCKET/PREFIX or a directory (default: the spec's)")
        a.set_defaults(run=run)
        return a

    publish = action("publish", "upload the model as a new version (never overwrites)")
    publish.add_argument("--model", type=Path, metavar="PATH",
                         help="publish this model file or directory instead of the spec's "
                              "(e.g. a retrained one); same framework and layout as the spec's")
    publish.add_argument("--version", help="default: the spec's, else a hash of the files "
                                           "(with --model: a hash of its files)")
    publish.add_argument("--alias", help="then point this alias at it")
    promote = action("promote", "point an alias at a version")
    promote.add_argument("version")
    promote.add_argument("--alias", default="live")
    rollback = action("rollback", "move an alias back to the version it pointed at before")
    rollback.add_argument("--alias", default="live")
    action("list", "versions and aliases")
    gc = action("gc", "remove versions no alias points to (nor keeps for rollback)")
    gc.add_argument("--dry-run", action="store_true")


def _running_up_s3(spec: Any) -> dict[str, Any] | None:
    """The record of a running `up` that serves this s3 service from its embedded S3, when
    this shell names no S3 endpoint of its own."""
    if spec.strategy.kind != "s3":
        return None
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    from modelambda.local import state

    running = getattr(state, "running", None)  # running(): every live `up`, newest first
    for record in running() if running is not None else []:
        if record.get("s3_url") and spec.service.name in (record.get("functions") or []):
            return dict(record)
    return None


def _store(args: argparse.Namespace, spec: Any) -> Any:
    from modelambda import modelstore

    if args.store:
        return modelstore.open_store(args.store)
    record = _running_up_s3(spec)
    if record is None:
        return modelstore.default_store(spec)
    import boto3

    from modelambda.local.s3server import CREDENTIALS, REGION

    print(f"modelambda models: using the embedded S3 at {record['s3_url']} of the running "
          f"`modelambda up` (pid {record.get('pid')}); set AWS_ENDPOINT_URL_S3 or --store to use "
          "another", file=sys.stderr)
    client = boto3.client("s3", endpoint_url=record["s3_url"], region_name=REGION,
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    return modelstore.default_store(spec, client)


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import AwsError
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    if getattr(args, "model", None) is not None:
        _check_other_model(spec, args.model)  # before anything is reached
    store = _store(args, spec)
    try:
        return _act(args, spec, store)
    except Exception as exc:
        from modelambda.awserrors import explain

        line = explain(exc, store.describe())
        if line is None:
            raise
        raise AwsError(line) from exc


def _act(args: argparse.Namespace, spec: Any, store: Any) -> int:
    from modelambda import modelstore

    model = spec.model.name
    if args.action == "publish":
        if args.model is not None:
            version = _publish_other(spec, store, args.model, args.version, args.alias)
        else:
            version = modelstore.publish_service(spec, store, version=args.version,
                                                 alias=args.alias)
        source = f" ({args.model})" if args.model is not None else ""
        print(f"published {model} version {version}{source} to {store.describe()}"
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


# --- publish --model: another file of the same kind as the spec's -----------------------


def _model_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return [path]


def _check_other_model(spec: Any, path: Path) -> None:
    """``path`` can be a version of the spec's model: it exists, is a file if the spec's model
    is a file (a directory if it is one), and its suffix says the same framework."""
    from modelambda.errors import UsageError
    from modelambda.runtime.backends.sklearn import PICKLE_SUFFIXES
    from modelambda.spec import SUFFIX_FRAMEWORKS

    framework = spec.model.framework
    if not path.exists():
        raise UsageError(f"--model {path}: no such file or directory")
    if path.is_dir() != spec.model_path.is_dir():
        kind = "directory" if spec.model_path.is_dir() else "file"
        raise UsageError(f"--model {path}: the service's model ({spec.model.path}) is a {kind}; "
                         f"publish a {kind} of the same layout")
    files = _model_files(path)
    if not files:
        raise UsageError(f"--model {path}: the directory holds no files")
    if framework != "python":  # a python model's files can be anything its class reads
        found = {SUFFIX_FRAMEWORKS[p.suffix] for p in files if p.suffix in SUFFIX_FRAMEWORKS}
        suffix_of = path.suffix if path.is_file() else "its files' suffixes"
        if not found:
            raise UsageError(f"--model {path}: cannot tell its framework from {suffix_of}; the "
                             f"service's model is {framework} ({spec.model.path})")
        if found != {framework}:
            raise UsageError(f"--model {path} is a {' and '.join(sorted(found))} model (by "
                             f"{suffix_of}), the service's is {framework}: a new version must "
                             "load with the same backend")
    pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles and not spec.model.trust_pickle:
        raise UsageError(f"--model {path}: {', '.join(pickles)} is a pickle, which the service "
                         "refuses to load: convert it to skops or ONNX, or set [model] "
                         "trust_pickle = true if you made it yourself")


def _publish_other(spec: Any, store: Any, path: Path, version: str | None,
                   alias: str | None) -> str:
    """Publish ``path`` as a new version of the service's model, laid out as the spec's own
    model is (a file keeps the spec's file name when it has the same suffix)."""
    import dataclasses
    import shutil

    from modelambda import modelstore
    from modelambda.errors import UsageError
    from modelambda.package.archive import Entry
    from modelambda.package.onnxopt import optimized_onnx
    from modelambda.runtime.integrity import sha256_file
    from modelambda.spec import version_of

    if path.is_dir():
        named = {p.relative_to(path).as_posix(): p for p in _model_files(path)}
    else:
        own = Path(spec.model.path)
        named = {own.name if own.suffix == path.suffix else path.name: path}
    chosen = version or version_of({rel: {"sha256": sha256_file(p)} for rel, p in named.items()})
    other = dataclasses.replace(spec, model=dataclasses.replace(
        spec.model, path=str(path.resolve()), version=chosen))
    work = spec.root / ".modelambda" / "publish"
    try:
        entries = [Entry(rel, p) for rel, p in named.items()]
        if spec.model.framework == "onnx" and spec.build.optimize_onnx:
            try:
                entries = optimized_onnx(entries, work)  # as a build ships it
            except Exception as exc:  # ModelLoadError, or onnxruntime's own types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise UsageError(f"--model {path}: not a model the service can load: "
                                 f"{first}") from exc
        modelstore.publish(store, spec.model.name, chosen, {e.name: e.source for e in entries},
                           framework=spec.model.framework, schema=modelstore.model_schema(other))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if alias:
        modelstore.promote(store, spec.model.name, chosen, alias)
    return chosen
