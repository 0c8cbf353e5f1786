"""CloudFormation stacks: their status, change sets, events, waiting, failures.

Every function takes the CloudFormation client and, where it waits, ``sleep`` and ``clock``
(``AwsClients`` carries them), so tests drive them against moto's server or a stub without
really sleeping. Waits are bounded by time, not by a number of attempts (the change-set waiter
of ``sam deploy`` runs out of attempts on big stacks: aws-sam-cli #4681).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelambda.errors import ModelambdaError

Log = Callable[[str], None]

# Stack statuses (docs: AWS::CloudFormation::Stack, StackStatus).
CREATED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
FAILED = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_FAILED",
          "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED",
          "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED")
# A failed first create: the stack cannot be updated, only deleted (aws-sam-cli #1865, #2191).
DEAD_ON_ARRIVAL = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED")
# A change set of type CREATE is made when the stack is absent or only reviewed so far.
CREATE_FROM = (None, "REVIEW_IN_PROGRESS")

# What CloudFormation (and moto) say when a change set would change nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed",
              "does not contain changes")

POLL_S = 2.0
CHANGE_SET_TIMEOUT_S = 10 * 60.0
STACK_TIMEOUT_S = 60 * 60.0  # sam deploy's default


class StackError(ModelambdaError):
    """A stack operation failed; the message names the resource, its status and the reason."""

    def __init__(self, message: str, failures: list[Failure] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True)
class StackInfo:
    name: str
    stack_id: str
    status: str
    reason: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional (Modify only)

    def line(self) -> str:
        mark = {"Add": "+", "Modify": "~", "Remove": "-"}.get(self.action, "?")
        replaced = f"  (replacement: {self.replacement})" \
            if self.action == "Modify" and self.replacement else ""
        return f"  {mark} {self.logical_id:<32} {self.resource_type}{replaced}"


@dataclass(frozen=True)
class Failure:
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def line(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) {self.status}: {self.reason}"


@dataclass
class ChangeSet:
    stack: str
    name: str
    change_set_id: str
    stack_id: str
    kind: str  # CREATE | UPDATE
    status: str = ""
    reason: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.status == "FAILED" and any(text in self.reason for text in NO_CHANGES)

    def summary(self) -> str:
        counts = {action: sum(c.action == action for c in self.changes)
                  for action in ("Add", "Modify", "Remove")}
        return (f"change set {self.name} ({self.kind}) for stack {self.stack}: "
                f"{counts['Add']} to add, {counts['Modify']} to change, "
                f"{counts['Remove']} to remove")


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    return error.get("Code") == "ValidationError" and "does not exist" in str(
        error.get("Message", ""))


def describe(cfn: Any, stack: str) -> StackInfo | None:
    """The stack called (or with the id) ``stack``; None when there is none."""
    try:
        found = cfn.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise
    if not found:
        return None
    top = found[0]
    if top["StackStatus"] == "DELETE_COMPLETE":
        return None
    outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in top.get("Outputs") or []}
    return StackInfo(top["StackName"], top["StackId"], top["StackStatus"],
                     top.get("StackStatusReason") or "", outputs)


def change_set_kind(info: StackInfo | None) -> str:
    return "CREATE" if info is None or info.status in CREATE_FROM else "UPDATE"


def create_change_set(cfn: Any, stack: str, name: str, kind: str, *,
                      template_body: str | None = None, template_url: str | None = None,
                      capabilities: Iterable[str] = (), tags: dict[str, str] | None = None,
                      description: str = "") -> ChangeSet:
    params: dict[str, Any] = {"StackName": stack, "ChangeSetName": name,
                              "ChangeSetType": kind, "Capabilities": list(capabilities)}
    if template_url is not None:
        params["TemplateURL"] = template_url
    else:
        params["TemplateBody"] = template_body
    if tags:
        params["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    if description:
        params["Description"] = description[:1024]
    made = cfn.create_change_set(**params)
    return ChangeSet(stack, name, made["Id"], made.get("StackId", ""), kind)


def wait_change_set(cfn: Any, change_set: ChangeSet, *, sleep: Callable[[float], None],
                    clock: Callable[[], float] = time.monotonic,
                    timeout_s: float = CHANGE_SET_TIMEOUT_S, poll_s: float = POLL_S
                    ) -> ChangeSet:
    """Wait until the change set is computed (or failed); fill in its changes."""
    deadline = clock() + timeout_s
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set.change_set_id,
                                            StackName=change_set.stack)
        change_set.status = described["Status"]
        change_set.reason = described.get("StatusReason") or ""
        if change_set.status in ("CREATE_COMPLETE", "FAILED"):
            break
        if clock() > deadline:
            raise StackError(f"change set {change_set.name} is still {change_set.status} after "
                             f"{timeout_s / 60:.0f} min; see it in the CloudFormation console")
        sleep(poll_s)
    change_set.changes = list(_changes(cfn, change_set, described))
    return change_set


def _changes(cfn: Any, change_set: ChangeSet, first: dict[str, Any]) -> Iterable[Change]:
    page = first
    while True:
        for item in page.get("Changes") or []:
            rc = item.get("ResourceChange") or {}
            yield Change(rc.get("Action", "?"), rc.get("LogicalResourceId", "?"),
                         rc.get("ResourceType", "?"), str(rc.get("Replacement") or ""))
        token = page.get("NextToken")
        if not token:
            return
        page = cfn.describe_change_set(ChangeSetName=change_set.change_set_id,
                                       StackName=change_set.stack, NextToken=token)


def event_ids(cfn: Any, stack: str) -> set[str]:
    """The ids of the events the stack has so far (first page: the newest)."""
    try:
        return {e["EventId"] for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]}
    except Exception as exc:
        if _is_missing(exc):
            return set()
        raise


def _event_line(event: dict[str, Any], started: float, now: float) -> str:
    reason = event.get("ResourceStatusReason") or ""
    return (f"  {now - started:6.1f}s  {event.get('ResourceStatus', '?'):<22} "
            f"{event.get('ResourceType', '?'):<34} {event.get('LogicalResourceId', '?')}"
            + (f": {reason}" if reason and reason != "User Initiated" else ""))


@dataclass
class Follower:
    """Follows a stack's events until it settles, printing each new one once."""

    cfn: Any
    stack: str  # name or id (an id still answers after the stack is deleted)
    log: Log
    sleep: Callable[[float], None]
    clock: Callable[[], float] = time.monotonic
    seen: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)  # new ones, oldest first
    poll_s: float = POLL_S

    def __post_init__(self) -> None:
        self.started = self.clock()

    def poll(self) -> None:
        fresh: list[dict[str, Any]] = []
        params: dict[str, Any] = {"StackName": self.stack}
        while True:  # newest first: read pages until an event already seen
            try:
                page = self.cfn.describe_stack_events(**params)
            except Exception as exc:
                if _is_missing(exc):
                    return
                raise
            batch = page.get("StackEvents") or []
            known = False
            for event in batch:
                if event["EventId"] in self.seen:
                    known = True
                    break
                fresh.append(event)
            if known or not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        now = self.clock()
        for event in reversed(fresh):
            self.seen.add(event["EventId"])
            self.events.append(event)
            self.log(_event_line(event, self.started, now))

    def until_settled(self, *, timeout_s: float = STACK_TIMEOUT_S) -> StackInfo | None:
        """Poll until the stack is no longer in progress; its final state (None: deleted)."""
        deadline = self.clock() + timeout_s
        while True:
            self.poll()
            info = describe(self.cfn, self.stack)
            if info is None or not info.status.endswith("_IN_PROGRESS") or \
                    info.status == "REVIEW_IN_PROGRESS":
                self.poll()
                return info
            if self.clock() > deadline:
                raise StackError(f"stack {self.stack} is still {info.status} after "
                                 f"{timeout_s / 60:.0f} min: it keeps going; follow it with "
                                 f"`aws cloudformation describe-stack-events --stack-name "
                                 f"{self.stack}`")
            self.sleep(self.poll_s)

    def failures(self) -> list[Failure]:
        """The resources that failed, first failure first (the later ones are often
        "Resource creation cancelled" caused by it)."""
        found = []
        for event in self.events:
            status = str(event.get("ResourceStatus", ""))
            if status.endswith("_FAILED") and event.get("ResourceType") != \
                    "AWS::CloudFormation::Stack":
                found.append(Failure(str(event.get("LogicalResourceId", "?")),
                                     str(event.get("ResourceType", "?")), status,
                                     str(event.get("ResourceStatusReason") or "no reason given")))
        return found


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


