"""The SAM template's resources: what every strategy deploys, and the builder each strategy
adds its own resources to (``Strategy.deploy_resources``).

Every service gets the function (``AWS::Serverless::Function``: zip with ``CodeUri`` in the
artifact bucket, or ``PackageType: Image``), its execution role with one inline policy that
grants only what the function does (its own log stream, X-Ray when tracing, then what the
strategy adds: a model prefix, an endpoint, an access point), its log group with retention,
the alias that SAM publishes (``AutoPublishAlias``; every property change publishes a version),
the function URL on that alias, and outputs. Values that hold user text go through
``Fn::Join``, never ``Fn::Sub``, so a ``${`` in a name cannot become an expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import modelambda
from modelambda import limits
from modelambda.package.artifacts import HANDLER

if TYPE_CHECKING:
    from modelambda.package.artifacts import BuildResult
    from modelambda.spec import ServiceSpec

FUNCTION = "Function"
ROLE = "FunctionRole"
LOG_GROUP = "FunctionLogGroup"
ARTIFACT_BUCKET = "ArtifactBucket"  # parameters, when deploy has not said where things are
IMAGE_URI = "ImageUri"

# An image in ECR, by tag or (as deploy pushes it) by digest.
ECR_IMAGE = re.compile(r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
                       r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128}|@sha256:[0-9a-f]{64})$")

# Which property holds a resource type's tags, as a list of {Key, Value}.
TAG_LISTS = {
    "AWS::IAM::Role": "Tags", "AWS::Logs::LogGroup": "Tags", "AWS::S3::Bucket": "Tags",
    "AWS::ECR::Repository": "Tags", "AWS::EC2::VPC": "Tags", "AWS::EC2::Subnet": "Tags",
    "AWS::EC2::RouteTable": "Tags", "AWS::EC2::SecurityGroup": "Tags",
    "AWS::EFS::FileSystem": "FileSystemTags", "AWS::EFS::AccessPoint": "AccessPointTags",
    "AWS::SageMaker::Model": "Tags", "AWS::SageMaker::EndpointConfig": "Tags",
    "AWS::SageMaker::Endpoint": "Tags",
}

# What Lambda needs to attach a function to a VPC (AWSLambdaVPCAccessExecutionRole's
# actions); EC2 gives these no resource-level scoping that Lambda's use fits.
VPC_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
               "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
               "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses")

_LOGICAL = re.compile(r"[^A-Za-z0-9]")


# --- intrinsic functions -----------------------------------------------------------------


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(name: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, attribute]}


def join(*parts: Any) -> Any:
    """Concatenate strings and intrinsics; plain strings only give a plain string."""
    flat: list[Any] = []
    for part in parts:  # a nested Fn::Join "" is spliced in
        nested = part.get("Fn::Join") if isinstance(part, dict) else None
        flat.extend(nested[1] if nested and nested[0] == "" else [part])
    merged: list[Any] = []
    for part in flat:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    if len(merged) == 1 and isinstance(merged[0], str):
        return merged[0]
    return {"Fn::Join": ["", merged]}


def arn(service: str, resource: Any, *, region: bool = True, account: bool = True) -> Any:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` of this stack's region and
    account (S3 bucket ARNs have neither)."""
    return join("arn:", ref("AWS::Partition"), f":{service}:",
                ref("AWS::Region") if region else "", ":",
                ref("AWS::AccountId") if account else "", ":", resource)


def logical_id(*words: str) -> str:
    """A CloudFormation logical id from words: alphanumerics only, each word capitalised."""
    return "".join(_LOGICAL.sub("", w[:1].upper() + w[1:]) for w in words if w)


# --- the builder -------------------------------------------------------------------------


