"""The deploy plan: typed step records, made before anything changes.

    plan = plan_deploy(spec, build, clients, options)   # read-only calls only
    DisplayExecutor(out).run(plan)                      # --dry-run: print it
    Executor(clients, ...).run(plan)                    # do it

As chalice's ``deploy/planner.py``: the planner looks at what exists (Describe/Get/List/Head
calls: the stack's status, the artifact bucket, which artifacts are already uploaded, the
deployed template) and emits frozen step records; an executor runs them, and a display-only
executor prints them, which is ``--dry-run``. A value known only while running (the image's
digest, the change set) is a ``Variable`` the executor fills in.

The order, and why:

1. a stack left in ``ROLLBACK_COMPLETE`` by a failed first create cannot be updated
   (aws-sam-cli #1865, #2191, #4230): it is deleted first, and the plan says so;
2. the artifact bucket, then the artifacts under content-hash keys (``template.content_key``),
   each skipped when a HEAD finds it (an unchanged artifact is never uploaded twice); the
   image is pushed (``package.oci``) and its digest goes into the template;
3. the model, for ``s3``: the template creates the model bucket, so the model is published
   *after* the stack: creating the bucket up front would make CloudFormation's create of the
   same bucket fail ("already exists"), and a bucket outside the stack would lose its policy
   and the function's grant to it. Until the first publish the new function answers with a
   model-load error; the deploy is not reported done before the alias points at a version.
   On an update the bucket and its alias already exist, so functions keep serving the old
   version until the alias moves. When the template does not create the bucket (it names
   one that exists), the model is published first. For ``efs`` the file system is reachable
   only inside its VPC: the plan says how to publish from a machine that mounts it;
4. the translated template is checked (SnapStart's constraints: no EFS, no ``/tmp`` above
   512 MB, no provisioned concurrency, Python 3.12+) before anything is uploaded;
5. a change set (CREATE when the stack is absent or ``REVIEW_IN_PROGRESS``, else UPDATE), its
   changes shown; "no changes" is a success; execution after confirmation; the events
   followed until the stack settles; the outputs printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelambda import limits
from modelambda.errors import UsageError
from modelambda.package.artifacts import BuildResult
from modelambda.spec import ServiceSpec

# CloudFormation takes at most 51,200 bytes of TemplateBody; a bigger template goes by URL.
TEMPLATE_BODY_MAX = 51200
# Whatever stands for the image's digest until the push has made it.
PENDING_DIGEST = "sha256:" + "0" * 64


class PlanError(UsageError):
    """The deploy cannot be planned as asked (checked before anything is uploaded)."""


@dataclass(frozen=True)
class Variable:
    """A value the executor knows only while running (the pushed image's URI...)."""

    name: str


# --- the steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing the executor does. ``describe`` is what a dry run prints."""

    def describe(self) -> str:
        raise NotImplementedError

    @property
    def changes_aws(self) -> bool:
        """Whether running it changes anything in AWS (a dry run runs none of them)."""
        return True


@dataclass(frozen=True)
class DeleteFailedStack(Step):
    stack: str
    stack_id: str
    status: str

    def describe(self) -> str:
        return (f"delete stack {self.stack}: it is {self.status} after a failed first create, "
                "which CloudFormation cannot update; it holds no working resources")


@dataclass(frozen=True)
class EnsureBucket(Step):
    bucket: str
    region: str
    exists: bool
    purpose: str = "artifact bucket"

    def describe(self) -> str:
        return (f"{self.purpose} s3://{self.bucket}: exists" if self.exists else
                f"create the {self.purpose} s3://{self.bucket} in {self.region}")

    @property
    def changes_aws(self) -> bool:
        return not self.exists


@dataclass(frozen=True)
class Upload(Step):
    name: str
    path: Path
    bucket: str
    key: str
    size: int
    exists: bool

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.key}"
        return (f"{self.name}: already uploaded ({where})" if self.exists else
                f"upload {self.name} ({self.size:,} bytes) to {where}")

    @property
    def changes_aws(self) -> bool:
        return not self.exists


@dataclass(frozen=True)
class EnsureRepository(Step):
    name: str
    exists: bool

    def describe(self) -> str:
        return (f"ECR repository {self.name}: exists" if self.exists else
                f"create the ECR repository {self.name}")

    @property
    def changes_aws(self) -> bool:
        return not self.exists


