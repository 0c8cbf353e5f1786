"""What each strategy's artifacts weigh, read from the manifests ``build`` writes.

The advisor never guesses a size: ``from_builds`` builds the service for each strategy
(``package.build.build``; cached when the inputs have not changed) and reads the manifest,
also when the build is refused for a limit (``LimitExceeded`` still writes it, with the failed
checks). ``from_manifest`` reads one manifest dict, which is how tests describe a model too big
to build (the same structure: ``artifacts``, ``limits``, ``model.files``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelambda import limits

if TYPE_CHECKING:
    from modelambda.spec import ServiceSpec

MB = limits.MB


def mb(n: float) -> str:
    """Bytes as Lambda's docs write them: MB of 2**20 bytes."""
    return f"{n / MB:,.0f} MB" if n >= MB else f"{n / 1024:,.0f} KB"


@dataclass
class StrategySizes:
    strategy: str
    built: bool = True  # False: the build failed for another reason than a limit
    error: str = ""
    function_bytes: int = 0  # the function's own zip contents (or image context), unzipped
    layer_bytes: int = 0  # all layers, unzipped
    zipped_bytes: int = 0
    model_bytes: int = 0  # the model files as built (ONNX optimised)
    model_files: dict[str, int] = field(default_factory=dict)
    model_version: str | None = None
    tmp_needed: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def code_bytes(self) -> int:
        """What the function and its layers unpack, the model included if it ships there."""
        return self.function_bytes + self.layer_bytes

    @property
    def failures(self) -> list[str]:
        """The limits that rule this artifact out, as one phrase each."""
        if not self.built:
            return [f"build failed: {self.error}"]
        out = []
        for check in self.checks:
            if check.get("ok", True) or check.get("severity", "error") != "error":
                continue
            if check.get("unit", "bytes") == "bytes":
                out.append(f"{check['name']} {mb(check['value'])} > {mb(check['limit'])}")
            else:
                out.append(f"{check['name']} {check['value']} > {check['limit']}")
        return out

    def check(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.checks if c["name"] == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "built": self.built, "error": self.error,
                "function_bytes": self.function_bytes, "layer_bytes": self.layer_bytes,
                "zipped_bytes": self.zipped_bytes, "model_bytes": self.model_bytes,
                "tmp_needed": self.tmp_needed, "failures": self.failures,
                "limits": self.checks}


def from_manifest(strategy: str, manifest: Mapping[str, Any]) -> StrategySizes:
    sizes = StrategySizes(strategy)
    for artifact in manifest.get("artifacts", []):
        if artifact["kind"] == "layer":
            sizes.layer_bytes += int(artifact["unzipped_bytes"])
        else:
            sizes.function_bytes += int(artifact["unzipped_bytes"])
        sizes.zipped_bytes += int(artifact.get("zipped_bytes") or 0)
    sizes.model_version = (manifest.get("model") or {}).get("version")
    files = (manifest.get("model") or {}).get("files") or {}
    sizes.model_files = {name: int(f["size"]) for name, f in files.items()}
    sizes.model_bytes = sum(sizes.model_files.values())
    sizes.checks = [dict(c) for c in manifest.get("limits", [])]
    tmp = sizes.check("/tmp needed at run time")
    sizes.tmp_needed = int(tmp["value"]) if tmp else 0
    return sizes


Builder = Callable[["ServiceSpec", str], Mapping[str, Any]]


def build_manifest(spec: ServiceSpec, strategy: str,
                   log: Callable[[str], None] | None = None) -> Mapping[str, Any]:
    """Build ``spec`` for ``strategy`` and return its manifest, also when a limit refused it."""
    from modelambda.package.build import build
    from modelambda.package.checks import LimitExceeded

    try:
        return build(spec, strategy, log=log).manifest
    except LimitExceeded as exc:
        if exc.manifest is None or not exc.manifest.is_file():
            raise
        manifest: dict[str, Any] = json.loads(exc.manifest.read_text())
        return manifest


def from_builds(spec: ServiceSpec, strategies: Iterable[str],
                builder: Builder | None = None) -> dict[str, StrategySizes]:
    """Each strategy's sizes from a real build; a build that fails for another reason than a
    limit (a dependency that cannot be installed, say) gives a row that says so."""
    from modelambda.errors import ModelambdaError

    make = builder or build_manifest
    out: dict[str, StrategySizes] = {}
    for strategy in strategies:
        try:
            out[strategy] = from_manifest(strategy, make(spec, strategy))
        except (ModelambdaError, OSError) as exc:
            out[strategy] = StrategySizes(strategy, built=False,
                                          error=str(exc).splitlines()[0] if str(exc) else
                                          type(exc).__name__)
    return out
