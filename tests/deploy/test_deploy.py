"""``modelambda deploy``, ``delete`` and ``invoke --aws`` against moto's server.

Every command runs in this process through ``modelambda.cli.main.main`` with
``--endpoint-url`` pointing at moto; every AWS operation its clients make is recorded with
botocore's ``before-call`` hooks (``recorded``). What moto does not model (Lambda aliases and
URLs, layers, architectures, image package type, file systems, ephemeral storage: see
``tests/deploy/moto.py``) is checked on the translated template the deploy sent, which it
records in ``DIR/.modelambda/deploy/<stack>/template.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelambda.cli.main import main
from tests.deploy.conftest import Recorded, set_key
from tests.deploy.moto import MotoServer

STACK = "modelambda-iris"
# the strategies whose lifecycle is the same: create, update, no changes, delete (s3 and
# image have tests of their own: the model store, the image push)
LIFECYCLE = ("bundle", "layer", "endpoint", "efs")
SERVING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/onnx-serving:1"
# moto 5.2.5 fails (HTTP 500) to update a function whose Layers Ref a LayerVersion of the same
# stack: the Ref resolves to its LayerVersion object, not the ARN, and
# LambdaFunction.update_configuration calls .replace on it (AttributeError).
MOTO_CANNOT_UPDATE = {"layer": "moto 5.2.5 cannot update a function whose Layers Ref a "
                               "LayerVersion of the same stack (AttributeError in "
                               "update_configuration): the update is not checked on moto"}


def deploy(directory: Path, aws: MotoServer, *extra: str) -> int:
    return main(["deploy", str(directory), "--endpoint-url", aws.url, *extra])


def sent(directory: Path, stack: str = STACK) -> dict[str, Any]:
    """The CloudFormation template the last deploy sent."""
    loaded: dict[str, Any] = json.loads(
        (directory / ".modelambda" / "deploy" / stack / "template.json").read_text())
    return loaded


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def function_props(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = [body["Properties"] for body in
                resources_of(template, "AWS::Lambda::Function").values()]
    return props


def stack_status(aws: MotoServer, stack: str = STACK) -> str | None:
    from modelambda.deploy.stack import describe

    info = describe(aws.client("cloudformation"), stack)
    return info.status if info else None


def one_error_line(err: str, command: str = "deploy") -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"modelambda {command}:")]
    assert len(lines) == 1, err
    return lines[0]


# --- every strategy: create, update, no changes, delete --------------------------------------


def check_common(template: dict[str, Any], memory: int) -> None:
    """What every deployed function has, checked on the template since moto drops it."""
    props = function_props(template)
    assert props["MemorySize"] == memory
    assert props["Architectures"] == ["x86_64"]
    assert props["EphemeralStorage"] == {"Size": 512}
    (alias,) = resources_of(template, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    (url,) = resources_of(template, "AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    assert "Transform" not in template  # translated offline: moto does not run the transform


def prepare(strategy: str, aws: MotoServer, make_service: Callable[..., Path]) -> Path:
    """The service: efs in a VPC of its own (made here: moto cannot delete a stack that
    creates a VPC with an S3 gateway endpoint, see moto.py), endpoint creating a SageMaker
    endpoint from a serving image."""
    if strategy == "efs":
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
                   for i, zone in enumerate("ab")]
        return make_service("efs", extra=f'vpc_id = "{vpc}"\nsubnet_ids = {json.dumps(subnets)}')
    if strategy == "endpoint":
        return make_service("endpoint", extra=f'protocol = "sagemaker"\n'
                                              f'model_image = "{SERVING_IMAGE}"')
    return make_service(strategy)


def check_strategy(strategy: str, template: dict[str, Any], directory: Path) -> None:
    """What the strategy adds, on the template sent (moto drops layers and file systems)."""
    props = function_props(template)
    if strategy == "layer":
        layers = resources_of(template, "AWS::Lambda::LayerVersion")
        assert len(layers) == 2
        assert sorted(ref["Ref"] for ref in props["Layers"]) == sorted(layers)
    else:
        assert not props.get("Layers")
    if strategy == "efs":
        (config,) = props["FileSystemConfigs"]
        assert config["LocalMountPath"] == "/mnt/models"
        assert len(props["VpcConfig"]["SubnetIds"]) == 2
        assert len(resources_of(template, "AWS::EFS::MountTarget")) == 2
        assert resources_of(template, "AWS::EFS::AccessPoint")
        assert "AWS::EC2::VPC" not in {body["Type"] for body in template["Resources"].values()}
    else:
        assert not props.get("FileSystemConfigs") and not props.get("VpcConfig")
    if strategy == "endpoint":
        (endpoint,) = resources_of(template, "AWS::SageMaker::Endpoint").values()
        assert endpoint["Properties"]["EndpointName"] == "iris"
        (model,) = resources_of(template, "AWS::SageMaker::Model").values()
        assert model["Properties"]["PrimaryContainer"]["Image"] == SERVING_IMAGE
        record = json.loads((directory / ".modelambda" / "deploy" / STACK / "deploy.json")
                            .read_text())
        assert sorted(record["artifacts"]) == ["function.zip", "model.tar.gz"]


def check_update(directory: Path, aws: MotoServer, recorded: Recorded,
                 capsys: pytest.CaptureFixture[str]) -> None:
    lam = aws.client("lambda")
    set_key(directory, "service", "memory_mb", "1024")
    recorded.clear()
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    assert stack_status(aws) == "UPDATE_COMPLETE"
    assert lam.get_function(FunctionName="iris")["Configuration"]["MemorySize"] == 1024
    check_common(sent(directory), 1024)
    # the artifacts did not change (reproducible zips, content-hash keys): HEAD, no upload
    assert recorded.named("HeadObject")
    assert not recorded.named("PutObject") and not recorded.named("CreateMultipartUpload")
    err = capsys.readouterr().err
    assert "already uploaded" in err and "~ Function " in err, err


@pytest.mark.slow
@pytest.mark.parametrize("strategy", LIFECYCLE)
def test_deploy_updates_says_no_changes_and_deletes(
        strategy: str, aws: MotoServer, recorded: Recorded,
        make_service: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    directory = prepare(strategy, aws, make_service)
    lam = aws.client("lambda")

    # GIVEN no stack: the deploy creates it
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    assert stack_status(aws) == "CREATE_COMPLETE"
    assert lam.get_function(FunctionName="iris")["Configuration"]["MemorySize"] == 512
    template = sent(directory)
    check_common(template, 512)
    check_strategy(strategy, template, directory)
    uploads = recorded.named("PutObject") + recorded.named("CreateMultipartUpload")
    assert uploads, recorded.operations
    err = capsys.readouterr().err
    if strategy == "efs":  # EFS cannot be written from here: the plan says how to publish
        assert "the model is not published from here" in err
        assert "modelambda models publish DIR --store /mnt/models --alias live" in err

    # WHEN the memory size changes, THEN the stack is updated and the function reads it back
    if strategy not in MOTO_CANNOT_UPDATE:
        check_update(directory, aws, recorded, capsys)
    final = "CREATE_COMPLETE" if strategy in MOTO_CANNOT_UPDATE else "UPDATE_COMPLETE"

    # WHEN nothing changed, THEN "no changes" is a success (exit 0), nothing is executed
    recorded.clear()
    assert deploy(directory, aws, "--yes") == 0
    err = capsys.readouterr().err
    assert "no changes: stack modelambda-iris is already as this deploy would make it" in err, \
        err
    assert recorded.named("CreateChangeSet") and recorded.named("DeleteChangeSet")
    assert not recorded.named("ExecuteChangeSet") and not recorded.named("PutObject")
    assert stack_status(aws) == final

    # WHEN deleted, THEN the stack and the function are gone, and it says what it keeps
    assert main(["delete", str(directory), "--endpoint-url", aws.url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"deleted stack {STACK}" in out
    assert "kept: artifact bucket s3://modelambda-artifacts-123456789012-us-east-1" in out
    assert stack_status(aws) is None
    assert not lam.list_functions()["Functions"]
    # moto settles at once; a wait would have gone to the recorder, not to time.sleep
    assert recorded.slept == []


# --- dry run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_makes_no_call_that_changes_anything(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "wJalrXUtnFEMI-not-a-real-secret-key"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    directory = make_service("bundle")

    # GIVEN nothing deployed: the dry run looks (read calls) and prints the plan
    assert deploy(directory, aws, "--dry-run") == 0
    out = capsys.readouterr().out
    assert recorded.operations, "the dry run looked at nothing"
    assert recorded.changing() == []
    assert "create the artifact bucket" in out and "upload function.zip" in out
    assert "+ Function" in out and "dry run: nothing was changed" in out
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert stack_status(aws) is None

    # GIVEN a deployed stack and a changed memory size: the dry run shows the change only
    assert deploy(directory, aws, "--yes") == 0
    set_key(directory, "service", "memory_mb", "2048")
    recorded.clear()
    capsys.readouterr()
    assert deploy(directory, aws, "--dry-run") == 0
    out = capsys.readouterr().out
    assert recorded.changing() == [], recorded.changing()
    assert "~ Function " in out and "already uploaded" in out and "(UPDATE)" in out, out
    memory = aws.client("lambda").get_function(FunctionName="iris")["Configuration"]
    assert memory["MemorySize"] == 512
    # the credentials are never printed nor recorded
    assert secret not in out + capsys.readouterr().err
    for record in (directory / ".modelambda").rglob("*.json"):
        assert secret not in record.read_text()


# --- refused before anything is uploaded -----------------------------------------------------


@pytest.mark.parametrize(("strategy", "keys", "says"), [
    ("efs", {"snapstart": "true"}, "no SnapStart with EFS"),
    ("bundle", {"snapstart": "true", "ephemeral_storage_mb": "1024"},
     "no SnapStart with ephemeral_storage_mb > 512"),
    ("bundle", {"snapstart": "true", "provisioned_concurrency": "2"},
     "no SnapStart with provisioned concurrency"),
    ("bundle", {"snapstart": "true", "runtime": '"python3.11"'}, "python3.11"),
])
def test_snapstart_conflicts_are_refused_before_any_upload(
        strategy: str, keys: dict[str, str], says: str, aws: MotoServer, recorded: Recorded,
        make_service: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_service(strategy)
    for key, value in keys.items():
        set_key(directory, "service", key, value)
    assert deploy(directory, aws, "--yes") == 2
    line = one_error_line(capsys.readouterr().err)
    assert says in line
    assert recorded.named("PutObject") == [] and recorded.operations == []


@pytest.mark.slow
def test_a_template_lambda_would_refuse_is_stopped_before_any_upload(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan's own check of the template sent (whatever made it): SnapStart with /tmp
    above 512 MB, which the spec would have refused."""
    from modelambda.deploy import template

    translate = template.cloudformation

    def with_snapstart(sam: dict[str, Any], region: str) -> dict[str, Any]:
        out = translate(sam, region)
        function_props(out).update(SnapStart={"ApplyOn": "PublishedVersions"},
                                   EphemeralStorage={"Size": 2048})
        return out

    monkeypatch.setattr(template, "cloudformation", with_snapstart)
    directory = make_service("bundle")
    assert deploy(directory, aws, "--yes") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "would be refused by Lambda, nothing uploaded" in line and "2048 MB" in line
    assert recorded.changing() == []


