"""``modelambda delete DIR``: remove the deployed stack, and say what is left.

What the stack does not own, or keeps on purpose, stays: the artifact bucket (shared by the
services deployed from the account and region, content-addressed), the image repository and
its images, the model bucket when it holds versions (a bucket CloudFormation keeps, or one it
cannot delete while it holds objects), and any resource the template marks ``Retain``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "delete the deployed stack, saying what it leaves (model versions, images, artifacts)"
EPILOG = """examples:
  modelambda delete examples/iris                     # asks first
  modelambda delete examples/iris --yes --region eu-west-1
  modelambda delete examples/iris --endpoint-url http://127.0.0.1:5000 --yes
"""


def register(sub: Any) -> None:
    from modelambda.cli.deploy_cmd import add_aws_arguments

    p = sub.add_parser("delete", help=HELP, description=HELP[0].upper() + HELP[1:] + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--strategy", help="the strategy it was deployed with (default: the "
                                      "last deploy's, else the spec's)")
    add_aws_arguments(p, stack=True)
    p.add_argument("--yes", "-y", action="store_true",
                   help="delete without asking (needed without a terminal)")
    p.set_defaults(run=run)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from modelambda.cli.deploy_cmd import (
        ask,
        make_clients,
        require_yes_or_terminal,
        stack_name,
    )
    from modelambda.deploy import stack as stacks
    from modelambda.deploy.aws import check_region
    from modelambda.deploy.plan import record_dir
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    name = stack_name(args, spec)
    if args.region:
        check_region(args.region)
    require_yes_or_terminal(args, "delete")
    record = _last_deploy(record_dir(spec, name))
    strategy = args.strategy or record.get("strategy")
    if strategy and strategy != spec.strategy.kind:
        spec = spec.for_strategy(strategy)
    clients = make_clients(args, spec)
    try:
        clients.require_credentials()
        cfn = clients.client("cloudformation")
        info = stacks.describe(cfn, name)
        if info is None:
            print(f"no stack {name} in {clients.describe()}: nothing to delete")
            return 0
        retained = _retained(cfn, info)
        count = _resource_count(cfn, info)
        question = f"delete stack {name} ({info.status}, {count} resources) in {clients.region}?"
        if not args.yes and not ask(question):
            _log("modelambda delete: not deleted")
            return 1
        _log(f"deleting stack {name}; stack events:")
        failures = stacks.delete(cfn, info, log=_log, sleep=clients.sleep, clock=clients.clock)
        if failures:
            raise stacks.StackError(f"stack {name} was not deleted: "
                                    + "; ".join(f.line() for f in failures), failures)
        print(f"deleted stack {name} ({count} resources) in {clients.describe()}")
        for line in _what_is_left(spec, clients, record, retained):
            print(f"kept: {line}")
        return 0
    finally:
        clients.close()


def _last_deploy(directory: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((directory / "deploy.json").read_text())
        return loaded
    except (OSError, ValueError):
        return {}


def _resource_count(cfn: Any, info: Any) -> int:
    try:
        return len(cfn.describe_stack_resources(StackName=info.stack_id)["StackResources"])
    except Exception:  # a stack whose resources cannot be listed (moto after a failure)
        return 0


def _retained(cfn: Any, info: Any) -> list[tuple[str, str]]:
    """(line, physical name) of each resource the deployed template keeps on delete
    (DeletionPolicy Retain)."""
    try:
        body = cfn.get_template(StackName=info.stack_id, TemplateStage="Original")["TemplateBody"]
        template = body if isinstance(body, dict) else json.loads(body)
    except Exception:
        return []
    kept = []
    for logical, resource in sorted((template.get("Resources") or {}).items()):
        # a function's versions go with the function, whatever their policy says
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate") and \
                resource.get("Type") != "AWS::Lambda::Version":
            props = resource.get("Properties") or {}
            named = props.get("BucketName") or props.get("RepositoryName") or ""
            kept.append((f"{logical} ({resource.get('Type')}{', ' + named if named else ''}): "
                         "the template keeps it on delete (DeletionPolicy Retain)", named))
    return kept


def _what_is_left(spec: Any, clients: Any, record: dict[str, Any],
                  retained: list[tuple[str, str]]) -> list[str]:
    from modelambda.deploy import stack as stacks

    # the model bucket and the repository get a line of their own, with what they hold
    own = {str(spec.strategy.settings.get("bucket") or ""), str(record.get("ecr_repository")
                                                                or "")}
    lines = [line for line, name in retained if not name or name not in own]
    s3 = clients.client("s3")
    if spec.strategy.kind == "s3":
        from modelambda import modelstore

        bucket = str(spec.strategy.settings["bucket"])
        store = modelstore.S3Store(bucket, str(spec.strategy.settings.get("prefix") or ""), s3)
        try:
            found = modelstore.versions(store, spec.model.name)
        except Exception as exc:
            if stacks.error_code(exc) != "NoSuchBucket":
                raise
            found = None
        if found:
            lines.append(f"model bucket s3://{bucket}: {len(found)} version(s) of "
                         f"{spec.model.name} in {store.describe()} (remove them with "
                         f"`aws s3 rb s3://{bucket} --force`)")
    if spec.strategy.kind == "efs":
        lines.append("the model versions on the EFS file system, if the template keeps it")
    artifacts = record.get("artifact_bucket")
    if artifacts:
        lines.append(f"artifact bucket s3://{artifacts}: content-addressed artifacts, shared by "
                     "the services deployed from this account and region (a redeploy reuses "
                     "them)")
    repository = record.get("ecr_repository")
    if repository:
        ecr = clients.client("ecr")
        try:
            images = ecr.describe_images(repositoryName=repository).get("imageDetails", [])
            lines.append(f"ECR repository {repository}: {len(images)} image(s) (remove with "
                         f"`aws ecr delete-repository --repository-name {repository} --force`)")
        except Exception as exc:
            if stacks.error_code(exc) != "RepositoryNotFoundException":
                raise
    elif record.get("image_uri"):
        lines.append(f"image {record['image_uri']} in its registry")
    return lines
