"""Run a deploy plan (``Executor``), or only print it (``DisplayExecutor``: ``--dry-run``).

Each step record of ``deploy.plan`` has one method here, ``_<StepName>``. Progress goes to
``log`` (stderr in the CLI), results (the outputs) to ``out`` (stdout). A step that fails on
an AWS error is reported as one line naming the step, through ``awserrors.explain``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelambda.deploy import plan as p
from modelambda.deploy import stack as stacks
from modelambda.errors import AwsError, ModelambdaError

Log = Callable[[str], None]
Confirmer = Callable[[str], bool]


class Declined(ModelambdaError):
    """The change set was not executed: the user said no."""


@dataclass
class DeployResult:
    stack: str
    status: str  # the stack's final status; "" for a dry run
    no_changes: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    image_uri: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per step kind
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _no(_question: str) -> bool:
    return False


class DisplayExecutor:
    """Prints the plan: what a deploy would do. It runs nothing."""

    def __init__(self, out: Log) -> None:
        self.out = out

    def run(self, plan: p.Plan) -> DeployResult:
        for line in plan.lines():
            self.out(line)
        changing = sum(step.changes_aws for step in plan.steps)
        self.out(f"dry run: nothing was changed ({changing} step(s) would change AWS)")
        return DeployResult(plan.stack, "")


class Executor:
    """Runs the steps against ``clients`` (``deploy.aws.AwsClients``)."""

    def __init__(self, clients: Any, *, log: Log, out: Log, confirm: Confirmer = _no) -> None:
        self.clients = clients
        self.log = log
        self.out = out
        self.confirm = confirm
        self.values: dict[str, Any] = {}
        self.result: DeployResult | None = None
        self.template: dict[str, Any] = {}
        self.template_sent = ""

    def run(self, plan: p.Plan) -> DeployResult:
        self.result = DeployResult(plan.stack, "")
        self.plan = plan
        started = time.monotonic()
        for step in plan.steps:
            if self._skipped(step):
                continue
            name = type(step).__name__
            began = time.monotonic()
            try:
                getattr(self, f"_{name}")(step)
            except ModelambdaError:
                raise
            except Exception as exc:
                from modelambda.awserrors import explain

                line = explain(exc)
                if line is None:
                    raise
                raise AwsError(f"{step.describe().splitlines()[0]}: {line}") from exc
            self.result.seconds[name] = round(
                self.result.seconds.get(name, 0.0) + time.monotonic() - began, 3)
        self.result.seconds["total"] = round(time.monotonic() - started, 3)
        self._record(plan)
        return self.result

    def _skipped(self, step: p.Step) -> bool:
        """After "no changes" there is nothing to confirm or execute."""
        if isinstance(step, p.Confirm | p.ExecuteChangeSet):
            change_set: stacks.ChangeSet = self._value(step.change_set)
            return change_set.empty
        return False

    def _value(self, value: Any) -> Any:
        return self.values[value.name] if isinstance(value, p.Variable) else value

    # --- steps -------------------------------------------------------------------------

    def _DeleteFailedStack(self, step: p.DeleteFailedStack) -> None:
        cfn = self.clients.client("cloudformation")
        info = stacks.StackInfo(step.stack, step.stack_id, step.status)
        self.log(f"deleting stack {step.stack}: it is {step.status} after a failed first "
                 "create, which CloudFormation cannot update")
        failures = stacks.delete(cfn, info, log=self.log, sleep=self.clients.sleep,
                                 clock=self.clients.clock)
        if failures:
            raise stacks.StackError(f"could not delete the failed stack {step.stack}: "
                                    + "; ".join(f.line() for f in failures), failures)

    def _EnsureBucket(self, step: p.EnsureBucket) -> None:
        if step.exists:
            return
        s3 = self.clients.client("s3")
        params: dict[str, Any] = {"Bucket": step.bucket}
        if step.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": step.region}
        self.log(f"creating the {step.purpose} s3://{step.bucket}")
        try:
            s3.create_bucket(**params)
        except Exception as exc:
            if stacks.error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
        s3.put_public_access_block(Bucket=step.bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})

    def _Upload(self, step: p.Upload) -> None:
        assert self.result is not None
        if step.exists:
            self.log(f"{step.name}: already uploaded (s3://{step.bucket}/{step.key})")
            self.result.skipped.append(step.name)
            return
        self.log(f"uploading {step.name} ({step.size:,} bytes) to s3://{step.bucket}/{step.key}")
        self.clients.client("s3").upload_file(str(step.path), step.bucket, step.key)
        self.result.uploaded.append(step.name)

    def _EnsureRepository(self, step: p.EnsureRepository) -> None:
        if step.exists:
            return
        self.log(f"creating the ECR repository {step.name}")
        self.clients.client("ecr").create_repository(
            repositoryName=step.name, imageScanningConfiguration={"scanOnPush": False},
            imageTagMutability="MUTABLE")

    def _PushImage(self, step: p.PushImage) -> None:
        from modelambda.package import oci

        assert self.result is not None
        auth = oci.ecr_auth(self.clients.client("ecr")) if step.ecr else None
        self.log(f"pushing the image to {step.target}")
        pushed = oci.build_and_push(step.build, base=step.base, target=step.target,
                                    architecture=step.architecture, auth=auth,
                                    log=lambda line: self.log(f"  {line}"))
        self.values[step.output.name] = pushed.image_uri_by_digest
        self.result.image_uri = pushed.image_uri_by_digest

    def _PublishModel(self, step: p.PublishModel) -> None:
        """Publish the spec's model (idempotent: the same files are the same version) and
        point the alias at it when the alias is new or the version is. An alias that
        ``models promote`` moved to another version stays where it is: a redeploy (of a
        memory size, say) does not roll the model back."""
        from modelambda import modelstore

        store = modelstore.S3Store(step.bucket, step.prefix, self.clients.client("s3"))
        known = modelstore.manifest(store, step.model, step.version) is not None
        record = store.alias_record(step.model, step.alias)
        if not known:
            self.log(f"publishing model {step.model} version {step.version} to "
                     f"{store.describe()}")
            modelstore.publish_service(step.spec, store, version=step.version, exist_ok=True)
        current = (record or {}).get("version")
        if record is None or not known:
            modelstore.promote(store, step.model, step.version, step.alias)
            self.log(f"model {step.model}: {step.alias!r} -> {step.version} in {step.store}")
        elif current != step.version:
            self.log(f"model {step.model}: {step.alias!r} stays at {current} (moved there by "
                     f"`models promote`); the spec's model is version {step.version}, "
                     f"already published: `modelambda models promote DIR {step.version} "
                     f"--alias {step.alias}` points it back")
        else:
            self.log(f"model {step.model}: {step.alias!r} is {step.version} in {step.store}")

    def _PublishElsewhere(self, step: p.PublishElsewhere) -> None:
        self.log(f"note: {step.instructions}")

    def _template_text(self, step: p.CreateChangeSet) -> str:
        text = p.template_text(step.template)
        if step.image_uri is not None:
            uri = str(self._value(step.image_uri))
            text = text.replace(p.PENDING_DIGEST, uri.rsplit("@", 1)[1])
        return text

    def _CreateChangeSet(self, step: p.CreateChangeSet) -> None:
        cfn = self.clients.client("cloudformation")
        text = self._template_text(step)
        self.template_sent = text
        self.template = json.loads(text)
        step.record.parent.mkdir(parents=True, exist_ok=True)
        step.record.write_text(text + "\n")  # as sent (with the image's digest)
        url = None
        if len(text.encode()) > p.TEMPLATE_BODY_MAX:
            self.clients.client("s3").put_object(Bucket=step.template_bucket,
                                                 Key=step.template_key, Body=text.encode())
            url = template_url(self.clients, step.template_bucket, step.template_key)
        self.log(f"creating change set {step.name} ({step.kind}) for stack {step.stack}")
        change_set = stacks.create_change_set(
            cfn, step.stack, step.name, step.kind, template_body=None if url else text,
            template_url=url, capabilities=step.capabilities, tags=dict(step.tags),
            description="modelambda deploy")
        change_set = stacks.wait_change_set(cfn, change_set, sleep=self.clients.sleep,
                                            clock=self.clients.clock)
        self.values[step.output.name] = change_set
        assert self.result is not None
        made = [v for v in self.values.values() if isinstance(v, stacks.ChangeSet)]
        self.result.no_changes = all(c.empty for c in made)
        if change_set.empty:
            cfn.delete_change_set(ChangeSetName=change_set.change_set_id, StackName=step.stack)
            self.log(f"no changes: stack {step.stack} is already as this deploy would make it")
            return
        if change_set.status == "FAILED":
            raise stacks.StackError(f"change set {step.name} for stack {step.stack} failed: "
                                    f"{change_set.reason}")
        self.log(change_set.summary())
        for change in change_set.changes:
            self.log(change.line())

    def _Confirm(self, step: p.Confirm) -> None:
        if step.yes:
            return
        change_set: stacks.ChangeSet = self._value(step.change_set)
        if self.confirm(f"execute change set {change_set.name} on stack {change_set.stack}?"):
            return
        cfn = self.clients.client("cloudformation")
        cfn.delete_change_set(ChangeSetName=change_set.change_set_id, StackName=change_set.stack)
        if change_set.kind == "CREATE":  # the stack it made holds nothing: do not leave it
            info = stacks.describe(cfn, change_set.stack_id or change_set.stack)
            if info is not None and info.status == "REVIEW_IN_PROGRESS":
                cfn.delete_stack(StackName=info.stack_id)
        raise Declined(f"not executed: change set {change_set.name} deleted; nothing changed "
                       "in the stack")

    def _ExecuteChangeSet(self, step: p.ExecuteChangeSet) -> None:
        assert self.result is not None
        cfn = self.clients.client("cloudformation")
        change_set: stacks.ChangeSet = self._value(step.change_set)
        target = change_set.stack_id or step.stack
        follower = stacks.Follower(cfn, target, self.log, self.clients.sleep,
                                   self.clients.clock, seen=stacks.event_ids(cfn, target))
        self.log(f"executing change set {change_set.name}; stack events:")
        try:
            cfn.execute_change_set(ChangeSetName=change_set.change_set_id, StackName=step.stack)
        except Exception as exc:  # the service refused it: moto reports failures this way
            if not self._executing_anyway(cfn, change_set, exc):
                follower.poll()
                failure = stacks.failure_from_error(exc, self.template, change_set.kind)
                self._failed(change_set, [*follower.failures(), failure], exc)
        try:
            final = follower.until_settled()
        except KeyboardInterrupt:
            self.log(f"stopped following: stack {step.stack} carries on in CloudFormation; "
                     f"follow it with `aws cloudformation describe-stack-events --stack-name "
                     f"{step.stack}`")
            raise
        status = final.status if final is not None else "DELETE_COMPLETE"
        self.result.status = status
        if status in stacks.CREATED:
            self.log(f"stack {step.stack}: {status}")
            return
        failures = follower.failures() or [stacks.Failure(
            step.stack, "AWS::CloudFormation::Stack", status,
            (final.reason if final else "") or "no reason given")]
        self._failed(change_set, failures, None)

    def _executing_anyway(self, cfn: Any, change_set: stacks.ChangeSet,
                          exc: BaseException) -> bool:
        """Whether the change set runs although ExecuteChangeSet answered an error: a retry
        (after a 5xx or a timeout) of a call that had started it is refused with
        InvalidChangeSetStatus."""
        if stacks.error_code(exc) != "InvalidChangeSetStatus":
            return False
        described = cfn.describe_change_set(ChangeSetName=change_set.change_set_id,
                                            StackName=change_set.stack)
        return str(described.get("ExecutionStatus", "")).startswith("EXECUTE_")

    def _failed(self, change_set: stacks.ChangeSet, failures: list[stacks.Failure],
                cause: BaseException | None) -> None:
        """Report the first failure; a failed first create is deleted so that the next
        deploy can create the stack again (it could not update it)."""
        assert self.result is not None
        cfn = self.clients.client("cloudformation")
        first = failures[0]
        message = f"stack {change_set.stack}: {first.line()}"
        for other in failures[1:3]:
            self.log(f"  also: {other.line()}")
        info = stacks.describe(cfn, change_set.stack_id or change_set.stack)
        self.result.status = info.status if info else first.status
        if change_set.kind == "CREATE" and info is not None:
            self.log(f"the first create of stack {change_set.stack} failed "
                     f"({info.status}): deleting it so that the next deploy is not blocked")
            left = stacks.delete(cfn, info, log=self.log, sleep=self.clients.sleep,
                                 clock=self.clients.clock)
            if left:
                message += ("; deleting the failed stack failed too: "
                            + "; ".join(f.line() for f in left))
            else:
                message += "; the failed stack was deleted, fix the cause and deploy again"
        elif change_set.kind == "UPDATE":
            message += ("; CloudFormation rolls an update back to the previous state"
                        + (f" (now {info.status})" if info else ""))
        error = stacks.StackError(message, failures)
        if cause is not None:
            raise error from cause
        raise error

    def _ShowOutputs(self, step: p.ShowOutputs) -> None:
        assert self.result is not None
        cfn = self.clients.client("cloudformation")
        info = stacks.describe(cfn, step.stack)
        if info is None:
            return
        self.result.outputs = dict(info.outputs)
        if not self.result.status:
            self.result.status = info.status
        step.record.parent.mkdir(parents=True, exist_ok=True)
        step.record.write_text(json.dumps(info.outputs, indent=1, sort_keys=True) + "\n")
        for key, value in sorted(info.outputs.items()):
            self.out(f"{key}: {value}")

    def _record(self, plan: p.Plan) -> None:
        assert self.result is not None
        plan.record_dir.mkdir(parents=True, exist_ok=True)
        uploads = {s.name: f"s3://{s.bucket}/{s.key}" for s in plan.steps
                   if isinstance(s, p.Upload)}
        buckets = [s.bucket for s in plan.steps if isinstance(s, p.EnsureBucket)]
        models = [s.store for s in plan.steps if isinstance(s, p.PublishModel)]
        repos = [s.target.rsplit(":", 1)[0].split("/", 1)[1] for s in plan.steps
                 if isinstance(s, p.PushImage) and s.ecr]
        record = {"stack": plan.stack, "region": plan.region, "strategy": plan.strategy,
                  "status": self.result.status, "no_changes": self.result.no_changes,
                  "artifact_bucket": buckets[0] if buckets else None, "artifacts": uploads,
                  "image_uri": self.result.image_uri, "ecr_repository": repos[0] if repos
                  else None, "model_store": models[0] if models else None,
                  "endpoint_url": self.clients.endpoint_url, "seconds": self.result.seconds,
                  "deployed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (plan.record_dir / "deploy.json").write_text(json.dumps(record, indent=1) + "\n")


def template_url(clients: Any, bucket: str, key: str) -> str:
    """The URL CloudFormation reads a template from: S3's path-style URL in the region
    (CloudFormation takes S3 URLs only; a local AWS such as moto resolves it from its own
    S3, whatever the endpoint)."""
    suffix = "amazonaws.com.cn" if str(clients.region).startswith("cn-") else "amazonaws.com"
    return f"https://s3.{clients.region}.{suffix}/{bucket}/{key}"


__all__ = ["Declined", "DeployResult", "DisplayExecutor", "Executor", "template_url"]
