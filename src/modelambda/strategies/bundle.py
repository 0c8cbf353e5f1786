"""``bundle``: the model inside the function's zip, unpacked to ``/var/task``.

A new model version is a redeploy. Limits that bite: 250 MB unzipped (function and layers
together), 50 MB zipped for a direct upload (bigger zips go through S3).
"""

from __future__ import annotations

from pathlib import Path

from modelambda.package.artifacts import Artifact, Parts
from modelambda.strategies.base import Strategy


class Bundle(Strategy):
    name = "bundle"
    summary = "model inside the function's zip (/var/task)"
    runtime_source = "modelambda.runtime.sources.local:BundleSource"

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        return Artifact("function.zip", "function", out / "function.zip", parts.task,
                        "code, dependencies, model and config"), []

    def size_fixes(self, model_bytes: int) -> list[str]:
        return ["the 'image' strategy (10 GB limit) fits it",
                f"the 's3' or 'efs' strategy keeps the model ({model_bytes:,} bytes) out of "
                "the function"]
