"""`modelambda template`: every strategy's SAM template and its offline CloudFormation
translation pass cfn-lint, for iris and the real MiniLM model; what each strategy deploys
(and what moto later drops: layers, image, file systems, /tmp, architectures, SnapStart,
URLs, aliases) is checked here on the translated template; the function's role grants only
what it does.

Real builds are made once per strategy and model (module fixtures, no import check); the
option tests use a stand-in build (artifacts named by made-up hashes), which is all a
template needs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelambda.cli.main import main
from modelambda.deploy.template import (
    ArtifactLocations,
    cloudformation,
    content_key,
    lint,
    locations_for,
    sam_template,
    uploads,
)
from modelambda.errors import SpecError
from modelambda.package.artifacts import Artifact, BuildResult
from modelambda.package.build import build
from modelambda.spec import ServiceSpec, load_spec
from tests.conftest import IRIS, MINILM_EXAMPLE, link_minilm

STRATEGIES = ("bundle", "layer", "image", "s3", "endpoint", "efs")
REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/modelambda/iris@sha256:" + "a" * 64
SERVING_IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sklearn-serving:1.0"


# --- reading templates ---------------------------------------------------------------------


def text(value: Any) -> Any:
    """An intrinsic as text (``${Name}`` for a Ref), to compare ARNs and URLs."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return "${" + arg + "}"
        if name == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if name == "Fn::Join":
            return arg[0].join(str(text(p)) for p in arg[1])
        if name == "Fn::Sub":
            return arg
    if isinstance(value, dict):
        return {k: text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [text(v) for v in value]
    return value


def of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == type_}


def one(template: dict[str, Any], type_: str) -> dict[str, Any]:
    (body,) = of_type(template, type_).values()
    props: dict[str, Any] = body.get("Properties", {})
    return props


def statements(template: dict[str, Any], role: str = "FunctionRole") -> list[dict[str, Any]]:
    policy = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    found: list[dict[str, Any]] = policy["Statement"]
    return found


def granted(template: dict[str, Any], role: str = "FunctionRole") -> dict[str, list[Any]]:
    """action -> the resources (as text) it is granted on."""
    grants: dict[str, list[Any]] = {}
    for statement in statements(template, role):
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            grants.setdefault(action, []).extend(
                text(resources) if isinstance(resources, list) else [text(resources)])
    return grants


def assert_lint_clean(sam: dict[str, Any]) -> dict[str, Any]:
    assert lint(sam, REGION) == []
    cfn = cloudformation(sam, REGION)
    assert lint(cfn, REGION) == []
    return cfn


# --- services and builds ---------------------------------------------------------------------


def make_service(root: Path, source: Path = IRIS, extra: str = "", service: str = "") -> Path:
    """A copy of an example whose spec gets ``service`` lines in [service] and ``extra``
    tables appended."""
    target = root / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
    if source == MINILM_EXAMPLE:
        link_minilm(target / "model")
    spec = target / "modelambda.toml"
    toml = spec.read_text()
    for line in service.splitlines():  # replaces the example's own value, if any
        toml = re.sub(rf"(?m)^{line.split('=')[0].strip()} = .*\n", "", toml)
    if service:
        toml = toml.replace("[service]\n", f"[service]\n{service}\n", 1)
    if "[strategy]" in extra:
        toml = toml.replace('[strategy]\nkind = "bundle"\n', "")
    spec.write_text(toml + "\n" + extra)
    return target