@dataclass(frozen=True)
class PushImage(Step):
    build: BuildResult = field(compare=False, repr=False)
    base: str
    target: str  # registry/repo:tag
    architecture: str
    ecr: bool  # authenticate with ECR's token (else the registry is open, e.g. a local one)
    output: Variable = Variable("image_uri")

    def describe(self) -> str:
        return (f"push the image to {self.target} (on {self.base}, {self.architecture}); "
                "its digest goes into the template")


@dataclass(frozen=True)
class PublishModel(Step):
    spec: ServiceSpec = field(compare=False, repr=False)
    bucket: str
    prefix: str
    model: str
    version: str
    alias: str
    after_stack: bool

    @property
    def store(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def describe(self) -> str:
        when = "after the stack (which creates the bucket)" if self.after_stack else \
            "before the stack (the bucket exists)"
        return (f"publish model {self.model} version {self.version} to {self.store} and point "
                f"{self.alias!r} at it, {when}; an existing version is not uploaded again")


@dataclass(frozen=True)
class PublishElsewhere(Step):
    """A model store this machine cannot write (EFS): how to publish, printed, not done."""

    instructions: str

    def describe(self) -> str:
        return self.instructions

    @property
    def changes_aws(self) -> bool:
        return False


@dataclass(frozen=True)
class CreateChangeSet(Step):
    stack: str
    name: str
    kind: str  # CREATE | UPDATE
    template: dict[str, Any] = field(compare=False, repr=False)
    capabilities: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    template_bucket: str  # where a template too big for TemplateBody goes
    template_key: str
    record: Path  # the template as sent is written here
    image_uri: Variable | None = None  # replaces PENDING image URIs in the template
    preview: tuple[Any, ...] = ()  # stack.Change records from the deployed template (dry run)
    output: Variable = Variable("change_set")

    def describe(self) -> str:
        lines = [f"create a change set {self.name} ({self.kind}) for stack {self.stack}; the "
                 f"template sent is recorded in {self.record}"]
        against = "against the deployed template" if self.kind == "UPDATE" else \
            "a new stack"
        if self.preview:
            lines.append(f"  what it would change ({against}):")
            lines.extend(f"  {change.line()}" for change in self.preview)
        else:
            lines.append(f"  no change to the resources ({against})")
        if self.image_uri is not None:
            lines.append("  (the image's digest goes in once it is pushed)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Confirm(Step):
    yes: bool
    change_set: Variable = Variable("change_set")

    def describe(self) -> str:
        return ("execute it (--yes)" if self.yes else
                "show its changes and ask before executing it")

    @property
    def changes_aws(self) -> bool:
        return False


@dataclass(frozen=True)
class ExecuteChangeSet(Step):
    stack: str
    change_set: Variable = Variable("change_set")

    def describe(self) -> str:
        return (f"execute the change set and follow stack {self.stack}'s events until it "
                "settles (a failed first create is deleted, so the next deploy is not blocked)")


@dataclass(frozen=True)
class ShowOutputs(Step):
    stack: str
    record: Path

    def describe(self) -> str:
        return f"print the stack's outputs (and record them in {self.record})"

    @property
    def changes_aws(self) -> bool:
        return False


@dataclass
class Plan:
    stack: str
    region: str
    strategy: str
    steps: list[Step]
    record_dir: Path
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"plan: deploy {self.strategy} as stack {self.stack} in {self.region}"]
        for number, step in enumerate(self.steps, 1):
            text = step.describe()
            first, *rest = text.splitlines() or [""]
            out.append(f"{number:>3}. {first}")
            out.extend(f"     {line}" for line in rest)
        out.extend(f"note: {note}" for note in self.notes)
        return out


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployOptions:
    stack_name: str
    region: str
    registry: str | None = None  # push the image here instead of ECR (a local registry)
    base_image: str | None = None  # default: AWS's Lambda Python base image
    yes: bool = False
    change_set_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    alias: str = "live"
    artifact_bucket: str | None = None


def record_dir(spec: ServiceSpec, stack: str) -> Path:
    """Where a deploy records what it sent: ``DIR/.modelambda/deploy/<stack>/``."""
    return spec.root / ".modelambda" / "deploy" / stack


def change_set_name(now: float | None = None) -> str:
    return "modelambda-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))


# --- checks on the template that is sent ----------------------------------------------------


def _ref_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
    return None


def preflight(template: dict[str, Any]) -> list[str]:
    """What Lambda would refuse in this CloudFormation template, found before anything is
    uploaded: SnapStart with EFS, with ``/tmp`` above 512 MB, with provisioned concurrency or
    on a runtime before Python 3.12; more than 5 layers."""
    resources: dict[str, Any] = template.get("Resources") or {}
    problems: list[str] = []
    snapstart = {name for name, body in resources.items()
                 if body.get("Type") == "AWS::Lambda::Function"
                 and (body.get("Properties") or {}).get("SnapStart", {}).get("ApplyOn")
                 == "PublishedVersions"}
    for name, body in resources.items():
        props = body.get("Properties") or {}
        kind = body.get("Type")
        if kind == "AWS::Lambda::Function":
            layers = props.get("Layers") or []
            if len(layers) > limits.LAYERS_MAX:
                problems.append(f"{name}: {len(layers)} layers; Lambda takes at most "
                                f"{limits.LAYERS_MAX}")
        if name not in snapstart:
            continue
        runtime = props.get("Runtime")
        if runtime is not None and runtime not in limits.SNAPSTART_RUNTIMES:
            problems.append(f"{name}: SnapStart needs one of "
                            f"{', '.join(limits.SNAPSTART_RUNTIMES)}, not {runtime}")
        if props.get("FileSystemConfigs"):
            problems.append(f"{name}: Lambda has no SnapStart with EFS (FileSystemConfigs)")
        size = (props.get("EphemeralStorage") or {}).get("Size", limits.EPHEMERAL_MB_MIN)
        if isinstance(size, int) and size > limits.SNAPSTART_EPHEMERAL_MB_MAX:
            problems.append(f"{name}: Lambda has no SnapStart with /tmp ({size} MB) above "
                            f"{limits.SNAPSTART_EPHEMERAL_MB_MAX} MB")
    for name, body in resources.items():
        props = body.get("Properties") or {}
        if body.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version") and \
                props.get("ProvisionedConcurrencyConfig") and \
                _ref_name(props.get("FunctionName")) in snapstart:
            problems.append(f"{name}: Lambda has no SnapStart with provisioned concurrency "
                            f"(ProvisionedConcurrencyConfig on "
                            f"{_ref_name(props.get('FunctionName'))})")
    return problems


def capabilities(template: dict[str, Any]) -> tuple[str, ...]:
    resources = (template.get("Resources") or {}).values()
    iam = [body for body in resources if str(body.get("Type", "")).startswith("AWS::IAM::")]
    if not iam:
        return ()
    named = any(key in (body.get("Properties") or {}) for body in iam
                for key in ("RoleName", "UserName", "GroupName", "ManagedPolicyName"))
    return ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM") if named else ("CAPABILITY_IAM",)


def template_text(template: dict[str, Any]) -> str:
    """The template as sent: canonical JSON, so that an unchanged deploy sends the same
    bytes (and CloudFormation finds no changes)."""
    return json.dumps(template, indent=1, sort_keys=True)


def diff_templates(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Any]:
    """Add/Modify/Remove by logical id, from two templates (what a dry run can say without
    creating a change set)."""
    from modelambda.deploy.stack import Change

    before = (old or {}).get("Resources") or {}
    after = new.get("Resources") or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(Change("Add", name, str(after[name].get("Type", "?"))))
        elif name not in after:
            changes.append(Change("Remove", name, str(before[name].get("Type", "?"))))
        elif json.dumps(before[name], sort_keys=True) != json.dumps(after[name], sort_keys=True):
            changes.append(Change("Modify", name, str(after[name].get("Type", "?"))))
    return changes


# --- the planner ----------------------------------------------------------------------------


@dataclass
class Templates:
    """The template functions (``deploy.template``), injectable for tests."""

    content_key: Callable[..., str]
    locations_for: Callable[..., Any]
    sam_template: Callable[..., dict[str, Any]]
    cloudformation: Callable[[dict[str, Any], str], dict[str, Any]]
    default_bucket: Callable[[str, str], str]  # (account, region) -> the artifact bucket

    @classmethod
    def default(cls) -> Templates:
        from modelambda.deploy import template

        return cls(template.content_key, template.locations_for, template.sam_template,
                   template.cloudformation, template.default_artifact_bucket)


def _head(call: Callable[[], Any]) -> bool:
    """Whether a HEAD finds the thing (404/NoSuch... is False; other errors are raised)."""
    try:
        call()
        return True
    except Exception as exc:
        from modelambda.deploy.stack import error_code

        if error_code(exc) in ("404", "NoSuchKey", "NoSuchBucket", "NotFound",
                               "RepositoryNotFoundException"):
            return False
        raise


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    return _head(lambda: s3.head_object(Bucket=bucket, Key=key))


def _repository_in(template: dict[str, Any]) -> str | None:
    """The ``RepositoryName`` of the template's ECR repository (a plain string), if any."""
    for body in (template.get("Resources") or {}).values():
        if body.get("Type") == "AWS::ECR::Repository":
            name = (body.get("Properties") or {}).get("RepositoryName")
            if isinstance(name, str):
                return name
    return None


@dataclass
class _ImagePlan:
    push: PushImage
    placeholder: str  # the image URI in the template until the push has made the digest
    first: dict[str, Any] | None = None  # a template that creates the repository only
    ensure: EnsureRepository | None = None  # the repository made by the API (not the stack)


def _image_plan(spec: ServiceSpec, build: BuildResult, clients: Any, options: DeployOptions,
                templates: Templates, bucket: str) -> _ImagePlan:
    """How the image gets pushed. ECR: to the template's repository; when it does not exist
    yet, the stack is first deployed with the repository and no function (the function
    cannot be created before its image exists), then the image is pushed, then the stack
    is updated with the function. ``--registry``: to that registry, in one change set."""
    from modelambda.strategies.image import base_image, repository_name

    without = templates.sam_template(spec, build, templates.locations_for(spec, build, bucket))
    repo = str(_repository_in(without) or spec.strategy.settings.get("repository")
               or repository_name(spec))
    tag = build.function.sha256[:16] or "latest"
    base = options.base_image or base_image(spec.service.runtime, spec.service.architecture)
    if options.registry:
        host = options.registry.split("://", 1)[-1].rstrip("/")
        target = f"{host}/{repo}"
        push = PushImage(build, base, f"{target}:{tag}", spec.service.architecture, False)
        return _ImagePlan(push, f"{target}@{PENDING_DIGEST}")
    ecr = clients.client("ecr")
    exists = _head(lambda: ecr.describe_repositories(repositoryNames=[repo]))
    target = f"{clients.account_id()}.dkr.ecr.{clients.region}.amazonaws.com/{repo}"
    push = PushImage(build, base, f"{target}:{tag}", spec.service.architecture, True)
    plan = _ImagePlan(push, f"{target}@{PENDING_DIGEST}")
    if not exists and _repository_in(without):
        plan.first = templates.cloudformation(without, clients.region)
    elif not exists:
        plan.ensure = EnsureRepository(repo, False)
    return plan


def _model_steps(spec: ServiceSpec, template: dict[str, Any], clients: Any,
                 options: DeployOptions) -> tuple[list[Step], list[Step]]:
    """(before the stack, after it): publishing the model to the store the function reads."""
    kind = spec.strategy.kind
    settings = spec.strategy.settings
    if kind == "efs":
        mount = settings.get("mount_path", "/mnt/models")
        return [PublishElsewhere(
            "the model is not published from here: an EFS file system is reachable only "
            "inside its VPC. On a machine that mounts it (an EC2 instance or a container in "
            f"the VPC, with the access point's path mounted at e.g. {mount}), run "
            f"`modelambda models publish DIR --store {mount} --alias {settings.get('alias')}`; "
            "`modelambda models promote DIR VERSION --store ...` there moves the alias "
            "later. Until then the function answers with a model-load error.")], []
    if kind != "s3":
        return [], []
    from modelambda.spec import model_files, version_of

    bucket = str(settings["bucket"])
    version = spec.model.version or version_of(model_files(spec.model_path))
    owned = any(body.get("Type") == "AWS::S3::Bucket"
                and (body.get("Properties") or {}).get("BucketName") == bucket
                for body in (template.get("Resources") or {}).values())
    step = PublishModel(spec, bucket, str(settings.get("prefix") or ""), spec.model.name,
                        version, str(settings.get("alias") or "live"), after_stack=owned)
    if owned:
        return [], [step]
    s3 = clients.client("s3")
    if not _head(lambda: s3.head_bucket(Bucket=bucket)):
        raise PlanError(f"the model bucket {bucket!r} ([strategy] bucket) does not exist and "
                        "the template does not create it: create it (`aws s3 mb "
                        f"s3://{bucket}`) or name another")
    return [step], []


def _creates(template: dict[str, Any] | None, kind: str, key: str, name: str) -> bool:
    """Whether ``template`` has a resource of ``kind`` whose ``key`` property is ``name``."""
    return any(body.get("Type") == kind and (body.get("Properties") or {}).get(key) == name
               for body in ((template or {}).get("Resources") or {}).values())


def _adopt(spec: ServiceSpec, clients: Any, deployed: dict[str, Any] | None,
           notes: list[str]) -> ServiceSpec:
    """The spec to render the template from, given what exists outside the stack.

    The model bucket (``s3``) and the image repository (``image``) are created by the stack
    and kept when it is deleted (they hold the model versions and the images). A deploy after
    a delete would have CloudFormation create them again and fail ("already exists"): one
    that exists and that the deployed stack does not own is used as it is instead, and the
    plan says so. A bucket name another account owns is refused here, before any upload."""
    from dataclasses import replace

    settings = dict(spec.strategy.settings)
    if spec.strategy.kind == "s3" and settings.get("create_bucket", False):
        bucket = str(settings["bucket"])
        if _creates(deployed, "AWS::S3::Bucket", "BucketName", bucket):
            return spec
        s3 = clients.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            from modelambda.deploy.stack import error_code

            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return spec
            if code in ("403", "AccessDenied", "Forbidden"):
                raise PlanError(f"the model bucket name {bucket!r} ([strategy] bucket) is taken "
                                "by another AWS account (bucket names are global): choose "
                                "another") from exc
            raise
        settings["create_bucket"] = False
        notes.append(f"the model bucket s3://{bucket} exists outside the stack (kept by an "
                     "earlier delete, or made by hand): the stack uses it as it is "
                     "([strategy] create_bucket = false does this explicitly)")
    elif spec.strategy.kind == "image" and settings.get("repository", "") is None:
        from modelambda.strategies import image

        repository = image.repository_name(spec)
        if _creates(deployed, "AWS::ECR::Repository", "RepositoryName", repository):
            return spec
        ecr = clients.client("ecr")
        if not _head(lambda: ecr.describe_repositories(repositoryNames=[repository])):
            return spec
        settings["repository"] = repository
        notes.append(f"the ECR repository {repository} exists outside the stack (kept by an "
                     "earlier delete, or made by hand): the image is pushed to it and the "
                     f"stack does not create it ([strategy] repository = \"{repository}\" "
                     "does this explicitly)")
    else:
        return spec
    return replace(spec, strategy=replace(spec.strategy, settings=settings))


def _stack_steps(options: DeployOptions, templates: Templates, spec: ServiceSpec,
                 template: dict[str, Any], kind: str, deployed: dict[str, Any] | None,
                 bucket: str, record: Path, suffix: str = "",
                 image_uri: Variable | None = None) -> list[Step]:
    """A change set for ``template``, its confirmation and its execution."""
    text = template_text(template)
    made = Variable(f"change_set{suffix}")
    name = (options.change_set_name or change_set_name()) + suffix
    return [
        CreateChangeSet(options.stack_name, name, kind, template, capabilities(template),
                        tuple(sorted(options.tags.items())), bucket,
                        templates.content_key(spec, "template.json", _sha256(text)), record,
                        image_uri, tuple(diff_templates(deployed, template)), made),
        Confirm(options.yes, made),
        ExecuteChangeSet(options.stack_name, made),
    ]


def _check_stack(info: Any, steps: list[Step]) -> Any:
    """The stack as a deploy finds it; a failed first create is to be deleted first."""
    from modelambda.deploy import stack as stacks

    if info is None:
        return None
    if info.status in stacks.DEAD_ON_ARRIVAL:
        steps.append(DeleteFailedStack(info.name, info.stack_id, info.status))
        return None
    if info.status.endswith("_IN_PROGRESS") and info.status != "REVIEW_IN_PROGRESS":
        raise PlanError(f"stack {info.name} is {info.status}: another deploy or delete is "
                        "running; wait until it settles and deploy again")
    if info.status in ("DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"):
        reason = f" ({info.reason})" if info.reason else ""
        raise PlanError(f"stack {info.name} is {info.status}{reason}: fix the resource it "
                        "names (CloudFormation console) or run `modelambda delete`, then "
                        "deploy again")
    return info


def plan_deploy(spec: ServiceSpec, build: BuildResult, clients: Any, options: DeployOptions,
                templates: Templates | None = None) -> Plan:
    """The steps of a deploy of ``build``. Only read calls are made (Describe, Get, List,
    Head): a dry run prints this plan and stops."""
    from modelambda.deploy import stack as stacks

    templates = templates or Templates.default()
    cfn = clients.client("cloudformation")
    s3 = clients.client("s3")
    steps: list[Step] = []
    notes: list[str] = []
    info = _check_stack(stacks.describe(cfn, options.stack_name), steps)
    kind = stacks.change_set_kind(info)
    deployed = _deployed_template(cfn, info.stack_id) if kind == "UPDATE" else None
    spec = _adopt(spec, clients, deployed, notes)
    bucket = options.artifact_bucket or templates.default_bucket(clients.account_id(),
                                                                 clients.region)
    image = _image_plan(spec, build, clients, options, templates, bucket) \
        if spec.strategy.kind == "image" else None
    where = templates.locations_for(spec, build, bucket,
                                    image_uri=image.placeholder if image else None)
    template = templates.cloudformation(templates.sam_template(spec, build, where),
                                        clients.region)
    problems = preflight(template)
    if problems:
        raise PlanError("the template would be refused by Lambda, nothing uploaded: "
                        + "; ".join(problems))
    before, after = _model_steps(spec, template, clients, options)

    bucket_exists = _head(lambda: s3.head_bucket(Bucket=bucket))
    steps.append(EnsureBucket(bucket, clients.region, bucket_exists))
    for name, key in sorted(where.keys.items()):
        path = _artifact_path(spec, build, name)
        exists = bucket_exists and _object_exists(s3, bucket, key)
        steps.append(Upload(name, path, bucket, key, path.stat().st_size, exists))
    directory = record_dir(spec, options.stack_name)
    if image is not None:
        if image.first is not None:
            steps.extend(_stack_steps(options, templates, spec, image.first, kind, deployed,
                                      bucket, directory / "template-repository.json",
                                      "-repository"))
            kind, deployed = "UPDATE", image.first
        if image.ensure is not None:
            steps.append(image.ensure)
        steps.append(image.push)
    steps.extend(before)
    steps.extend(_stack_steps(options, templates, spec, template, kind, deployed, bucket,
                              directory / "template.json",
                              image_uri=image.push.output if image else None))
    steps.extend(after)
    steps.append(ShowOutputs(options.stack_name, directory / "outputs.json"))
    if clients.is_local:
        notes.append(f"every client reaches {clients.endpoint_url}")
    return Plan(options.stack_name, clients.region, spec.strategy.kind, steps, directory, notes)


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _artifact_path(spec: ServiceSpec, build: BuildResult, name: str) -> Path:
    """The local file of an artifact the template names (a zip, or SageMaker's tarball)."""
    for artifact in build.artifacts:
        if artifact.name == name:
            return artifact.path
    path = build.out / name
    if name == "model.tar.gz" and not path.is_file():
        from modelambda.package.sagemaker import model_tarball

        model_tarball(spec, path)
    if not path.is_file():
        raise PlanError(f"the template names an artifact {name!r} that the build did not make "
                        f"(in {build.out})")
    return path


def _deployed_template(cfn: Any, stack_id: str) -> dict[str, Any] | None:
    try:
        body = cfn.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
    except Exception as exc:
        from modelambda.deploy.stack import error_code

        if error_code(exc) == "ValidationError":
            return None
        raise
    if isinstance(body, dict):
        return body
    try:
        loaded: dict[str, Any] = json.loads(body)
        return loaded
    except ValueError:
        return None  # YAML: a template not made by modelambda


__all__ = ["PENDING_DIGEST", "TEMPLATE_BODY_MAX", "Confirm", "CreateChangeSet",
           "DeleteFailedStack", "DeployOptions", "EnsureBucket", "EnsureRepository",
           "ExecuteChangeSet", "Plan", "PlanError", "PublishElsewhere", "PublishModel",
           "PushImage", "ShowOutputs", "Step", "Templates", "Upload",
           "Variable", "capabilities", "change_set_name",
           "diff_templates", "plan_deploy", "preflight", "record_dir", "template_text"]