# Error codes a service returns for one resource type, to name the resource when the stack
# has no resource events (moto reports a failing resource only as the ExecuteChangeSet error).
_CODE_TYPES = {
    "BucketAlreadyExists": "AWS::S3::Bucket", "BucketAlreadyOwnedByYou": "AWS::S3::Bucket",
    "InvalidBucketName": "AWS::S3::Bucket", "EntityAlreadyExists": "AWS::IAM::Role",
    "MalformedPolicyDocument": "AWS::IAM::Role",
    "RepositoryAlreadyExistsException": "AWS::ECR::Repository",
    "ResourceConflictException": "AWS::Lambda::Function",
    "FileSystemAlreadyExists": "AWS::EFS::FileSystem",
    "ResourceAlreadyExistsException": "AWS::Logs::LogGroup",
}
_JSON_ERROR = re.compile(r'\{"__type": "(?P<code>[A-Za-z.#]+)", "message": "(?P<message>[^"]*)"\}')


def _unparsed_error(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) of a JSON error body botocore could not parse as the XML it expected
    (moto's CloudFormation passes a failing JSON service's error through as it is)."""
    if type(exc).__name__ != "ResponseParserError":
        return None
    found = _JSON_ERROR.search(str(exc))
    if found is None:
        return None
    return found.group("code").rsplit("#", 1)[-1], found.group("message")


def failure_from_error(exc: BaseException, template: dict[str, Any], kind: str) -> Failure:
    """A failure for an execution error that came back from the API instead of as events:
    the resource is named when the error's code belongs to one resource type and the template
    has exactly one resource of it."""
    from modelambda.awserrors import explain

    code = error_code(exc)
    reason = explain(exc) or f"{type(exc).__name__}: {exc}"
    unparsed = _unparsed_error(exc)
    if unparsed is not None:
        code, message = unparsed
        reason = f"{code}: {message}"
    wanted = _CODE_TYPES.get(code)
    matches = [name for name, body in (template.get("Resources") or {}).items()
               if wanted and body.get("Type") == wanted]
    status = f"{kind}_FAILED"
    if len(matches) == 1:
        return Failure(matches[0], str(wanted), status, reason)
    return Failure("(not reported)", "?", status, reason)


def delete(cfn: Any, info: StackInfo, *, log: Log, sleep: Callable[[float], None],
           clock: Callable[[], float] = time.monotonic,
           timeout_s: float = STACK_TIMEOUT_S) -> list[Failure]:
    """Delete the stack and follow it until it is gone; the failures if it could not be."""
    follower = Follower(cfn, info.stack_id, log, sleep, clock,
                        seen=event_ids(cfn, info.stack_id))
    cfn.delete_stack(StackName=info.stack_id)
    final = follower.until_settled(timeout_s=timeout_s)
    if final is None or final.status == "DELETE_COMPLETE":
        return []
    failures = follower.failures() or [Failure(
        info.name, "AWS::CloudFormation::Stack", final.status,
        final.reason or "no reason given")]
    return failures


__all__ = ["CREATED", "CREATE_FROM", "DEAD_ON_ARRIVAL", "FAILED", "NO_CHANGES", "Change",
           "ChangeSet", "Failure", "Follower", "StackError", "StackInfo", "change_set_kind",
           "create_change_set", "delete", "describe", "error_code", "event_ids",
           "failure_from_error", "wait_change_set"]