def stand_in_build(spec: ServiceSpec) -> BuildResult:
    """What a build returns, without building: artifacts named by made-up hashes."""
    unit = spec.strategy.unit
    out = spec.root / ".modelambda" / "build" / unit.name
    out.mkdir(parents=True, exist_ok=True)

    def artifact(name: str, kind: str) -> Artifact:
        made = Artifact(name, kind, out / name, [], f"stand-in {name}")
        made.sha256 = hashlib.sha256(f"{unit.name}/{name}".encode()).hexdigest()
        return made

    if unit.name == "image":
        return BuildResult(spec, unit, out, artifact("context", "image-context"), [],
                           {"architecture": spec.service.architecture})
    layers = ([artifact("layer-1-dependencies.zip", "layer"), artifact("layer-2-model.zip",
                                                                       "layer")]
              if unit.name == "layer" else [])
    return BuildResult(spec, unit, out, artifact("function.zip", "function"), layers,
                       {"architecture": spec.service.architecture})


@pytest.fixture
def service(tmp_path: Path) -> Callable[..., ServiceSpec]:
    def make(strategy: str = "bundle", extra: str = "", service: str = "") -> ServiceSpec:
        root = tmp_path / strategy / f"{len(list(tmp_path.glob(f'{strategy}/*')))}"
        root.mkdir(parents=True)
        return load_spec(make_service(root, extra=extra, service=service)
                         ).for_strategy(strategy)
    return make


@pytest.fixture(scope="module")
def services(plain_services: dict[str, Path]) -> dict[str, ServiceSpec]:
    """Plain iris and MiniLM services: their specs name `bundle` and nothing else, so every
    strategy runs on its local defaults (e.g. s3's bucket modelambda-<service>). Shared with
    the other tests that build every strategy (the builds are reused)."""
    return {name: load_spec(path) for name, path in plain_services.items()}


@pytest.fixture(scope="module")
def built(services: dict[str, ServiceSpec]) -> Callable[[str, str], BuildResult]:
    cache: dict[tuple[str, str], BuildResult] = {}

    def get(name: str, strategy: str) -> BuildResult:
        if (name, strategy) not in cache:
            cache[name, strategy] = build(services[name], strategy)
        return cache[name, strategy]

    return get


# --- every strategy, both models: lint-clean SAM and CloudFormation ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model", ["iris", "minilm"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_template_passes_cfn_lint(
        services: dict[str, ServiceSpec], built: Callable[[str, str], BuildResult],
        model: str, strategy: str) -> None:
    result = built(model, strategy)
    spec = services[model]
    sam = sam_template(spec, result)
    cfn = assert_lint_clean(sam)
    # the common part: the function on its alias and URL, its role and log group, outputs
    function = one(cfn, "AWS::Lambda::Function")
    name = spec.service.name
    assert function["FunctionName"] == name
    assert function["MemorySize"] == spec.service.memory_mb
    assert function["Architectures"] == [result.manifest["architecture"]]
    assert function["EphemeralStorage"] == {"Size": 512}
    if strategy == "image":
        assert function["PackageType"] == "Image" and "Runtime" not in function
        assert text(function["Code"]["ImageUri"]) == "${ImageUri}"
    else:
        assert function["Handler"] == "modelambda.runtime.handler.handle"
        assert function["Runtime"] == spec.service.runtime
        assert function["Code"] == {"S3Bucket": {"Ref": "ArtifactBucket"},
                                    "S3Key": f"{name}/{result.function.sha256}.zip"}
    assert one(cfn, "AWS::Lambda::Alias")["Name"] == "live"
    assert text(one(cfn, "AWS::Lambda::Url")["TargetFunctionArn"]) == "${FunctionAliaslive}"
    assert one(cfn, "AWS::Lambda::Url")["AuthType"] == "AWS_IAM"
    assert not of_type(cfn, "AWS::Lambda::Permission")  # nothing public
    log_group = one(cfn, "AWS::Logs::LogGroup")
    assert log_group == {**log_group, "LogGroupName": f"/aws/lambda/{name}",
                         "RetentionInDays": 30}
    assert {"FunctionArn", "AliasArn", "FunctionUrl"} <= set(cfn["Outputs"])
    assert_least_privilege(cfn, name)


