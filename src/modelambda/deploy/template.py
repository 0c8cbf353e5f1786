"""A service's SAM template, its offline CloudFormation translation, and cfn-lint's verdict.

    result = build(spec, "s3")
    where = locations_for(spec, result, "my-artifacts")    # content-addressed S3 keys
    sam = sam_template(spec, result, where)   # where=None: an ArtifactBucket parameter
    cfn = cloudformation(sam, "eu-west-1")    # aws-sam-translator, offline: no AWS call
    errors = lint(cfn, "eu-west-1")           # cfn-lint's errors, one line each

The template is data built from the spec and the build: the common part (function, role, log
group, alias, URL, outputs) in ``resources.py``, each strategy's part in its module
(``Strategy.deploy_resources``). Artifacts live in the artifact bucket under
``<service>/<sha256>.zip`` (``.tar.gz`` for a SageMaker model), so an unchanged artifact is
never uploaded twice and a changed one gets a new key (and a new function version).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from modelambda.deploy.resources import TemplateBuilder
from modelambda.errors import ModelambdaError, SpecError, UsageError
from modelambda.spectable import Problems

if TYPE_CHECKING:
    from modelambda.package.artifacts import Artifact, BuildResult
    from modelambda.spec import ServiceSpec

FORMATS = ("sam", "cfn")
INSTALL_HINT = "install the deploy extra: pip install 'modelambda[deploy]'"


@dataclass(frozen=True)
class ArtifactLocations:
    """Where deploy put (or will put) the artifacts."""

    bucket: str  # "": the template's ArtifactBucket parameter (or [deploy] artifact_bucket)
    # artifact name ("function.zip", "layer-1-dependencies.zip", "model.tar.gz") -> S3 key
    keys: dict[str, str] = field(default_factory=dict)
    image_uri: str | None = None  # registry/repo@sha256:... (image strategy), once pushed


def default_artifact_bucket(account_id: str, region: str) -> str:
    """The artifact bucket when ``[deploy] artifact_bucket`` names none (bucket names are
    global: the account makes it ours)."""
    return f"modelambda-artifacts-{account_id}-{region}"


def region_for(spec: ServiceSpec, given: str | None = None) -> str:
    """The region to deploy to: given, ``[deploy] region``, the shell's (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``), else us-east-1."""
    return (given or spec.deploy.region or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def content_key(spec: ServiceSpec, artifact_name: str, sha256: str) -> str:
    """``<service>/<sha256>.zip`` (``.tar.gz`` for a tarball): the key names the content."""
    suffix = ".tar.gz" if artifact_name.endswith(".tar.gz") else PurePosixPath(
        artifact_name).suffix
    return f"{spec.service.name}/{sha256}{suffix}"


def served(spec: ServiceSpec, build: BuildResult) -> ServiceSpec:
    """The spec as the build's strategy serves it (a build may be for another strategy)."""
    return spec.for_strategy(build.strategy.name)


def uploads(spec: ServiceSpec, build: BuildResult) -> list[Artifact]:
    """The files deploy uploads to the artifact bucket, in order (each ``.path``, named by
    ``.name``, with ``.sha256``); an image is pushed instead."""
    spec = served(spec, build)
    return spec.strategy.unit.deploy_uploads(spec, build)


def locations_for(spec: ServiceSpec, build: BuildResult, bucket: str,
                  image_uri: str | None = None) -> ArtifactLocations:
    spec = served(spec, build)
    keys = {a.name: content_key(spec, a.name, a.sha256) for a in uploads(spec, build)}
    return ArtifactLocations(bucket, keys, image_uri)


def check_deployable(spec: ServiceSpec) -> None:
    """SpecError listing what a deploy needs that a local run does not (e.g. a v2
    endpoint's URL)."""
    problems = Problems()
    spec.strategy.unit.deploy_check(spec, problems)
    if problems.items:
        raise SpecError(spec.file, problems.items)


def sam_template(spec: ServiceSpec, build: BuildResult,
                 where: ArtifactLocations | None = None) -> dict[str, Any]:
    """The SAM template for the build's strategy, with the artifacts where deploy put them.

    Without ``where`` the template stands open: the artifact bucket is ``[deploy]
    artifact_bucket`` or the ``ArtifactBucket`` parameter, an image the ``ImageUri``
    parameter. With ``where`` and no ``image_uri``, the image strategy's template holds its
    repository and no function (role, logs, alias, URL): deploy creates the repository with
    it, pushes, then deploys again with the image's URI."""
    spec = served(spec, build)
    check_deployable(spec)
    if where is None:
        keys = {a.name: content_key(spec, a.name, a.sha256) for a in uploads(spec, build)}
        template = TemplateBuilder(spec, build, keys)
    else:
        template = TemplateBuilder(spec, build, dict(where.keys), bucket=where.bucket or None,
                                   image_uri=where.image_uri, located=True)
    spec.strategy.unit.deploy_resources(spec, template)
    return template.to_dict()


# --- offline translation and lint ----------------------------------------------------------


def cloudformation(sam: dict[str, Any], region: str) -> dict[str, Any]:
    """The SAM template translated to plain CloudFormation by aws-sam-translator, offline:
    managed policy names come from its bundled map, the region is given (no AWS call).
    SAM resolves the region into code locations, so the result is for that region."""
    try:
        import boto3
        from samtranslator.internal.managed_policies import (  # type: ignore[import-untyped]
            get_bundled_managed_policy_map,
        )
        from samtranslator.model.exceptions import (  # type: ignore[import-untyped]
            InvalidDocumentException,
        )
        from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
        from samtranslator.translator.arn_generator import (  # type: ignore[import-untyped]
            ArnGenerator,
        )
        from samtranslator.translator.translator import (  # type: ignore[import-untyped]
            Translator,
        )
    except ImportError as exc:
        raise UsageError(f"translating to CloudFormation needs aws-sam-translator ({exc}); "
                         f"{INSTALL_HINT}") from exc
    session = boto3.session.Session(region_name=region)  # a region only: no credentials read
    policies = get_bundled_managed_policy_map(ArnGenerator.get_partition_name(region)) or {}
    translator = Translator(managed_policy_map=policies, sam_parser=Parser(),
                            boto_session=session)
    try:
        translated: dict[str, Any] = translator.translate(copy.deepcopy(sam), parameter_values={})
    except InvalidDocumentException as exc:
        causes = "; ".join(str(getattr(c, "message", c)) for c in exc.causes)
        raise ModelambdaError(f"aws-sam-translator refused the template: {causes}") from exc
    finally:
        translator.metrics.publish()  # to its dummy publisher: nothing leaves this machine
    return translated


def lint(template: dict[str, Any], region: str) -> list[str]:
    """cfn-lint's errors (not warnings) for a SAM or CloudFormation template, one line each:
    ``RULE: message (at Resources/...)``."""
    try:
        from cfnlint.api import lint as cfn_lint  # type: ignore[import-untyped]
    except ImportError as exc:
        raise UsageError(f"linting needs cfn-lint ({exc}): pip install cfn-lint") from exc
    matches = cfn_lint(json.dumps(template), regions=[region])
    lines = []
    for match in matches:
        if getattr(match.rule, "severity", "error") != "error":
            continue
        path = "/".join(str(p) for p in getattr(match, "path", None) or ())
        lines.append(f"{match.rule.id}: {match.message}" + (f" (at {path})" if path else ""))
    return lines


def render(template: dict[str, Any]) -> str:
    """The template as JSON (which CloudFormation and SAM read like YAML)."""
    return json.dumps(template, indent=2) + "\n"


__all__ = ["FORMATS", "ArtifactLocations", "check_deployable", "cloudformation",
           "content_key", "default_artifact_bucket", "lint", "locations_for",
           "region_for", "render", "sam_template", "served", "uploads"]
