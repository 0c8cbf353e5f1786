"""The deploy plan, the stack helpers and the executor, without a server.

What moto cannot show is played here by a small fake of CloudFormation that behaves as the
real service does (docs: DescribeStackEvents, change sets; aws-sam-cli issues): resource
events, a failed first create that rolls back to ROLLBACK_COMPLETE, a change set that takes a
few polls to compute. Waits run on a fake clock: nothing really sleeps.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from modelambda.deploy import plan as p
from modelambda.deploy import stack as stacks
from modelambda.deploy.aws import AwsClients, check_region, check_stack_name
from modelambda.deploy.executor import Declined, DisplayExecutor, Executor, template_url
from modelambda.errors import UsageError

# --- fakes ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _missing(operation: str, name: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ValidationError",
                                  "Message": f"Stack with id {name} does not exist"}}, operation)


class FakeCloudFormation:
    """Real CloudFormation's behaviour, in the few calls a deploy makes."""

    def __init__(self, *, status: str | None = None, fail: tuple[str, str, str] | None = None,
                 polls: int = 2) -> None:
        self.calls: list[str] = []
        self.status = status  # None: no stack
        self.stack_id = "arn:aws:cloudformation:us-east-1:1:stack/st/1" if status else ""
        self.events: list[dict[str, Any]] = []  # newest first, as the API answers
        self.fail = fail  # (logical id, type, reason) that fails on execution
        self.polls = polls
        self.change_set: dict[str, Any] = {}
        self.outputs = [{"OutputKey": "FunctionArn", "OutputValue": "arn:fn"}]
        self._ids = itertools.count(1)

    def _event(self, logical: str, kind: str, status: str, reason: str = "") -> None:
        self.events.insert(0, {"EventId": f"e{next(self._ids)}", "LogicalResourceId": logical,
                               "ResourceType": kind, "ResourceStatus": status,
                               "ResourceStatusReason": reason})

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.calls.append("DescribeStacks")
        if self.status is None:
            raise _missing("DescribeStacks", StackName)
        return {"Stacks": [{"StackName": "st", "StackId": self.stack_id,
                            "StackStatus": self.status, "Outputs": self.outputs}]}

    def describe_stack_events(self, StackName: str, **_: Any) -> dict[str, Any]:
        self.calls.append("DescribeStackEvents")
        if self.status is None and not self.events:
            raise _missing("DescribeStackEvents", StackName)
        return {"StackEvents": list(self.events)}

    def create_change_set(self, **params: Any) -> dict[str, Any]:
        self.calls.append("CreateChangeSet")
        if params["ChangeSetType"] == "CREATE":
            self.status = "REVIEW_IN_PROGRESS"
            self.stack_id = "arn:aws:cloudformation:us-east-1:1:stack/st/2"
            self._event("st", "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS")
        self.change_set = {"params": params, "left": self.polls}
        return {"Id": "arn:cs", "StackId": self.stack_id}

    def describe_change_set(self, **_: Any) -> dict[str, Any]:
        self.calls.append("DescribeChangeSet")
        self.change_set["left"] -= 1
        if self.change_set["left"] > 0:
            return {"Status": "CREATE_IN_PROGRESS"}
        return {"Status": "CREATE_COMPLETE", "Changes": [
            {"ResourceChange": {"Action": "Add", "LogicalResourceId": "Function",
                                "ResourceType": "AWS::Lambda::Function"}}]}

    def delete_change_set(self, **_: Any) -> None:
        self.calls.append("DeleteChangeSet")

    def execute_change_set(self, **_: Any) -> None:
        self.calls.append("ExecuteChangeSet")
        create = self.change_set["params"]["ChangeSetType"] == "CREATE"
        self.status = "CREATE_IN_PROGRESS" if create else "UPDATE_IN_PROGRESS"
        self._event("st", "AWS::CloudFormation::Stack", self.status, "User Initiated")
        self._pending = 2  # settles after two polls

    def _advance(self) -> None:
        if not self.status or not self.status.endswith("_IN_PROGRESS") or \
                self.status == "REVIEW_IN_PROGRESS":
            return
        self._pending -= 1
        if self._pending > 0:
            self._event("Function", "AWS::Lambda::Function", "CREATE_IN_PROGRESS")
            return
        if self.status == "DELETE_IN_PROGRESS":
            self._event("st", "AWS::CloudFormation::Stack", "DELETE_COMPLETE")
            self.status = None
        elif self.fail:
            logical, kind, reason = self.fail
            self._event(logical, kind, "CREATE_FAILED", reason)
            self._event("Other", "AWS::IAM::Role", "CREATE_FAILED",
                        "Resource creation cancelled")
            self.status = "ROLLBACK_COMPLETE" if "CREATE" in self.events[-2][
                "ResourceStatus"] else "UPDATE_ROLLBACK_COMPLETE"
            self._event("st", "AWS::CloudFormation::Stack", self.status)
        else:
            self.status = self.status.replace("IN_PROGRESS", "COMPLETE")
            self._event("st", "AWS::CloudFormation::Stack", self.status)

    def delete_stack(self, StackName: str) -> None:
        self.calls.append("DeleteStack")
        self.status = "DELETE_IN_PROGRESS"
        self._pending = 1

    def __getattribute__(self, name: str) -> Any:
        if name in ("describe_stacks", "describe_stack_events"):
            object.__getattribute__(self, "_advance")()
        return object.__getattribute__(self, name)