def assert_least_privilege(cfn: dict[str, Any], name: str) -> None:
    """The function's role: its own log streams, then only scoped grants; '*' only for
    the actions that have no resource scoping (VPC network interfaces, X-Ray)."""
    grants = granted(cfn)
    assert grants.pop("logs:CreateLogStream") == grants.pop("logs:PutLogEvents") == [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"/aws/lambda/{name}:*"]
    for action, resources in grants.items():
        assert "*" not in action
        if "*" in resources:
            assert action.startswith(("ec2:", "xray:")), action
    role = one(cfn, "AWS::IAM::Role") if len(of_type(cfn, "AWS::IAM::Role")) == 1 else \
        cfn["Resources"]["FunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role


# --- per strategy: what it deploys ---------------------------------------------------------


@pytest.mark.slow
def test_layer_template_lists_the_layers_in_built_order(
        services: dict[str, ServiceSpec], built: Callable[[str, str], BuildResult]) -> None:
    result = built("iris", "layer")
    where = locations_for(services["iris"], result, "my-artifacts")
    cfn = cloudformation(sam_template(services["iris"], result, where), REGION)
    listed = [text(layer)[2:-1] for layer in one(cfn, "AWS::Lambda::Function")["Layers"]]
    assert len(listed) == len(result.layers) == 2
    for logical, artifact in zip(listed, result.layers, strict=True):
        layer = cfn["Resources"][logical]
        assert layer["Type"] == "AWS::Lambda::LayerVersion"
        assert layer["Properties"]["Content"] == {
            "S3Bucket": "my-artifacts", "S3Key": f"iris/{artifact.sha256}.zip"}
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    assert [cfn["Resources"][n]["Properties"]["LayerName"] for n in listed] == [
        "iris-dependencies", "iris-model"]  # the model last
    assert "Parameters" not in cfn  # deploy said where everything is


def test_locations_are_content_addressed(service: Callable[..., ServiceSpec]) -> None:
    spec = service("layer")
    result = stand_in_build(spec)
    where = locations_for(spec, result, "my-artifacts")
    assert where == ArtifactLocations("my-artifacts", {
        a.name: f"iris/{a.sha256}.zip" for a in (result.function, *result.layers)})
    assert [a.name for a in uploads(spec, result)] == [
        "function.zip", "layer-1-dependencies.zip", "layer-2-model.zip"]
    assert content_key(spec, "model.tar.gz", "ab" * 32) == f"iris/{'ab' * 32}.tar.gz"
    # an image is pushed, not uploaded
    assert uploads(spec.for_strategy("image"), stand_in_build(spec.for_strategy("image"))) == []


def test_image_by_digest_and_its_repository(service: Callable[..., ServiceSpec]) -> None:
    spec = service("image")
    result = stand_in_build(spec)
    sam = sam_template(spec, result, locations_for(spec, result, "my-artifacts", IMAGE))
    cfn = assert_lint_clean(sam)
    function = one(cfn, "AWS::Lambda::Function")
    assert function["PackageType"] == "Image"
    assert function["Code"] == {"ImageUri": IMAGE}
    assert "Handler" not in function and "Runtime" not in function
    repository = of_type(cfn, "AWS::ECR::Repository")["Repository"]
    assert repository["Properties"]["RepositoryName"] == "modelambda/iris"
    assert repository["DeletionPolicy"] == "Retain"  # delete keeps the images
    assert text(cfn["Outputs"]["RepositoryUri"]["Value"]) == (
        "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/modelambda/iris")


def test_image_before_its_first_push_deploys_the_repository_only(
        service: Callable[..., ServiceSpec]) -> None:
    spec = service("image")
    result = stand_in_build(spec)
    cfn = assert_lint_clean(sam_template(spec, result, locations_for(spec, result, "b-1")))
    assert {b["Type"] for b in cfn["Resources"].values()} == {"AWS::ECR::Repository"}
    assert set(cfn["Outputs"]) == {"RepositoryUri"}


def test_image_in_an_existing_repository(service: Callable[..., ServiceSpec]) -> None:
    spec = service("image", extra='[strategy]\nkind = "image"\nrepository = "team/iris"\n')
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    assert not of_type(cfn, "AWS::ECR::Repository")
    assert cfn["Parameters"]["ImageUri"]["Type"] == "String"
    assert text(cfn["Outputs"]["RepositoryUri"]["Value"]).endswith("/team/iris")


def test_s3_reads_only_its_model_prefix(service: Callable[..., ServiceSpec]) -> None:
    spec = service("s3", extra='[strategy]\nkind = "s3"\nbucket = "acme-models"\n'
                               'prefix = "prod/models"\n')
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    grants = granted(cfn)
    # GetObject on <prefix>/<model>/* and nothing else: the runtime GETs the alias record,
    # the manifest and the files; it never lists (runtime/sources/s3.py, storelayout.py)
    assert grants["s3:GetObject"] == ["arn:${AWS::Partition}:s3:::acme-models/prod/models/iris/*"]
    assert [a for a in grants if a.startswith("s3:")] == ["s3:GetObject"]
    bucket = of_type(cfn, "AWS::S3::Bucket")["ModelBucket"]
    assert bucket["Properties"]["BucketName"] == "acme-models"
    assert bucket["DeletionPolicy"] == "Retain"  # delete keeps the model versions
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    deny = one(cfn, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}
    assert cfn["Outputs"]["ModelStore"]["Value"] == "s3://acme-models/prod/models/iris"


def test_s3_with_an_existing_bucket(service: Callable[..., ServiceSpec]) -> None:
    spec = service("s3", extra='[strategy]\nkind = "s3"\nbucket = "acme-models"\n'
                               'create_bucket = false\n')
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    assert not of_type(cfn, "AWS::S3::Bucket") and not of_type(cfn, "AWS::S3::BucketPolicy")
    assert granted(cfn)["s3:GetObject"] == ["arn:${AWS::Partition}:s3:::acme-models/models/iris/*"]
    # deploy-only keys stay out of the function's config
    from modelambda.spec import function_config

    assert "create_bucket" not in function_config(spec).source


def test_s3_prefix_with_iam_wildcards_is_refused(service: Callable[..., ServiceSpec]) -> None:
    spec = service("s3", extra='[strategy]\nkind = "s3"\nbucket = "acme-models"\n'
                               'prefix = "models*"\n')
    with pytest.raises(SpecError, match=r"\[strategy\] prefix = 'models\*': no '\*'"):
        sam_template(spec, stand_in_build(spec))


def test_efs_in_a_new_vpc(service: Callable[..., ServiceSpec]) -> None:
    spec = service("efs")
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    function = one(cfn, "AWS::Lambda::Function")
    (mount,) = function["FileSystemConfigs"]
    assert mount["LocalMountPath"] == "/mnt/models"
    access_point_arn = ("arn:${AWS::Partition}:elasticfilesystem:${AWS::Region}:"
                        "${AWS::AccountId}:access-point/${AccessPoint}")
    assert text(mount["Arn"]) == access_point_arn
    assert text(function["VpcConfig"]) == {
        "SecurityGroupIds": ["${FunctionSecurityGroup.GroupId}"],
        "SubnetIds": ["${Subnet1}", "${Subnet2}"]}
    assert set(cfn["Resources"]["Function"]["DependsOn"]) >= {"MountTarget1", "MountTarget2"}
    # two private subnets in two AZs, one route table, S3 through a gateway endpoint, no NAT
    subnets = of_type(cfn, "AWS::EC2::Subnet")
    assert [s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in subnets.values()] \
        == [0, 1]
    assert not any(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    assert not of_type(cfn, "AWS::EC2::NatGateway")
    assert not of_type(cfn, "AWS::EC2::InternetGateway")
    endpoint = one(cfn, "AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert text(endpoint["ServiceName"]) == "com.amazonaws.${AWS::Region}.s3"
    assert text(endpoint["RouteTableIds"]) == ["${RouteTable}"]  # moto crashes without
    assert len(of_type(cfn, "AWS::EC2::SubnetRouteTableAssociation")) == 2
    assert_nfs_only_from_the_function(cfn)
    point = one(cfn, "AWS::EFS::AccessPoint")
    assert point["PosixUser"] == {"Uid": "1000", "Gid": "1000"}
    assert point["RootDirectory"] == {"Path": "/modelambda", "CreationInfo": {
        "OwnerUid": "1000", "OwnerGid": "1000", "Permissions": "755"}}
    assert of_type(cfn, "AWS::EFS::FileSystem")["FileSystem"]["DeletionPolicy"] == "Retain"
    assert one(cfn, "AWS::EFS::FileSystem")["Encrypted"] is True
    # mount (read-only: no ClientWrite) through this access point only
    (mount_grant,) = [s for s in statements(cfn) if "elasticfilesystem:ClientMount" in s["Action"]]
    assert mount_grant["Action"] == ["elasticfilesystem:ClientMount"]
    assert text(mount_grant["Resource"]) == [
        "arn:${AWS::Partition}:elasticfilesystem:${AWS::Region}:${AWS::AccountId}:"
        "file-system/${FileSystem}"]
    assert text(mount_grant["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]) \
        == access_point_arn
    assert "elasticfilesystem:ClientWrite" not in granted(cfn)
    assert "ec2:CreateNetworkInterface" in granted(cfn)


def assert_nfs_only_from_the_function(cfn: dict[str, Any]) -> None:
    groups = of_type(cfn, "AWS::EC2::SecurityGroup")
    assert set(groups) == {"FunctionSecurityGroup", "MountTargetSecurityGroup"}
    assert "SecurityGroupIngress" not in groups["MountTargetSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in groups["FunctionSecurityGroup"]["Properties"]
    (ingress,) = of_type(cfn, "AWS::EC2::SecurityGroupIngress").values()
    assert text(ingress["Properties"]) == {
        "GroupId": "${MountTargetSecurityGroup.GroupId}", "IpProtocol": "tcp",
        "FromPort": 2049, "ToPort": 2049,
        "SourceSecurityGroupId": "${FunctionSecurityGroup.GroupId}",
        "Description": "NFS from the function only"}
    for target in of_type(cfn, "AWS::EFS::MountTarget").values():
        assert text(target["Properties"]["SecurityGroups"]) == [
            "${MountTargetSecurityGroup.GroupId}"]


def test_efs_in_an_existing_vpc(service: Callable[..., ServiceSpec]) -> None:
    subnets = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    spec = service("efs", extra='[strategy]\nkind = "efs"\nmount_path = "/mnt/iris"\n'
                                'vpc_id = "vpc-0a1b2c3d4e5f60718"\n'
                                f"subnet_ids = {json.dumps(subnets)}\n")
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    for created in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::VPCEndpoint"):
        assert not of_type(cfn, created)
    function = one(cfn, "AWS::Lambda::Function")
    assert function["VpcConfig"]["SubnetIds"] == subnets
    assert function["FileSystemConfigs"][0]["LocalMountPath"] == "/mnt/iris"
    assert sorted(t["Properties"]["SubnetId"] for t in
                  of_type(cfn, "AWS::EFS::MountTarget").values()) == subnets
    assert {g["Properties"]["VpcId"] for g in of_type(cfn, "AWS::EC2::SecurityGroup").values()} \
        == {"vpc-0a1b2c3d4e5f60718"}
    assert_nfs_only_from_the_function(cfn)
    from modelambda.spec import function_config

    assert not {"vpc_id", "subnet_ids"} & set(function_config(spec).source)


def test_sagemaker_endpoint_that_exists(service: Callable[..., ServiceSpec]) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "sagemaker"\n'
                                     'name = "Iris-Prod"\n')
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    assert not of_type(cfn, "AWS::SageMaker::Endpoint")
    grants = granted(cfn)
    # SageMaker writes endpoint names in lower case in its ARNs
    assert grants["sagemaker:InvokeEndpoint"] == [
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/iris-prod"]
    assert [a for a in grants if a.startswith("sagemaker:")] == ["sagemaker:InvokeEndpoint"]


def test_sagemaker_endpoint_created_real_time(service: Callable[..., ServiceSpec]) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "sagemaker"\n'
                                     f'model_image = "{SERVING_IMAGE}"\n')
    result = stand_in_build(spec)
    where = locations_for(spec, result, "my-artifacts")
    tarball = next(a for a in uploads(spec, result) if a.name == "model.tar.gz")
    assert tarball.path.is_file() and where.keys["model.tar.gz"] == \
        f"iris/{tarball.sha256}.tar.gz"
    cfn = assert_lint_clean(sam_template(spec, result, where))
    # written once per build: a second ask reuses it (MiniLM's is 80 MB of gzip)
    result.manifest["inputs_fingerprint"] = "stand-in"
    first = next(a for a in uploads(spec, result) if a.name == "model.tar.gz")
    written = first.path.stat().st_mtime_ns
    again = next(a for a in uploads(spec, result) if a.name == "model.tar.gz")
    assert again.sha256 == first.sha256 == tarball.sha256
    assert first.path.stat().st_mtime_ns == written
    model = one(cfn, "AWS::SageMaker::Model")
    assert model["PrimaryContainer"]["Image"] == SERVING_IMAGE
    assert text(model["PrimaryContainer"]["ModelDataUrl"]) == \
        f"s3://my-artifacts/iris/{tarball.sha256}.tar.gz"
    (variant,) = one(cfn, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    assert one(cfn, "AWS::SageMaker::Endpoint")["EndpointName"] == "iris"
    # the function may invoke that endpoint only; SageMaker may read that archive only
    assert granted(cfn)["sagemaker:InvokeEndpoint"] == ["${SageMakerEndpoint}"]
    assert granted(cfn, "SageMakerRole")["s3:GetObject"] == [
        f"arn:${{AWS::Partition}}:s3:::my-artifacts/iris/{tarball.sha256}.tar.gz"]
    assert granted(cfn, "SageMakerRole")["ecr:BatchGetImage"] == [
        f"arn:${{AWS::Partition}}:ecr:{REGION}:123456789012:repository/sklearn-serving"]


def test_sagemaker_serverless_endpoint(service: Callable[..., ServiceSpec]) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "sagemaker"\n'
                                     f'model_image = "{SERVING_IMAGE}"\n'
                                     "serverless_memory_mb = 2048\n"
                                     "serverless_max_concurrency = 5\n")
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    (variant,) = one(cfn, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant


def test_v2_endpoint_deploys_with_its_url(service: Callable[..., ServiceSpec]) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "v2"\n'
                                     'url = "https://models.example.com"\n')
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    assert not [a for a in granted(cfn) if a.startswith("sagemaker:")]


def test_v2_endpoint_without_url_is_refused_at_template_time(
        service: Callable[..., ServiceSpec]) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "v2"\n')
    with pytest.raises(SpecError) as info:
        sam_template(spec, stand_in_build(spec))
    (problem,) = info.value.problems
    assert problem.startswith("[strategy] url (missing): a v2 endpoint needs the URL")


def test_sagemaker_endpoint_name_must_suit_sagemaker(service: Callable[..., ServiceSpec]
                                                      ) -> None:
    spec = service("endpoint", extra='[strategy]\nkind = "endpoint"\nprotocol = "sagemaker"\n'
                                     'name = "iris_prod"\n')
    with pytest.raises(SpecError, match="no '_'"):
        sam_template(spec, stand_in_build(spec))


# --- options applied to a strategy ---------------------------------------------------------


def test_service_and_deploy_options(service: Callable[..., ServiceSpec]) -> None:
    spec = service("bundle", service=(
        'architecture = "arm64"\nephemeral_storage_mb = 2048\nreserved_concurrency = 20\n'
        'provisioned_concurrency = 3\ntracing = true\nlog_format = "JSON"'),
        extra=('[deploy]\nalias = "prod"\nurl_auth = "NONE"\nlog_retention_days = 14\n'
               'stack_name = "iris-prod"\n[deploy.tags]\nteam = "ml"\n'))
    assert spec.stack_name == "iris-prod"
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    function = one(cfn, "AWS::Lambda::Function")
    assert function["Architectures"] == ["arm64"]
    assert function["EphemeralStorage"] == {"Size": 2048}
    assert function["ReservedConcurrentExecutions"] == 20
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"] == {"LogFormat": "JSON",
                                         "LogGroup": {"Ref": "FunctionLogGroup"}}
    assert {"Key": "team", "Value": "ml"} in function["Tags"]
    alias = one(cfn, "AWS::Lambda::Alias")
    assert alias["Name"] == "prod"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 3}
    url = one(cfn, "AWS::Lambda::Url")
    assert url["AuthType"] == "NONE" and text(url["TargetFunctionArn"]) == "${FunctionAliasprod}"
    # a public URL: invoke permissions for everyone, through the URL only
    permissions = [p["Properties"] for p in of_type(cfn, "AWS::Lambda::Permission").values()]
    assert {p["Action"] for p in permissions} == {"lambda:InvokeFunctionUrl",
                                                  "lambda:InvokeFunction"}
    assert all(p["Principal"] == "*" for p in permissions)
    assert one(cfn, "AWS::Logs::LogGroup")["RetentionInDays"] == 14
    assert granted(cfn)["xray:PutTraceSegments"] == ["*"]
    assert {"Key": "team", "Value": "ml"} in one(cfn, "AWS::IAM::Role")["Tags"]


def test_snapstart_on_published_versions(service: Callable[..., ServiceSpec]) -> None:
    spec = service("s3", service="snapstart = true")
    cfn = cloudformation(sam_template(spec, stand_in_build(spec)), REGION)
    assert one(cfn, "AWS::Lambda::Function")["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (version,) = of_type(cfn, "AWS::Lambda::Version")
    assert text(one(cfn, "AWS::Lambda::Alias")["FunctionVersion"]) == f"${{{version}.Version}}"


def test_a_changed_setting_publishes_a_new_version(service: Callable[..., ServiceSpec]) -> None:
    first = service("bundle")
    second = service("bundle", service="snapstart = true")
    versions = [set(of_type(cloudformation(sam_template(s, stand_in_build(s)), REGION),
                            "AWS::Lambda::Version")) for s in (first, second)]
    assert versions[0] != versions[1]


def test_a_new_model_layer_publishes_a_new_version(service: Callable[..., ServiceSpec]
                                                   ) -> None:
    # the function's own zip is unchanged: without PublishLambdaVersion on the layers SAM
    # would keep the old version, and the alias the old model
    spec = service("layer")
    result = stand_in_build(spec)
    before = set(of_type(cloudformation(sam_template(spec, result), REGION),
                         "AWS::Lambda::Version"))
    result.layers[1].sha256 = "f" * 64
    after = set(of_type(cloudformation(sam_template(spec, result), REGION),
                        "AWS::Lambda::Version"))
    assert before != after


def test_deploy_artifact_bucket_and_no_aws_call(service: Callable[..., ServiceSpec],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the translation made an AWS client")

    monkeypatch.setattr(boto3.session.Session, "client", no_client)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    spec = service("bundle", extra='[deploy]\nartifact_bucket = "acme-artifacts"\n')
    result = stand_in_build(spec)
    cfn = cloudformation(sam_template(spec, result), REGION)
    assert "Parameters" not in cfn
    assert one(cfn, "AWS::Lambda::Function")["Code"]["S3Bucket"] == "acme-artifacts"


# --- the command ---------------------------------------------------------------------------


@pytest.mark.slow
def test_command_writes_the_template(services: dict[str, ServiceSpec],
                                     built: Callable[[str, str], BuildResult],
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = built("iris", "s3")  # the command reuses this build
    directory = services["iris"].root
    assert main(["template", str(directory), "--strategy", "s3"]) == 0
    out, err = capsys.readouterr()
    sam = json.loads(out)
    assert sam["Transform"] == "AWS::Serverless-2016-10-31"
    assert sam["Resources"]["Function"]["Properties"]["CodeUri"]["Key"] == \
        f"iris/{result.function.sha256}.zip"
    assert f"iris/{result.function.sha256}.zip" in err  # where to upload it by hand
    target = tmp_path / "template.json"
    assert main(["template", str(directory), "--strategy", "s3", "--format", "cfn",
                 "--bucket", "my-artifacts", "-o", str(target), "--check"]) == 0
    cfn = json.loads(target.read_text())
    assert "Transform" not in cfn and "Parameters" not in cfn
    assert one(cfn, "AWS::Lambda::Function")["Code"]["S3Bucket"] == "my-artifacts"


def test_command_refuses_a_v2_endpoint_without_url(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_service(tmp_path, extra='[strategy]\nkind = "endpoint"\n')
    assert main(["template", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "modelambda template: error:" in err and "[strategy] url (missing)" in err
    assert not (directory / ".modelambda" / "build").exists()  # refused before building


def test_command_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["template", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_event_retries_and_age_deploy_as_event_invoke_config(
        service: Callable[..., ServiceSpec]) -> None:
    spec = service("bundle", extra="[service.events]\nmaximum_retry_attempts = 0\n"
                                   "maximum_event_age_s = 600\n")
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    config = one(cfn, "AWS::Lambda::EventInvokeConfig")
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (0, 600)
    assert config["Qualifier"] == spec.deploy.alias
    plain = service("bundle")  # Lambda's defaults: nothing to configure
    assert of_type(cloudformation(sam_template(plain, stand_in_build(plain)), REGION),
                   "AWS::Lambda::EventInvokeConfig") == {}


def test_service_environment_goes_into_the_functions_environment(
        service: Callable[..., ServiceSpec]) -> None:
    spec = service("s3", extra='[service.environment]\nLOG_WHO = "me"\n')
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    variables = one(cfn, "AWS::Lambda::Function")["Environment"]["Variables"]
    assert variables == {"LOG_WHO": "me"}


def test_any_zip_strategy_deploys_the_builds_layers_in_order(
        service: Callable[..., ServiceSpec]) -> None:
    # [service] layers: your own layer zips ship after modelambda's (here: a bundle's none)
    spec = service("bundle")
    result = stand_in_build(spec)
    own = Artifact("layer-1-mylayer.zip", "layer", result.out / "layer-1-mylayer.zip", [],
                   "your layer mylayer.zip (/opt)")
    own.sha256 = "b" * 64
    result.layers.append(own)
    cfn = assert_lint_clean(sam_template(spec, result, locations_for(spec, result, "b-1")))
    (layer,) = of_type(cfn, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["LayerName"] == "iris-mylayer"
    assert len(one(cfn, "AWS::Lambda::Function")["Layers"]) == 1


def test_log_level_deploys_as_the_application_log_level(
        service: Callable[..., ServiceSpec]) -> None:
    spec = service("bundle", service='log_format = "JSON"\nlog_level = "WARN"')
    cfn = assert_lint_clean(sam_template(spec, stand_in_build(spec)))
    assert one(cfn, "AWS::Lambda::Function")["LoggingConfig"] == {
        "LogFormat": "JSON", "ApplicationLogLevel": "WARN", "LogGroup": {"Ref": "FunctionLogGroup"}}
