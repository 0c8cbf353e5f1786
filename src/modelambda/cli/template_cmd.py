"""``modelambda template DIR [--strategy S] [--format sam|cfn] [-o FILE]``: the service's
SAM template (or its CloudFormation translation), built from the strategy's artifacts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "write the SAM (or CloudFormation) template that deploys a service"
DESCRIPTION = ("Write the SAM template that deploys a service with a strategy (or its "
               "CloudFormation translation): the function, its least-privilege role, log "
               "group, alias and URL, and the strategy's resources.")
EPILOG = """examples:
  modelambda template examples/iris > template.json            # the spec's [strategy]
  modelambda template examples/iris --strategy s3 -o template.json
  modelambda template examples/iris --strategy layer --format cfn --region eu-west-1
  modelambda template examples/iris --bucket my-artifacts --check

The template is JSON (which SAM and CloudFormation read as they read YAML). It builds the
artifacts first (their sha256 names their S3 keys: <service>/<sha256>.zip) and uploads
nothing: `modelambda deploy` does, or copy them by hand to the keys printed on stderr.
"""


def register(sub: Any) -> None:
    from modelambda import strategies
    from modelambda.deploy.template import FORMATS

    p = sub.add_parser("template", help=HELP, description=DESCRIPTION,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    p.add_argument("--strategy", choices=strategies.names(),
                   help="default: the spec's [strategy] kind; another strategy gets its local "
                        "defaults for what the spec does not name")
    p.add_argument("--format", choices=FORMATS, default="sam",
                   help="sam (default): AWS::Serverless resources, for sam deploy or "
                        "CloudFormation's transform; cfn: translated offline to plain "
                        "CloudFormation for one region")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write the template to FILE (default: stdout)")
    p.add_argument("--region",
                   help="for --format cfn and --check (default: [deploy] region, "
                        "$AWS_REGION, else us-east-1)")
    p.add_argument("--bucket", metavar="NAME",
                   help="the artifact bucket (default: [deploy] artifact_bucket, else the "
                        "template's ArtifactBucket parameter)")
    p.add_argument("--image-uri", metavar="URI",
                   help="image strategy: the pushed image, <account>.dkr.ecr.<region>."
                        "amazonaws.com/<repository>@sha256:<digest> (default: the template's "
                        "ImageUri parameter)")
    p.add_argument("--check", action="store_true",
                   help="lint the template with cfn-lint; errors fail the command")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.deploy import template as tpl
    from modelambda.deploy.resources import ECR_IMAGE
    from modelambda.errors import UsageError
    from modelambda.package.build import build
    from modelambda.spec import BUCKET, load_spec

    if args.bucket is not None and not BUCKET.match(args.bucket):
        raise UsageError(f"--bucket {args.bucket!r}: not an S3 bucket name (3-63 lower-case "
                         "letters, digits, '.', '-')")
    if args.image_uri is not None and not ECR_IMAGE.match(args.image_uri):
        raise UsageError(f"--image-uri {args.image_uri!r}: not an ECR image "
                         "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:...)")

    def say(line: str) -> None:
        print(f"template: {line}", file=sys.stderr, flush=True)

    spec = load_spec(args.directory).for_strategy(args.strategy)
    tpl.check_deployable(spec)  # before a build that would be for nothing
    region = tpl.region_for(spec, args.region)
    result = build(spec, log=lambda line: say(f"build: {line}"))
    bucket = args.bucket or spec.deploy.artifact_bucket
    # given locations close the template's parameters; an image strategy uploads nothing,
    # and its image stays a parameter until --image-uri names it
    uploading = bool(tpl.uploads(spec, result))
    where = (tpl.locations_for(spec, result, bucket or "", args.image_uri)
             if (bucket and uploading) or args.image_uri else None)
    sam = tpl.sam_template(spec, result, where)
    template = tpl.cloudformation(sam, region) if args.format == "cfn" else sam
    if args.check:
        errors = tpl.lint(template, region)
        for error in errors:
            print(f"modelambda template: cfn-lint: {error}", file=sys.stderr)
        if errors:
            return 1
        say(f"cfn-lint ({region}): no errors")
    text = tpl.render(template)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        say(f"wrote {args.output}")
    _say_uploads(spec, result, bucket, say)
    return 0


def _say_uploads(spec: Any, result: Any, bucket: str | None, say: Any) -> None:
    """What deploy would upload, for a template deployed by hand."""
    from modelambda.deploy.template import content_key, uploads

    where = f"s3://{bucket}" if bucket else "s3://<ArtifactBucket>"
    for artifact in uploads(spec, result):
        key = content_key(spec, artifact.name, artifact.sha256)
        say(f"upload {artifact.path} to {where}/{key}")
    if result.function.kind == "image-context":
        say(f"build and push the image from {result.function.path} to the stack's repository "
            "(output RepositoryUri); its URI by digest is the ImageUri parameter")
