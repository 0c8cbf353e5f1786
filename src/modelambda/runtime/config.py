"""The runtime's config: a small JSON document compiled from ``modelambda.toml``.

``modelambda build`` writes it as ``modelambda.json`` at the task root so that a cold start
reads a few hundred bytes of JSON instead of parsing and validating TOML. When only the spec
is there (a service directory used in place), the spec is compiled on the fly.

Lookup order: ``$MODELAMBDA_CONFIG``, then ``<task root>/modelambda.json``, then
``<task root>/modelambda.toml``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelambda.runtime.errors import ConfigError
from modelambda.runtime.paths import Paths

CONFIG_FORMAT = 1
CONFIG_FILE = "modelambda.json"
SPEC_FILE = "modelambda.toml"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str
    framework: str
    backend: str  # "module:Class", resolved from the backend registry at compile time
    options: Mapping[str, Any] = field(default_factory=dict)
    # relative path -> {"sha256": hex, "size": bytes}, for the files of the model
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    verify_checksums: bool = False
    max_batch: int = 1024
    allow_nonfinite: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    preprocess: str | None = None
    postprocess: str | None = None
    setup: str | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    function_name: str
    model: ModelConfig
    source: Mapping[str, Any]  # {"kind": "bundle", "path": "model.onnx", ...}
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    # Where user code (hooks, model classes) is imported from; None = the task root. Set only
    # when a service directory is served in place rather than from a built artifact.
    code_root: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "config") -> RuntimeConfig:
        try:
            if data.get("format") != CONFIG_FORMAT:
                raise ConfigError(
                    f"{origin}: config format {data.get('format')!r} is not {CONFIG_FORMAT}; "
                    "rebuild the function with this version of modelambda"
                )
            return cls(
                function_name=data["function_name"],
                model=ModelConfig(**data["model"]),
                source=dict(data["source"]),
                pipeline=PipelineConfig(**data.get("pipeline", {})),
                code_root=data.get("code_root"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{origin}: malformed runtime config ({exc})") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "function_name": self.function_name,
            "model": {
                "name": self.model.name,
                "version": self.model.version,
                "framework": self.model.framework,
                "backend": self.model.backend,
                "options": dict(self.model.options),
                "files": {k: dict(v) for k, v in self.model.files.items()},
                "verify_checksums": self.model.verify_checksums,
                "max_batch": self.model.max_batch,
                "allow_nonfinite": self.model.allow_nonfinite,
            },
            "source": dict(self.source),
            "pipeline": {
                "preprocess": self.pipeline.preprocess,
                "postprocess": self.pipeline.postprocess,
                "setup": self.pipeline.setup,
            },
            "code_root": self.code_root,
        }


def load_config(paths: Paths, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Find and read the runtime config (see the module docstring for the lookup order)."""
    env = os.environ if environ is None else environ
    explicit = env.get("MODELAMBDA_CONFIG")
    candidates = [Path(explicit)] if explicit else [
        paths.task_root / CONFIG_FILE,
        paths.task_root / SPEC_FILE,
    ]
    for path in candidates:
        if path.suffix == ".toml" and path.is_file():
            # Only a service used in place takes this path; the spec compiler is stdlib-only
            # but bigger, so it is imported here and not on the compiled-config path.
            from modelambda.spec import compile_runtime_config, load_spec

            return compile_runtime_config(load_spec(path.parent))
        if path.is_file():
            try:
                data = json.loads(path.read_bytes())
            except ValueError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
            return RuntimeConfig.from_dict(data, origin=str(path))
    raise ConfigError(
        "no runtime config found: looked for "
        + ", ".join(str(p) for p in candidates)
        + "; set MODELAMBDA_CONFIG or LAMBDA_TASK_ROOT to the service's files"
    )
