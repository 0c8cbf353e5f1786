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
from typing import Any

from modelambda import limits
from modelambda.package.archive import Entry
from modelambda.package.artifacts import Artifact, Parts
from modelambda.runtime.config import RuntimeConfig
from modelambda.spec import NAME, SUFFIX_FRAMEWORKS, ServiceSpec
from modelambda.spectable import Table
from modelambda.strategies.base import LocalSetup, Strategy

BACKEND = "modelambda.runtime.backends.endpoint:EndpointBackend"
URL = re.compile(r"^https?://\S+$")


class Endpoint(Strategy):
    name = "endpoint"
    summary = "function calls a SageMaker or v2 inference endpoint; pre/post-processing here"
    runtime_source = "modelambda.runtime.sources.local:EndpointSource"
    import_check = "imports"  # the model answers from the endpoint, not checked here

    def read(self, table: Table) -> dict[str, Any]:
        # No url is required here: locally `up` supplies its endpoint host; deploy checks
        # that a v2 endpoint has one.
        return {
            "protocol": table.string("protocol", "v2", choices=("v2", "sagemaker")),
            "url": table.string("url", None, pattern=URL, allowed="an http(s) URL"),
            "name": table.string("name", None, pattern=NAME, allowed="an endpoint or model name"),
            "timeout_s": table.integer("timeout_s", 10, 1, limits.TIMEOUT_S_MAX, " (s)"),
        }

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
        return [e for e in model if Path(e.name).suffix not in SUFFIX_FRAMEWORKS]

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


def _output_names(spec: ServiceSpec) -> list[str]:
    """The model's output names, read here at build time: SageMaker's answer carries rows
    without them, and a postprocess hook looks outputs up by name."""
    from modelambda.modelstore import model_schema

    return [str(output["name"]) for output in model_schema(spec).get("outputs", [])]