class FakeClients:
    def __init__(self, cfn: FakeCloudFormation, clock: FakeClock) -> None:
        self.cfn = cfn
        self.sleep = clock.sleep
        self.clock = clock
        self.region = "us-east-1"
        self.endpoint_url: str | None = None
        self.is_local = False

    def client(self, service: str) -> Any:
        assert service == "cloudformation", service
        return self.cfn


TEMPLATE = {"Resources": {"Function": {"Type": "AWS::Lambda::Function",
                                       "Properties": {"MemorySize": 512}}}}


def _plan(tmp_path: Path, *, yes: bool = True) -> p.Plan:
    made = p.Variable("change_set")
    steps: list[p.Step] = [
        p.CreateChangeSet("st", "cs", "CREATE", TEMPLATE, (), (), "bucket", "k",
                          tmp_path / "template.json", output=made),
        p.Confirm(yes, made),
        p.ExecuteChangeSet("st", made),
        p.ShowOutputs("st", tmp_path / "outputs.json"),
    ]
    return p.Plan("st", "us-east-1", "bundle", steps, tmp_path)


def _executor(cfn: FakeCloudFormation, clock: FakeClock, lines: list[str],
              out: list[str], answer: bool = False) -> Executor:
    return Executor(FakeClients(cfn, clock), log=lines.append, out=out.append,
                    confirm=lambda _question: answer)


# --- the checks on the template sent ---------------------------------------------------------


def _snapstart(**props: Any) -> dict[str, Any]:
    return {"Resources": {"Function": {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "SnapStart": {"ApplyOn": "PublishedVersions"}, **props}}}}


def test_preflight_passes_a_plain_snapstart_function() -> None:
    assert p.preflight(_snapstart()) == []
    assert p.preflight(TEMPLATE) == []


