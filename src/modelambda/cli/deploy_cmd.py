"""``modelambda deploy DIR``: build, plan, upload, change set, review, execute, follow, outputs.

The command is thin: it parses the spec, checks the names it was given, makes the AWS clients
(``deploy.aws``), builds (``package.build``, which refuses a service over Lambda's limits
before anything is uploaded), plans (``deploy.plan``, read-only calls) and hands the plan to
an executor (``deploy.executor``), or to the display-only one for ``--dry-run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "deploy a service to AWS as a CloudFormation stack (plan, change set, review, execute)"
EPILOG = """examples:
  modelambda deploy examples/iris --dry-run              # the plan; changes nothing
  modelambda deploy examples/iris                        # asks before executing the change set
  modelambda deploy examples/iris --strategy s3 --yes    # for scripts: no question
  modelambda deploy examples/iris --profile prod --region eu-west-1 --stack-name iris-prod
  modelambda deploy examples/iris --endpoint-url http://127.0.0.1:5000 --yes   # a local AWS
  modelambda deploy examples/iris --strategy image --registry 127.0.0.1:5001 \\
      --endpoint-url http://127.0.0.1:5000 --yes        # moto has no image registry

Credentials come from boto3's chain (AWS_PROFILE or --profile, environment, SSO, instance
role) and are never printed or stored. Artifacts go to [deploy] artifact_bucket (default
modelambda-artifacts-ACCOUNT-REGION) under content-hash keys: what is already there is not
uploaded again. What was sent is recorded in DIR/.modelambda/deploy/STACK/ (template.json,
outputs.json, deploy.json). "No changes" is a success. A failed first create is deleted, so
the next deploy is not blocked.
"""


def register(sub: Any) -> None:
    from modelambda import strategies

    p = sub.add_parser("deploy", help=HELP, description=HELP[0].upper() + HELP[1:] + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--strategy", choices=strategies.names(),
                   help="default: the spec's [strategy] kind")
    add_aws_arguments(p, stack=True)
    p.add_argument("--registry", metavar="HOST[:PORT]",
                   help="image strategy: push to this registry instead of ECR (e.g. a local "
                        "one next to a local AWS, whose ECR has no registry API)")
    p.add_argument("--base-image", metavar="REF",
                   help="image strategy: the base image (default: AWS's Lambda Python image "
                        "for the runtime and architecture)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the changes it would make; change nothing")
    p.add_argument("--yes", "-y", action="store_true",
                   help="execute the change set without asking (needed without a terminal)")
    p.set_defaults(run=run)


def add_aws_arguments(p: Any, *, stack: bool) -> None:
    """--stack-name, --region, --profile, --endpoint-url: shared with delete and invoke."""
    if stack:
        p.add_argument("--stack-name", metavar="NAME",
                       help="default: [deploy] stack_name, else modelambda-<service name>")
    p.add_argument("--region", help="default: [deploy] region, else AWS_REGION or the "
                                    "profile's region")
    p.add_argument("--profile", help="an AWS profile (default: boto3's credential chain)")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="send every AWS call to this URL (a local AWS such as moto's server)")


def make_clients(args: argparse.Namespace, spec: Any) -> Any:
    """The AWS clients for a command (tests replace this to observe every call)."""
    from modelambda.deploy.aws import AwsClients

    return AwsClients.from_options(profile=args.profile, region=args.region,
                                   endpoint_url=args.endpoint_url,
                                   default_region=spec.deploy.region)


def stack_name(args: argparse.Namespace, spec: Any) -> str:
    from modelambda.deploy.aws import check_stack_name

    if args.stack_name:
        return check_stack_name(args.stack_name)
    return check_stack_name(spec.stack_name, "[deploy] stack_name")


def require_yes_or_terminal(args: argparse.Namespace, command: str) -> None:
    from modelambda.errors import UsageError

    if not args.yes and not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to {command} without a "
                         "question (or --dry-run to see the plan)"
                         if command == "deploy" else
                         f"no terminal to confirm on: pass --yes to {command} without a "
                         "question")


def ask(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from modelambda.deploy.aws import check_region
    from modelambda.deploy.executor import Declined, DisplayExecutor, Executor
    from modelambda.deploy.plan import DeployOptions, plan_deploy
    from modelambda.package.build import build
    from modelambda.package.checks import LimitExceeded
    from modelambda.spec import load_spec

    spec = load_spec(args.directory).for_strategy(args.strategy)
    name = stack_name(args, spec)
    if args.region:
        check_region(args.region)
    if not args.dry_run:
        require_yes_or_terminal(args, "deploy")
    clients = make_clients(args, spec)
    try:
        clients.require_credentials()
        try:
            result = build(spec, log=lambda line: _log(f"build: {line}"))
        except LimitExceeded as exc:
            print(f"modelambda deploy: refused, nothing uploaded:\n{exc}", file=sys.stderr)
            return 2
        options = DeployOptions(
            stack_name=name, region=clients.region, registry=args.registry,
            base_image=args.base_image, yes=args.yes, tags=dict(spec.deploy.tags),
            alias=spec.deploy.alias, artifact_bucket=spec.deploy.artifact_bucket)
        plan = plan_deploy(spec, result, clients, options)
        if args.dry_run:
            DisplayExecutor(_out).run(plan)
            return 0
        for line in plan.lines():
            _log(line)
        try:
            outcome = Executor(clients, log=_log, out=_out, confirm=ask).run(plan)
        except Declined as exc:
            _log(f"modelambda deploy: {exc}")
            return 1
        done = "no changes" if outcome.no_changes else outcome.status
        _log(f"deployed {spec.service.name} ({spec.strategy.kind}) as stack {name}: {done} "
             f"in {outcome.seconds.get('total', 0):.1f} s")
        return 0
    finally:
        clients.close()
