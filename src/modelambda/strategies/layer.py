"""``layer``: dependencies and model in Lambda layers, unpacked in order to ``/opt``.

Dependencies and the model go in separate layers, the model last: a new model version
publishes one new layer and leaves the dependencies' layer as it was. Limits: at most 5
layers; 250 MB unzipped for the function and all its layers together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda.package.archive import Entry
from modelambda.package.artifacts import Artifact, Parts
from modelambda.spec import ServiceSpec
from modelambda.strategies.base import Strategy

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder

# Lambda unpacks layers under /opt; Python finds /opt/python on its path.
MODEL_DIR = "model"


class Layer(Strategy):
    name = "layer"
    summary = "model and dependencies in Lambda layers (/opt)"
    runtime_source = "modelambda.runtime.sources.local:LayerSource"

    def source(self, spec: ServiceSpec) -> dict[str, Any]:
        return {**super().source(spec), "path": f"{MODEL_DIR}/{spec.model.path}"}

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        function = Artifact("function.zip", "function", out / "function.zip",
                            [*parts.user_code, parts.config], "config and user code")
        dependencies = Artifact(
            "layer-1-dependencies.zip", "layer", out / "layer-1-dependencies.zip",
            [Entry(f"python/{e.name}", e.source) for e in [*parts.dependencies, *parts.runtime]],
            "python packages and the modelambda runtime (/opt/python)")
        model = Artifact("layer-2-model.zip", "layer", out / "layer-2-model.zip",
                         [Entry(f"{MODEL_DIR}/{e.name}", e.source) for e in parts.model],
                         f"the model (/opt/{MODEL_DIR})")
        return function, [dependencies, model]

    def size_fixes(self, model_bytes: int) -> list[str]:
        return ["the 'image' strategy (10 GB limit) fits it",
                f"the 's3' or 'efs' strategy keeps the model ({model_bytes:,} bytes) out of "
                "the function"]

    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """One ``AWS::Serverless::LayerVersion`` per built layer, listed on the function in
        the built order (the model last: Lambda unpacks them in that order to /opt)."""
        template.zip_function()  # its zip, then every built layer in order