@pytest.mark.parametrize(("template", "says"), [
    (_snapstart(FileSystemConfigs=[{"Arn": "arn:ap", "LocalMountPath": "/mnt/models"}]),
     "no SnapStart with EFS"),
    (_snapstart(EphemeralStorage={"Size": 1024}), "/tmp (1024 MB) above 512 MB"),
    (_snapstart(Runtime="python3.11"), "SnapStart needs one of python3.12"),
    ({"Resources": {**_snapstart()["Resources"], "Alias": {
        "Type": "AWS::Lambda::Alias", "Properties": {
            "FunctionName": {"Ref": "Function"},
            "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}}}}},
     "no SnapStart with provisioned concurrency"),
    ({"Resources": {"Function": {"Type": "AWS::Lambda::Function", "Properties": {
        "Layers": [f"arn:l:{i}" for i in range(6)]}}}}, "6 layers"),
])
def test_preflight_names_what_lambda_would_refuse(template: dict[str, Any], says: str) -> None:
    problems = p.preflight(template)
    assert len(problems) == 1 and says in problems[0], problems


def test_capabilities_follow_the_iam_resources() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {}}
    assert p.capabilities(TEMPLATE) == ()
    assert p.capabilities({"Resources": {"R": role}}) == ("CAPABILITY_IAM",)
    named = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}
    assert p.capabilities({"Resources": {"R": named}}) == ("CAPABILITY_IAM",
                                                           "CAPABILITY_NAMED_IAM")


def test_diff_templates_says_add_change_remove() -> None:
    old = {"Resources": {"Keep": {"Type": "A"}, "Change": {"Type": "B", "Properties": {"x": 1}},
                         "Gone": {"Type": "C"}}}
    new = {"Resources": {"Keep": {"Type": "A"}, "Change": {"Type": "B", "Properties": {"x": 2}},
                         "New": {"Type": "D"}}}
    found = {(c.action, c.logical_id) for c in p.diff_templates(old, new)}
    assert found == {("Modify", "Change"), ("Remove", "Gone"), ("Add", "New")}
    assert [c.action for c in p.diff_templates(None, new)] == ["Add"] * 3


def test_template_text_is_canonical() -> None:
    a = {"b": 1, "a": {"d": 2, "c": 3}}
    b = {"a": {"c": 3, "d": 2}, "b": 1}
    assert p.template_text(a) == p.template_text(b)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1stack", "my_stack", "a" * 129, "", "stack name"])
def test_invalid_stack_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="not a valid CloudFormation stack name"):
        check_stack_name(name)


@pytest.mark.parametrize(("region", "says"), [
    ("us-east1", "did you mean us-east-1"), ("US-EAST-1", "not an AWS region id"),
    ("us-esat-1", "not a known AWS region .did you mean us-"), ("mars", "not an AWS region id")])
def test_invalid_regions_are_refused(region: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        check_region(region)


def test_a_well_formed_region_newer_than_botocore_passes() -> None:
    assert check_region("us-east-1") == "us-east-1"
    assert check_region("xx-north-9") == "xx-north-9"


def test_clients_share_one_endpoint_and_are_cached() -> None:
    import boto3

    seen: list[str] = []
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
    clients = AwsClients(session, "eu-west-1", "http://127.0.0.1:9", on_client=lambda s, c:
                         seen.append(f"{s} {c.meta.endpoint_url} {c.meta.region_name}"))
    assert clients.client("s3") is clients.client("s3")
    clients.client("cloudformation")
    assert seen == ["s3 http://127.0.0.1:9 eu-west-1",
                    "cloudformation http://127.0.0.1:9 eu-west-1"]
    clients.close()


def test_template_url_is_s3s_path_style_url_in_the_region() -> None:
    class Where:
        region = "eu-west-1"

    assert template_url(Where(), "b.x", "k/t.json") == \
        "https://s3.eu-west-1.amazonaws.com/b.x/k/t.json"
    Where.region = "cn-north-1"
    assert template_url(Where(), "b", "k") == "https://s3.cn-north-1.amazonaws.com.cn/b/k"


# --- waiting, without sleeping ---------------------------------------------------------------


def test_change_set_wait_polls_on_the_fake_clock() -> None:
    cfn, clock = FakeCloudFormation(polls=3), FakeClock()
    made = stacks.create_change_set(cfn, "st", "cs", "CREATE", template_body="{}")
    done = stacks.wait_change_set(cfn, made, sleep=clock.sleep, clock=clock)
    assert done.status == "CREATE_COMPLETE"
    assert [c.logical_id for c in done.changes] == ["Function"]
    assert clock.slept == [stacks.POLL_S, stacks.POLL_S]


def test_change_set_wait_is_bounded_by_time() -> None:
    cfn, clock = FakeCloudFormation(polls=10**6), FakeClock()
    made = stacks.create_change_set(cfn, "st", "cs", "CREATE", template_body="{}")
    with pytest.raises(stacks.StackError, match="still CREATE_IN_PROGRESS after 1 min"):
        stacks.wait_change_set(cfn, made, sleep=clock.sleep, clock=clock, timeout_s=60)
    assert sum(clock.slept) <= 62


def test_an_empty_change_set_is_recognised() -> None:
    for reason in ("The submitted information didn't contain changes. Submit different "
                   "information to create a change set.", "No updates are to be performed."):
        made = stacks.ChangeSet("st", "cs", "id", "sid", "UPDATE", "FAILED", reason)
        assert made.empty
    assert not stacks.ChangeSet("st", "cs", "id", "sid", "UPDATE", "FAILED", "Bad").empty


# --- the executor against real CloudFormation's behaviour ---------------------------------------


def test_create_follows_events_and_prints_outputs(tmp_path: Path) -> None:
    cfn, clock = FakeCloudFormation(), FakeClock()
    lines: list[str] = []
    out: list[str] = []
    result = _executor(cfn, clock, lines, out).run(_plan(tmp_path))
    assert result.status == "CREATE_COMPLETE" and out == ["FunctionArn: arn:fn"]
    progress = "\n".join(lines)
    assert progress.count("CREATE_IN_PROGRESS     AWS::Lambda::Function") == 1  # each once
    assert "CREATE_COMPLETE" in progress
    assert (tmp_path / "template.json").read_text().strip() == p.template_text(TEMPLATE)
    assert (tmp_path / "outputs.json").is_file() and (tmp_path / "deploy.json").is_file()
    assert clock.slept and all(s == stacks.POLL_S for s in clock.slept)


def test_a_failed_first_create_is_named_and_deleted(tmp_path: Path) -> None:
    # GIVEN a create that fails on the function (the role is cancelled because of it)
    cfn = FakeCloudFormation(fail=("Function", "AWS::Lambda::Function",
                                   "Memory size 99999 is out of range"))
    clock = FakeClock()
    lines: list[str] = []
    # WHEN it is executed
    with pytest.raises(stacks.StackError) as raised:
        _executor(cfn, clock, lines, []).run(_plan(tmp_path))
    # THEN the first failure is named, with its status and reason, not the cancellation
    message = str(raised.value)
    assert ("Function (AWS::Lambda::Function) CREATE_FAILED: Memory size 99999 is out of range"
            in message)
    assert "deleted" in message
    # AND the ROLLBACK_COMPLETE stack was deleted, so the next deploy can create it again
    assert "DeleteStack" in cfn.calls and cfn.status is None
    assert any("so that the next deploy is not blocked" in line for line in lines)


def test_a_rolled_back_stack_is_deleted_before_the_next_create(tmp_path: Path) -> None:
    cfn, clock = FakeCloudFormation(status="ROLLBACK_COMPLETE"), FakeClock()
    steps = [p.DeleteFailedStack("st", cfn.stack_id, "ROLLBACK_COMPLETE"),
             *_plan(tmp_path).steps]
    plan = p.Plan("st", "us-east-1", "bundle", steps, tmp_path)
    result = _executor(cfn, clock, [], []).run(plan)
    assert cfn.calls.index("DeleteStack") < cfn.calls.index("CreateChangeSet")
    assert result.status == "CREATE_COMPLETE"


def test_declining_deletes_the_change_set_and_the_empty_stack(tmp_path: Path) -> None:
    cfn, clock = FakeCloudFormation(), FakeClock()
    with pytest.raises(Declined, match="not executed"):
        _executor(cfn, clock, [], [], answer=False).run(_plan(tmp_path, yes=False))
    assert "ExecuteChangeSet" not in cfn.calls
    assert "DeleteChangeSet" in cfn.calls and "DeleteStack" in cfn.calls  # no REVIEW leftover


def test_confirming_executes(tmp_path: Path) -> None:
    cfn, clock = FakeCloudFormation(), FakeClock()
    result = _executor(cfn, clock, [], [], answer=True).run(_plan(tmp_path, yes=False))
    assert result.status == "CREATE_COMPLETE"


def test_the_display_executor_calls_nothing(tmp_path: Path) -> None:
    out: list[str] = []
    result = DisplayExecutor(out.append).run(_plan(tmp_path))
    assert result.status == ""
    assert out[0].startswith("plan: deploy bundle as stack st")
    assert "dry run: nothing was changed" in out[-1]
    assert not (tmp_path / "template.json").exists()


def test_failure_from_an_api_error_names_the_one_resource_of_its_type() -> None:
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "BucketAlreadyExists",
                                   "Message": "The requested bucket name is not available"}},
                        "ExecuteChangeSet")
    template = {"Resources": {"ModelBucket": {"Type": "AWS::S3::Bucket"},
                              "Function": {"Type": "AWS::Lambda::Function"}}}
    failure = stacks.failure_from_error(error, template, "CREATE")
    assert (failure.logical_id, failure.resource_type, failure.status) == (
        "ModelBucket", "AWS::S3::Bucket", "CREATE_FAILED")
    assert "BucketAlreadyExists" in failure.reason