@pytest.mark.parametrize(("args", "says"), [
    (["--stack-name", "1-not-a-stack"], "not a valid CloudFormation stack name"),
    (["--stack-name", "under_score"], "not a valid CloudFormation stack name"),
    (["--region", "us-east1"], "did you mean us-east-1"),
    (["--region", "Mars"], "not an AWS region id"),
])
def test_bad_names_are_one_line_before_any_call(
        args: list[str], says: str, aws: MotoServer, recorded: Recorded,
        make_service: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_service("bundle")
    assert deploy(directory, aws, "--yes", *args) == 2
    assert says in one_error_line(capsys.readouterr().err)
    assert recorded.operations == []


def test_no_credentials_is_one_line_with_the_fix(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    directory = make_service("bundle")
    assert deploy(directory, aws, "--yes") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no AWS credentials found" in line and "--profile" in line
    assert recorded.operations == []
    # an unknown profile: boto3's own error, explained
    assert deploy(directory, aws, "--yes", "--profile", "nosuch") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "AWS profile 'nosuch' not found" in line


def test_without_a_terminal_or_yes_it_refuses(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_service("bundle")
    assert deploy(directory, aws) == 2
    assert "pass --yes" in one_error_line(capsys.readouterr().err)
    assert main(["delete", str(directory), "--endpoint-url", aws.url]) == 2
    assert "pass --yes" in one_error_line(capsys.readouterr().err, "delete")
    assert recorded.operations == []


# --- a stack that fails to create ------------------------------------------------------------


@pytest.mark.slow
def test_a_failed_create_names_the_resource_and_does_not_block_the_next_deploy(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the function's log group exists already (a function of that name ran before):
    # CloudFormation cannot create it, and moto refuses it as AWS does
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/iris")
    directory = make_service("bundle")

    # WHEN deployed, THEN the failure names the resource, its status and the reason
    assert deploy(directory, aws, "--yes") == 2
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "FunctionLogGroup (AWS::Logs::LogGroup) CREATE_FAILED" in line
    assert "log group already exists" in line
    # AND the failed stack was deleted, and says so
    assert "the failed stack was deleted" in line
    assert "deleting it so that the next deploy is not blocked" in err
    assert stack_status(aws) is None

    # WHEN the cause is fixed, THEN the next deploy creates the stack
    logs.delete_log_group(logGroupName="/aws/lambda/iris")
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    assert stack_status(aws) == "CREATE_COMPLETE"


# --- invoke --aws -----------------------------------------------------------------------------


@pytest.mark.slow
def test_invoke_aws_calls_the_deployed_alias(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from modelambda.deploy import plan

    # (this deploy also sends its template by URL, as one over CloudFormation's 51,200
    # bytes of TemplateBody goes)
    monkeypatch.setattr(plan, "TEMPLATE_BODY_MAX", 100)
    directory = make_service("bundle")
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    puts = [bucket for op, bucket in zip(recorded.operations, recorded.buckets, strict=True)
            if op in ("s3:PutObject", "s3:CreateMultipartUpload")]
    assert puts == ["modelambda-artifacts-123456789012-us-east-1"] * 2  # zip, template
    assert stack_status(aws) == "CREATE_COMPLETE"
    # moto skips AWS::Lambda::Alias: make the alias the template declares, as Lambda would
    lam = aws.client("lambda")
    version = lam.publish_version(FunctionName="iris")["Version"]
    lam.create_alias(FunctionName="iris", Name="live", FunctionVersion=version)
    capsys.readouterr()
    recorded.clear()
    request = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    code = main(["invoke", str(directory), "--aws", "--endpoint-url", aws.url,
                 "--data", json.dumps(request)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == request  # moto's functions (no Docker) echo the payload
    assert "invoke: iris:live (version" in err and "ms round trip" in err
    assert recorded.operations == ["lambda:Invoke"]
    # by name, the alias given
    code = main(["invoke", "iris", "--aws", "--endpoint-url", aws.url, "--qualifier", "live",
                 "--data", "@" + str(directory / "request.json")])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == json.loads((directory / "request.json").read_text())


# --- s3: the model store the template creates ------------------------------------------------


@pytest.mark.slow
def test_s3_publishes_after_the_stack_and_promote_moves_the_alias_without_redeploy(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from modelambda import modelstore
    from modelambda.spec import load_spec, model_files, version_of

    directory = make_service("s3", extra='bucket = "iris-models"')
    version = version_of(model_files(load_spec(directory).model_path))
    store = modelstore.S3Store("iris-models", "models", aws.client("s3"))

    # GIVEN no stack: the stack creates the model bucket, then the model is published into it
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    assert stack_status(aws) == "CREATE_COMPLETE"
    template = sent(directory)
    (bucket,) = resources_of(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["BucketName"] == "iris-models"
    assert bucket["DeletionPolicy"] == "Retain"
    executed = recorded.operations.index("cloudformation:ExecuteChangeSet")
    into_model_bucket = [i for i, (op, name) in enumerate(zip(recorded.operations,
                                                              recorded.buckets, strict=True))
                         if name == "iris-models" and op in ("s3:PutObject",
                                                             "s3:CreateMultipartUpload")]
    assert into_model_bucket and min(into_model_bucket) > executed, recorded.operations
    assert modelstore.aliases(store, "iris")["live"]["version"] == version
    capsys.readouterr()

    # WHEN a new version is published and promoted with `modelambda models` (no redeploy)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.url)
    where = "s3://iris-models/models"
    assert main(["models", "publish", str(directory), "--version", "v2", "--store", where]) == 0
    assert main(["models", "promote", str(directory), "v2", "--alias", "live",
                 "--store", where]) == 0
    # THEN the alias in the bucket the template created points at it
    assert capsys.readouterr().out.strip().endswith(f"live: {version} -> v2")
    assert modelstore.aliases(store, "iris")["live"]["version"] == "v2"

    # WHEN redeployed with another memory size, THEN the alias stays where promote put it
    set_key(directory, "service", "memory_mb", "1024")
    assert deploy(directory, aws, "--yes") == 0
    err = capsys.readouterr().err
    assert stack_status(aws) == "UPDATE_COMPLETE"
    assert "'live' stays at v2" in err
    assert modelstore.aliases(store, "iris")["live"]["version"] == "v2"

    # WHEN deleted, THEN the model bucket is kept with its versions, and it says so
    assert main(["delete", str(directory), "--endpoint-url", aws.url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "kept: model bucket s3://iris-models: 2 version(s) of iris" in out
    assert sorted(modelstore.versions(store, "iris")) == sorted([version, "v2"])

    # WHEN deployed again, THEN the kept bucket is used as it is (CloudFormation could not
    # create it again), and the plan says so
    assert deploy(directory, aws, "--yes") == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "the model bucket s3://iris-models exists outside the stack" in err
    assert stack_status(aws) == "CREATE_COMPLETE"
    assert not resources_of(sent(directory), "AWS::S3::Bucket")
    assert modelstore.aliases(store, "iris")["live"]["version"] == "v2"


# --- image: pushed, its digest in the template -----------------------------------------------


@pytest.mark.slow
def test_image_is_pushed_and_its_digest_deployed(
        aws: MotoServer, recorded: Recorded, make_service: Callable[..., Path],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.deploy.registry import LocalRegistry
    from tests.deploy.test_oci import push_base

    directory = make_service("image")

    # GIVEN ECR (the default), THEN the plan deploys the repository first, pushes, then the
    # function (which cannot be created before its image exists); the dry run only reads
    assert deploy(directory, aws, "--dry-run") == 0
    out = capsys.readouterr().out
    assert recorded.changing() == []
    assert "-repository (CREATE)" in out and "+ Repository" in out
    assert "push the image to 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelambda/iris:" \
        in out
    assert out.index("-repository (CREATE)") < out.index("push the image") < \
        out.index("(UPDATE)")

    # GIVEN a registry (moto's ECR has no registry API), THEN one change set with the digest
    with LocalRegistry(tmp_path / "registry") as registry:
        base = push_base(registry.host, "lambda/python", "3.12", tmp_path / "base")
        args = ["--yes", "--registry", registry.host, "--base-image", base.reference]
        assert deploy(directory, aws, *args) == 0, capsys.readouterr().err
        assert stack_status(aws) == "CREATE_COMPLETE"
        props = function_props(sent(directory))
        assert props["PackageType"] == "Image"
        uri = props["Code"]["ImageUri"]
        assert uri.startswith(f"{registry.host}/modelambda/iris@sha256:")
        record = json.loads((directory / ".modelambda" / "deploy" / STACK / "deploy.json")
                            .read_text())
        assert record["image_uri"] == uri
        check_common(sent(directory), 512)
        repositories = aws.client("ecr").describe_repositories()["repositories"]
        assert [r["repositoryName"] for r in repositories] == ["modelambda/iris"]
        capsys.readouterr()

        # WHEN the memory size changes, THEN the same image (nothing uploaded) and an update
        set_key(directory, "service", "memory_mb", "1024")
        assert deploy(directory, aws, *args) == 0
        err = capsys.readouterr().err
        assert "0 blobs uploaded" in err
        assert stack_status(aws) == "UPDATE_COMPLETE"
        assert function_props(sent(directory))["Code"]["ImageUri"] == uri
        config = aws.client("lambda").get_function(FunctionName="iris")["Configuration"]
        assert config["MemorySize"] == 1024

        # WHEN nothing changed, THEN no changes
        assert deploy(directory, aws, *args) == 0
        assert "no changes" in capsys.readouterr().err

    # WHEN deleted, THEN the repository and the image are kept, and it says so
    assert main(["delete", str(directory), "--endpoint-url", aws.url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "kept: Repository (AWS::ECR::Repository, modelambda/iris)" in out
    assert f"kept: image {uri} in its registry" in out
    assert stack_status(aws) is None


# --- MiniLM: a real 90 MB model with a tokenizer ---------------------------------------------


@pytest.fixture(scope="module")
def minilm_service(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the MiniLM service for the module: each strategy is built once, by the
    first deploy, and reused by the next ones (the build is reused when nothing changed)."""
    import shutil

    target = tmp_path_factory.mktemp("minilm-deploy") / "minilm-embeddings"
    shutil.copytree(minilm_dir, target, ignore=shutil.ignore_patterns(".modelambda"))
    return target


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["layer", "s3"])
def test_minilm_deploys_and_says_no_changes(
        strategy: str, minilm_service: Path, aws: MotoServer, recorded: Recorded,
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = "modelambda-minilm-embeddings"
    args = ["--strategy", strategy, "--yes"]
    assert deploy(minilm_service, aws, *args) == 0, capsys.readouterr().err
    assert stack_status(aws, stack) == "CREATE_COMPLETE"
    template = sent(minilm_service, stack)
    props = function_props(template)
    assert props["MemorySize"] == 2048 and props["FunctionName"] == "minilm-embeddings"
    if strategy == "layer":  # the model (with its tokenizer) in its own layer, last
        assert len(props["Layers"]) == 2
    else:  # the model in the store the stack created: the function ships without it
        from modelambda import modelstore

        store = modelstore.S3Store("modelambda-minilm-embeddings", "models", aws.client("s3"))
        (version,) = modelstore.versions(store, "all-MiniLM-L6-v2")
        manifest = modelstore.manifest(store, "all-MiniLM-L6-v2", version)
        assert manifest is not None
        assert {"model.onnx", "tokenizer.json"} <= set(manifest["files"])
    capsys.readouterr()
    recorded.clear()
    assert deploy(minilm_service, aws, *args) == 0
    assert "no changes" in capsys.readouterr().err
    assert not recorded.named("PutObject") and not recorded.named("CreateMultipartUpload")
    assert main(["delete", str(minilm_service), "--strategy", strategy, "--endpoint-url",
                 aws.url, "--yes"]) == 0
    assert stack_status(aws, stack) is None