class TemplateBuilder:
    """A SAM template under construction for one service and one build.

    ``bucket`` and ``keys`` say where the uploaded artifacts are (the bucket may be a
    ``Ref`` to the ``ArtifactBucket`` parameter); ``image_uri`` is the pushed image
    (a string or a ``Ref``), None when it is not pushed yet. Strategies add resources with
    ``add``, grant the function permissions with ``allow``, and set the function's code
    with ``zip_function`` or ``image_function``.
    """

    def __init__(self, spec: ServiceSpec, build: BuildResult, keys: dict[str, str], *,
                 bucket: str | None = None, image_uri: str | None = None,
                 located: bool = False) -> None:
        self.spec = spec
        self.build = build
        self.keys = keys
        self._bucket = bucket  # None: [deploy] artifact_bucket, else a parameter
        self._image_uri = image_uri
        # located: deploy says where the artifacts are (no image yet: none is pushed);
        # else the template stands open for them (parameters)
        self.located = located
        self.parameters: dict[str, dict[str, Any]] = {}
        self.conditions: dict[str, Any] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.statements: list[dict[str, Any]] = []
        self.environment: dict[str, str] = {}
        self.depends_on: list[str] = []  # (the log group: LoggingConfig refers to it)
        # the SAM function's properties; None when this template deploys no function (then
        # what strategies set on it, and the permissions they grant it, are dropped)
        self.function: dict[str, Any] | None = self._function()

    @property
    def name(self) -> str:
        return self.spec.service.name

    @property
    def architecture(self) -> str:
        """What the artifacts were built for (a build may override the spec's)."""
        return str(self.build.manifest.get("architecture") or self.spec.service.architecture)

    # --- adding ---------------------------------------------------------------------------

    def add(self, logical: str, type_: str, properties: dict[str, Any], **attributes: Any
            ) -> str:
        if logical in self.resources or logical in (FUNCTION, ROLE, LOG_GROUP):
            raise ValueError(f"resource {logical!r} is already in the template")
        resource: dict[str, Any] = {"Type": type_, **attributes, "Properties": properties}
        self.resources[logical] = resource
        return logical

    def allow(self, sid: str, actions: Sequence[str], resources: Sequence[Any] | Any,
              condition: dict[str, Any] | None = None) -> None:
        """Grant the function ``actions`` on ``resources`` (and only those)."""
        statement: dict[str, Any] = {
            "Sid": logical_id(sid), "Effect": "Allow", "Action": sorted(actions),
            "Resource": list(resources) if isinstance(resources, (list, tuple)) else resources}
        if condition:
            statement["Condition"] = condition
        self.statements.append(statement)

    def output(self, name: str, value: Any, description: str) -> None:
        self.outputs[name] = {"Description": description, "Value": value}

    def parameter(self, name: str, description: str, **schema: Any) -> dict[str, Any]:
        self.parameters.setdefault(name, {"Type": "String", "Description": description,
                                          **schema})
        return ref(name)

    # --- where the artifacts are ---------------------------------------------------------

    @property
    def bucket(self) -> Any:
        """The artifact bucket: deploy's, ``[deploy] artifact_bucket``, else a parameter."""
        if self._bucket is not None:
            return self._bucket
        if self.spec.deploy.artifact_bucket:
            return self.spec.deploy.artifact_bucket
        return self.parameter(
            ARTIFACT_BUCKET, "the S3 bucket holding the artifacts under <service>/<sha256>.zip "
            "(modelambda deploy uploads them; by hand: aws s3 cp)",
            AllowedPattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

    def image(self) -> Any:
        """The function's image URI: deploy's (by digest), the ``ImageUri`` parameter when
        the template stands open, None when deploy has pushed no image yet."""
        if self._image_uri is not None:
            return self._image_uri
        if self.located:
            return None
        return self.parameter(
            IMAGE_URI, "the function's image in ECR, by digest: "
            "<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<digest>",
            AllowedPattern=ECR_IMAGE.pattern)

    def key(self, artifact_name: str) -> str:
        try:
            return self.keys[artifact_name]
        except KeyError:
            raise ValueError(f"no S3 key for {artifact_name!r} in the artifact locations "
                             f"(have: {', '.join(sorted(self.keys)) or 'none'})") from None

    def code_uri(self, artifact_name: str) -> dict[str, Any]:
        """A SAM ``CodeUri``/``ContentUri`` object for an uploaded artifact."""
        return {"Bucket": self.bucket, "Key": self.key(artifact_name)}

    def s3_url(self, artifact_name: str) -> Any:
        return join("s3://", self.bucket, "/", self.key(artifact_name))

    def object_arn(self, artifact_name: str) -> Any:
        return join("arn:", ref("AWS::Partition"), ":s3:::", self.bucket, "/",
                    self.key(artifact_name))

    # --- the function's code and network ---------------------------------------------------

    def set(self, **properties: Any) -> None:
        """Set properties of the SAM function (none when the template has no function)."""
        if self.function is not None:
            self.function.update(properties)

    def zip_function(self, artifact_name: str = "function.zip") -> None:
        """The function's code is its zip, and its layers the build's (in the built order:
        Lambda unpacks them in that order to /opt)."""
        if self.function is not None:
            self.set(Runtime=self.spec.service.runtime, Handler=HANDLER,
                     CodeUri=self.code_uri(artifact_name))
            if self.build.layers:
                self.set(Layers=self._layers())

    def _layers(self) -> list[Any]:
        """One ``AWS::Serverless::LayerVersion`` per built layer (modelambda's, then the
        spec's own ``[service] layers``)."""
        spec = self.spec
        layers = []
        for index, artifact in enumerate(self.build.layers, start=1):
            part = artifact.name.removesuffix(".zip").split("-", 2)[-1]  # layer-1-dependencies
            name = self.add(logical_id("Layer", str(index), part),
                            "AWS::Serverless::LayerVersion", {
                "LayerName": f"{spec.service.name}-{part}",
                "Description": f"modelambda: {artifact.contents} (sha256 {artifact.sha256})"
                               [:256],
                "ContentUri": self.code_uri(artifact.name),
                "CompatibleRuntimes": [spec.service.runtime],
                "CompatibleArchitectures": [self.architecture],
                # a new version replaces the old one; function versions keep their copy
                "RetentionPolicy": "Delete",
                # a new layer version publishes a new function version for the alias (SAM
                # hashes only the function's own properties otherwise)
                "PublishLambdaVersion": True,
            })
            layers.append(ref(name))
        return layers

    def image_function(self) -> None:
        """``PackageType: Image``; with no image pushed yet the template holds no function
        (it cannot be created before its image exists), only the strategy's resources."""
        if self.function is None:
            return
        image = self.image()
        if image is None:
            self.function = None
        else:
            self.set(PackageType="Image", ImageUri=image)

    def vpc(self, security_group_ids: list[Any], subnet_ids: list[Any]) -> None:
        """Run the function in a VPC (and let Lambda manage its network interfaces)."""
        self.set(VpcConfig={"SecurityGroupIds": security_group_ids, "SubnetIds": subnet_ids})
        self.allow("ManageVpcNetworkInterfaces", VPC_ACTIONS, "*")

    # --- the common part -----------------------------------------------------------------

    def _function(self) -> dict[str, Any]:
        spec, service, deploy = self.spec, self.spec.service, self.spec.deploy
        strategy = spec.strategy.unit
        function: dict[str, Any] = {
            "FunctionName": self.name,
            "Description": f"modelambda {modelambda.__version__}: {self.name}, strategy "
                           f"{strategy.name} ({strategy.summary})"[:256],
            "Role": get_att(ROLE, "Arn"),
            "Architectures": [self.architecture],
            "MemorySize": service.memory_mb,
            "Timeout": service.timeout_s,
            "EphemeralStorage": {"Size": service.ephemeral_storage_mb},
            "AutoPublishAlias": deploy.alias,
            # publish a version on any change (memory, SnapStart, ...), not only the code's
            "AutoPublishAliasAllProperties": True,
            "FunctionUrlConfig": {"AuthType": deploy.url_auth},
            "LoggingConfig": {"LogFormat": service.log_format, "LogGroup": ref(LOG_GROUP)},
        }
        if service.reserved_concurrency is not None:
            function["ReservedConcurrentExecutions"] = service.reserved_concurrency
        if service.provisioned_concurrency:
            function["ProvisionedConcurrencyConfig"] = {
                "ProvisionedConcurrentExecutions": service.provisioned_concurrency}
        if service.snapstart:
            function["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        if service.tracing:
            function["Tracing"] = "Active"
        if service.log_level is not None:
            function["LoggingConfig"]["ApplicationLogLevel"] = service.log_level
        if (service.event_retries, service.event_max_age_s) != (
                limits.EVENT_RETRIES_MAX, limits.EVENT_AGE_S_MAX):
            function["EventInvokeConfig"] = {
                "MaximumRetryAttempts": service.event_retries,
                "MaximumEventAgeInSeconds": service.event_max_age_s}
        return function

    def tags(self) -> dict[str, str]:
        return {"modelambda:service": self.name,
                "modelambda:strategy": self.spec.strategy.kind, **self.spec.deploy.tags}

    def _common(self) -> dict[str, dict[str, Any]]:
        """The role, log group and function (with the strategy's additions)."""
        assert self.function is not None
        log_group = join("/aws/lambda/", self.name)
        statements = [
            {"Sid": "OwnLogStreams", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": arn("logs", join("log-group:", log_group, ":*"))},
            *self.statements,
        ]
        if self.spec.service.tracing:
            statements.append({"Sid": "XRayTraces", "Effect": "Allow",
                               "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                               "Resource": "*"})
        function = dict(self.function)
        variables = {**self.spec.service.environment, **self.environment}  # the strategy's win
        if variables:
            function["Environment"] = {"Variables": dict(sorted(variables.items()))}
        function["Tags"] = self.tags()
        function["PropagateTags"] = True
        return {
            LOG_GROUP: {"Type": "AWS::Logs::LogGroup",
                        "Properties": {"LogGroupName": log_group,
                                       "RetentionInDays": self.spec.deploy.log_retention_days}},
            ROLE: {"Type": "AWS::IAM::Role", "Properties": {
                "Description": f"modelambda: what the {self.name} function may do",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow",
                                   "Principal": {"Service": "lambda.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": "modelambda-function",
                              "PolicyDocument": {"Version": "2012-10-17",
                                                 "Statement": statements}}]}},
            FUNCTION: {"Type": "AWS::Serverless::Function", "Properties": function,
                       **({"DependsOn": sorted(set(self.depends_on))} if self.depends_on
                          else {})},
        }

    def _function_outputs(self) -> dict[str, dict[str, Any]]:
        alias = self.spec.deploy.alias
        return {
            "FunctionArn": {"Description": "the function (unqualified)",
                            "Value": get_att(FUNCTION, "Arn")},
            "AliasArn": {"Description": f"the alias {alias!r}: what callers invoke",
                         "Value": ref(f"{FUNCTION}.Alias")},
            "FunctionUrl": {"Description": f"the function URL on alias {alias!r} (auth "
                                           f"{self.spec.deploy.url_auth})",
                            "Value": get_att(f"{FUNCTION}Url", "FunctionUrl")},
        }

    def to_dict(self) -> dict[str, Any]:
        resources: dict[str, dict[str, Any]] = {}
        outputs: dict[str, dict[str, Any]] = {}
        if self.function is not None:
            resources.update(self._common())
            outputs.update(self._function_outputs())
        resources.update(self.resources)
        outputs.update(self.outputs)
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(self.tags().items())]
        for resource in resources.values():
            key = TAG_LISTS.get(resource["Type"])
            if key is not None:
                resource["Properties"].setdefault(key, tag_list)
        description = (f"modelambda {modelambda.__version__}: the {self.name} service, "
                       f"strategy {self.spec.strategy.kind}")
        if self.function is None:
            description += " (its resources without the function)"
        template: dict[str, Any] = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::Serverless-2016-10-31",
            "Description": description,
        }
        if self.parameters:
            template["Parameters"] = self.parameters
        if self.conditions:
            template["Conditions"] = self.conditions
        template["Resources"] = resources
        if outputs:
            template["Outputs"] = outputs
        return template
