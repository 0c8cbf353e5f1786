"""``endpoint``: the function calls an inference endpoint and keeps the pre/post-processing.

The endpoint speaks SageMaker's ``InvokeEndpoint`` (SigV4-signed) or the Open Inference
Protocol v2 (KServe, MLServer, Triton). The function ships without the model and without the
model's framework; files of the model directory that are not models (a tokenizer, say) stay
in the function for the hooks. Locally, ``up`` starts the local endpoint host, which speaks
both protocols, unless ``--endpoint-url`` names a server of your own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda import limits
from modelambda.package.archive import Entry
from modelambda.package.artifacts import Artifact, BuildResult, Parts
from modelambda.runtime.config import RuntimeConfig
from modelambda.spec import NAME, ServiceSpec, detect_framework
from modelambda.spectable import MISSING, Problems, Table
from modelambda.strategies.base import LocalSetup, Strategy

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder

BACKEND = "modelambda.runtime.backends.endpoint:EndpointBackend"
URL = re.compile(r"^https?://\S+$")
# SageMaker endpoint names (API_CreateEndpoint): no '_', at most 63.
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# SageMaker serves images from ECR: <account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]
ECR_IMAGE = re.compile(r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\."
                       r"amazonaws\.com(\.cn)?/(?P<repository>[a-z0-9][a-z0-9._/-]*)"
                       r"(:[A-Za-z0-9._-]{1,128}|@sha256:[0-9a-f]{64})?$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_CONCURRENCY_MAX = 200
MODEL_TARBALL = "model.tar.gz"


class Endpoint(Strategy):
    name = "endpoint"
    summary = "function calls a SageMaker or v2 inference endpoint; pre/post-processing here"
    runtime_source = "modelambda.runtime.sources.local:EndpointSource"
    import_check = "imports"  # the model answers from the endpoint, not checked here
    deploy_keys = frozenset({"model_image", "instance_type", "serverless_memory_mb",
                             "serverless_max_concurrency"})

    def read(self, table: Table) -> dict[str, Any]:
        # No url is required here: locally `up` supplies its endpoint host; deploy checks
        # that a v2 endpoint has one.
        return {
            "protocol": table.string("protocol", "v2", choices=("v2", "sagemaker")),
            "url": table.string("url", None, pattern=URL, allowed="an http(s) URL"),
            "name": table.string("name", None, pattern=NAME, allowed="an endpoint or model name"),
            "timeout_s": table.integer("timeout_s", 10, 1, limits.TIMEOUT_S_MAX, " (s)"),
            # deploy (sagemaker): the serving container's image; with it the stack creates
            # the SageMaker model, endpoint config and endpoint, else `name` is an existing
            # endpoint
            "model_image": table.string("model_image", None, pattern=ECR_IMAGE,
                                        allowed="an ECR image URI: <account>.dkr.ecr.<region>"
                                                ".amazonaws.com/<repository>[:tag|@digest]"),
            "instance_type": table.string("instance_type", None, pattern=INSTANCE_TYPE,
                                          allowed="a SageMaker instance type, e.g. "
                                                  "ml.m5.large"),
            "serverless_memory_mb": table.integer("serverless_memory_mb", None, 1024, 6144,
                                                  " (MB, in steps of 1024)"),
            "serverless_max_concurrency": table.integer("serverless_max_concurrency", None, 1,
                                                        SERVERLESS_CONCURRENCY_MAX),
        }

    def check(self, spec: ServiceSpec, problems: Problems) -> None:
        settings = spec.strategy.settings
        memory, concurrency = (settings.get("serverless_memory_mb"),
                               settings.get("serverless_max_concurrency"))
        if memory is not None and memory not in SERVERLESS_MEMORY_MB:
            problems.add("strategy", "serverless_memory_mb", memory,
                         "one of " + ", ".join(map(str, SERVERLESS_MEMORY_MB)) + " (MB)")
        if (memory is None) != (concurrency is None):
            key, value = (("serverless_max_concurrency", concurrency) if memory is None
                          else ("serverless_memory_mb", memory))
            problems.add("strategy", key, value, "serverless inference needs both "
                         "serverless_memory_mb and serverless_max_concurrency")
        if memory is not None and settings.get("instance_type") is not None:
            problems.add("strategy", "instance_type", settings["instance_type"],
                         "not with serverless inference (serverless_memory_mb): choose one")
        sagemaker_keys = [k for k in sorted(self.deploy_keys) if settings.get(k) is not None]
        if settings.get("protocol") != "sagemaker" and sagemaker_keys:
            problems.add("strategy", sagemaker_keys[0], settings[sagemaker_keys[0]],
                         "creates a SageMaker endpoint: needs protocol = \"sagemaker\"")
        elif settings.get("model_image") is None:
            for key in ("instance_type", "serverless_memory_mb"):
                if settings.get(key) is not None:
                    problems.add("strategy", key, settings[key],
                                 "describes the endpoint the stack creates: needs "
                                 "model_image (the serving container)")

    def local_settings(self, spec: ServiceSpec) -> dict[str, Any]:
        # SageMaker's protocol, which the local endpoint host speaks, for a spec that names
        # no endpoint at all.
        return {**super().local_settings(spec), "protocol": "sagemaker"}

    def configure(self, config: RuntimeConfig, spec: ServiceSpec) -> None:
        settings = spec.strategy.settings
        config.model.backend = BACKEND
        config.model.options = {"protocol": settings["protocol"], "url": settings["url"],
                                "name": settings["name"] or spec.model.name,
                                "timeout_s": settings["timeout_s"],
                                "outputs": _output_names(spec)}

    def requirements_key(self, spec: ServiceSpec) -> str:
        return "endpoint"  # the model runs elsewhere: no framework in the function

    def model_entries(self, spec: ServiceSpec, model: list[Entry]) -> list[Entry]:
        # the endpoint serves the model: keep only what is not a model (a tokenizer), told
        # by content where the suffix is ambiguous (an XGBoost .json, a LightGBM .txt)
        return [e for e in model if detect_framework(e.source) is None]

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        return Artifact("function.zip", "function", out / "function.zip", parts.task,
                        "code, dependencies, config and the model's non-model files (e.g. "
                        "a tokenizer); the model is served by the endpoint"), []

    def start_local(self, spec: ServiceSpec, services: Any) -> LocalSetup:
        settings = spec.strategy.settings
        url = services.endpoint_url or services.endpoint_host(spec, settings["name"])
        environment = {"MODELAMBDA_ENDPOINT_URL": url}
        if settings["protocol"] == "sagemaker":  # requests are SigV4-signed: credentials
            environment.update(services.signing_environment())
        return LocalSetup(environment=environment)


    # --- deploy -----------------------------------------------------------------------------

    def deploy_check(self, spec: ServiceSpec, problems: Problems) -> None:
        settings = spec.strategy.settings
        if settings["protocol"] == "v2" and not settings["url"]:
            problems.add("strategy", "url", MISSING,
                         "a v2 endpoint needs the URL of its server to deploy (locally, "
                         "`modelambda up` starts one)")
        if settings["protocol"] == "sagemaker":
            name = endpoint_name(spec)
            if not SAGEMAKER_NAME.match(name):
                key = "name" if settings["name"] else "name (default: [model] name)"
                problems.add("strategy", key, name,
                             "a SageMaker endpoint name: letters, digits and '-', at most 63, "
                             "no '_'")

    def deploy_uploads(self, spec: ServiceSpec, build: BuildResult) -> list[Artifact]:
        """The function's zip, and the SageMaker model (``model.tar.gz``, as ``modelambda
        endpoint package`` writes it) when the stack creates the endpoint."""
        uploads = super().deploy_uploads(spec, build)
        if creates_endpoint(spec):
            uploads.append(model_tarball(spec, build))
        return uploads

    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """v2: no AWS resource (the function calls the URL). SageMaker: the model, endpoint
        config and endpoint when the spec gives the serving image (else the endpoint
        exists); the function may invoke that endpoint and nothing else."""
        from modelambda.deploy.resources import arn

        template.zip_function()
        if spec.strategy.settings["protocol"] != "sagemaker":
            return
        name = endpoint_name(spec)
        if creates_endpoint(spec):
            endpoint = _sagemaker_endpoint(spec, template, name)
        else:  # SageMaker writes endpoint names in lower case in its ARNs
            endpoint = arn("sagemaker", f"endpoint/{name.lower()}")
        template.allow("InvokeModelEndpoint", ["sagemaker:InvokeEndpoint"], [endpoint])
        template.output("EndpointName", name, "the SageMaker endpoint the function calls")


def endpoint_name(spec: ServiceSpec) -> str:
    return str(spec.strategy.settings["name"] or spec.model.name)


def creates_endpoint(spec: ServiceSpec) -> bool:
    settings = spec.strategy.settings
    return settings["protocol"] == "sagemaker" and settings.get("model_image") is not None


def model_tarball(spec: ServiceSpec, build: BuildResult) -> Artifact:
    """The SageMaker model archive beside the build's artifacts (reproducible: the same
    model gives the same bytes and sha256), written once per build: a note beside it
    records the build's inputs fingerprint and the archive's sha256 (checked on reuse)."""
    from modelambda.package.sagemaker import model_tarball as write_tarball
    from modelambda.runtime.integrity import sha256_file

    path = build.out / MODEL_TARBALL
    note = path.with_name(MODEL_TARBALL + ".sha256")
    inputs = str(build.manifest.get("inputs_fingerprint") or "")
    artifact = Artifact(MODEL_TARBALL, "sagemaker-model", path, [],
                        "the model for SageMaker (unpacked to /opt/ml/model)")
    recorded = note.read_text().split() if note.is_file() else []
    if (inputs and path.is_file() and len(recorded) == 2 and recorded[0] == inputs
            and sha256_file(path) == recorded[1]):
        artifact.sha256 = recorded[1]
    else:
        artifact.sha256 = write_tarball(spec, path)
        if inputs:
            note.write_text(f"{inputs} {artifact.sha256}\n")
    artifact.zipped_bytes = path.stat().st_size
    return artifact


def _sagemaker_endpoint(spec: ServiceSpec, template: TemplateBuilder, name: str) -> Any:
    """The SageMaker model (the serving image with the model archive), its endpoint config
    (real-time on one instance, or serverless) and the endpoint; returns its ARN."""
    from modelambda.deploy.resources import arn, get_att, join, ref

    settings = spec.strategy.settings
    image = str(settings["model_image"])
    found = ECR_IMAGE.match(image)
    assert found is not None  # read() checked it
    repository = join("arn:", ref("AWS::Partition"), f":ecr:{found['region']}:"
                      f"{found['account']}:repository/{found['repository']}")
    logs = arn("logs", f"log-group:/aws/sagemaker/Endpoints/{name}:*")
    template.add("SageMakerRole", "AWS::IAM::Role", {
        "Description": f"modelambda: what SageMaker may do to serve {name}",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "modelambda-sagemaker", "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [
                {"Sid": "ModelArchive", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": template.object_arn(MODEL_TARBALL)},
                {"Sid": "PullServingImage", "Effect": "Allow",
                 "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer"], "Resource": repository},
                {"Sid": "RegistryLogin", "Effect": "Allow",
                 "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Sid": "EndpointLogs", "Effect": "Allow",
                 "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                            "logs:DescribeLogStreams", "logs:PutLogEvents"],
                 "Resource": logs},
                {"Sid": "EndpointMetrics", "Effect": "Allow",
                 "Action": "cloudwatch:PutMetricData", "Resource": "*"},
            ]}}],
    })
    template.add("SageMakerModel", "AWS::SageMaker::Model", {
        "ExecutionRoleArn": get_att("SageMakerRole", "Arn"),
        "PrimaryContainer": {"Image": image, "ModelDataUrl": template.s3_url(MODEL_TARBALL)},
    })
    variant: dict[str, Any] = {"ModelName": get_att("SageMakerModel", "ModelName"),
                               "VariantName": "AllTraffic"}
    if settings.get("serverless_memory_mb") is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": settings["serverless_memory_mb"],
            "MaxConcurrency": settings["serverless_max_concurrency"]}
    else:
        variant.update({"InstanceType": settings.get("instance_type") or DEFAULT_INSTANCE_TYPE,
                        "InitialInstanceCount": 1, "InitialVariantWeight": 1.0})
    template.add("SageMakerEndpointConfig", "AWS::SageMaker::EndpointConfig",
                 {"ProductionVariants": [variant]})
    template.add("SageMakerEndpoint", "AWS::SageMaker::Endpoint", {
        "EndpointName": name,
        "EndpointConfigName": get_att("SageMakerEndpointConfig", "EndpointConfigName"),
    })
    return ref("SageMakerEndpoint")  # Ref: the endpoint's ARN


def _output_names(spec: ServiceSpec) -> list[str]:
    """The model's output names, read here at build time: SageMaker's answer carries rows
    without them, and a postprocess hook looks outputs up by name."""
    from modelambda.modelstore import model_schema

    return [str(output["name"]) for output in model_schema(spec).get("outputs", [])]