def test_a_retried_execute_that_had_started_the_change_set_is_followed(tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    cfn, clock = FakeCloudFormation(), FakeClock()
    execute = cfn.execute_change_set

    def started_then_refused(**params: Any) -> None:  # as a retry after a 5xx would see it
        execute(**params)
        raise ClientError({"Error": {"Code": "InvalidChangeSetStatus", "Message": "busy"}},
                          "ExecuteChangeSet")

    cfn.execute_change_set = started_then_refused  # type: ignore[method-assign]
    describe = cfn.describe_change_set

    def described(**params: Any) -> dict[str, Any]:
        answer = describe(**params)
        return {**answer, "ExecutionStatus": "EXECUTE_IN_PROGRESS"}

    cfn.describe_change_set = described  # type: ignore[method-assign]
    result = _executor(cfn, clock, [], []).run(_plan(tmp_path))
    assert result.status == "CREATE_COMPLETE"


# --- the planner's view of the stack ----------------------------------------------------------


class FakeS3:
    def head_bucket(self, **_: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")


class PlanClients(FakeClients):
    def client(self, service: str) -> Any:
        return self.cfn if service == "cloudformation" else FakeS3()

    def account_id(self) -> str:
        return "123456789012"


def _stand_in_templates() -> p.Templates:
    from types import SimpleNamespace

    return p.Templates(
        content_key=lambda spec, name, sha: f"iris/{sha}.json",
        locations_for=lambda spec, build, bucket, image_uri=None: SimpleNamespace(
            bucket=bucket, keys={"function.zip": "iris/f.zip"}, image_uri=image_uri),
        sam_template=lambda spec, build, where: TEMPLATE,
        cloudformation=lambda sam, region: sam,
        default_bucket=lambda account, region: f"artifacts-{account}-{region}")


def _stand_in_build(tmp_path: Path) -> Any:
    from modelambda.package.artifacts import Artifact, BuildResult
    from modelambda.spec import load_spec
    from modelambda.strategies import get
    from tests.conftest import IRIS

    zipped = tmp_path / "function.zip"
    zipped.write_bytes(b"PK")
    spec = load_spec(IRIS)
    return spec, BuildResult(spec, get("bundle"), tmp_path,
                             Artifact("function.zip", "function", zipped, [], sha256="ab"))


def test_the_plan_deletes_a_rolled_back_stack_first_and_creates_it_again(
        tmp_path: Path) -> None:
    spec, build = _stand_in_build(tmp_path)
    cfn = FakeCloudFormation(status="ROLLBACK_COMPLETE")
    options = p.DeployOptions("st", "us-east-1", yes=True)
    plan = p.plan_deploy(spec, build, PlanClients(cfn, FakeClock()), options,
                         _stand_in_templates())
    kinds = [type(step).__name__ for step in plan.steps]
    assert kinds == ["DeleteFailedStack", "EnsureBucket", "Upload", "CreateChangeSet",
                     "Confirm", "ExecuteChangeSet", "ShowOutputs"]
    change_set = plan.steps[3]
    assert isinstance(change_set, p.CreateChangeSet) and change_set.kind == "CREATE"
    assert cfn.calls == ["DescribeStacks"]  # planning only read
    assert "ROLLBACK_COMPLETE after a failed first create" in "\n".join(plan.lines())


@pytest.mark.parametrize(("status", "says"), [
    ("UPDATE_IN_PROGRESS", "another deploy or delete is running"),
    ("DELETE_FAILED", "fix the resource it names"),
])
def test_the_plan_refuses_a_busy_or_broken_stack(status: str, says: str,
                                                 tmp_path: Path) -> None:
    spec, build = _stand_in_build(tmp_path)
    cfn = FakeCloudFormation(status=status)
    cfn._pending = 10**6  # stays in progress
    with pytest.raises(p.PlanError, match=says):
        p.plan_deploy(spec, build, PlanClients(cfn, FakeClock()),
                      p.DeployOptions("st", "us-east-1"), _stand_in_templates())


# --- invoke --aws: the output contract, with a function error -----------------------------------


def test_invoke_aws_prints_the_payload_and_the_report_and_fails_on_a_function_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import base64
    import io

    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from modelambda.cli import deploy_cmd
    from modelambda.cli.main import main

    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
    clients = AwsClients(session, "eu-west-1")
    lam = clients.client("lambda")
    error = b'{"errorMessage": "bad shape", "errorType": "ShapeError"}'
    report = "REPORT RequestId: 1\tDuration: 2.00 ms\tBilled Duration: 3 ms"
    stub = Stubber(lam)
    stub.add_response("invoke", {
        "StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "7",
        "LogResult": base64.b64encode(f"START\n{report}\n".encode()).decode(),
        "Payload": StreamingBody(io.BytesIO(error), len(error))},
        {"FunctionName": "iris", "Qualifier": "live", "Payload": b'{"instances": [[1]]}',
         "LogType": "Tail"})
    stub.activate()
    monkeypatch.setattr(deploy_cmd, "make_clients", lambda args, spec: clients)
    code = main(["invoke", "iris", "--aws", "--data", '{"instances": [[1]]}'])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out) == json.loads(error)
    assert report in err and "invoke: iris:live (version 7) in eu-west-1" in err
    stub.assert_no_pending_responses()
