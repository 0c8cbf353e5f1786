"""The runtime's config: a small JSON document compiled from ``modelambda.toml``.

``modelambda build`` writes it as ``modelambda.json`` at the task root so that a cold start
reads a few hundred bytes of JSON instead of parsing and validating TOML. The runtime never
reads the spec itself: that would ship the spec compiler (``modelambda.spec``) inside every
function. Tools that serve a service directory in process compile the spec and hand the
result to ``App`` directly.

Lookup order: ``$MODELAMBDA_CONFIG``, then ``<task root>/modelambda.json``.

Plain classes, not dataclasses: this module is on every cold start's path, and each
dataclass costs about a millisecond to create at import (and ``dataclasses`` itself more).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.errors import ConfigError
from modelambda.runtime.paths import Paths

CONFIG_FORMAT = 1
CONFIG_FILE = "modelambda.json"


class ModelConfig:
    __slots__ = ("allow_nonfinite", "backend", "files", "framework", "max_batch", "name",
                 "options", "verify_checksums", "version")

    def __init__(
        self,
        name: str,
        version: str,
        framework: str,
        backend: str,  # "module:Class", resolved from the backend registry at compile time
        options: Mapping[str, Any] | None = None,
        # relative path -> {"sha256": hex, "size": bytes}, for the files of the model
        files: Mapping[str, Mapping[str, Any]] | None = None,
        # Whether the model's files are checked (size, sha256) before loading: by the source
        # itself when it ``verifies_checksums`` (s3, efs: against the store's manifest), else
        # by the app against ``files``. The one setting the runtime reads for this; the
        # compiler always writes it (the strategy's default unless the spec says), and a
        # config without it means False.
        verify_checksums: bool = False,
        max_batch: int = 1024,
        allow_nonfinite: bool = False,
    ) -> None:
        self.name = name
        self.version = version
        self.framework = framework
        self.backend = backend
        self.options: dict[str, Any] = dict(options or {})
        self.files: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (files or {}).items()}
        if not isinstance(verify_checksums, bool):
            raise ConfigError(f"model.verify_checksums must be true or false, got "
                              f"{verify_checksums!r}")
        self.verify_checksums = verify_checksums
        self.max_batch = max_batch
        self.allow_nonfinite = allow_nonfinite

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}


class PipelineConfig:
    __slots__ = ("postprocess", "preprocess", "setup")

    def __init__(self, preprocess: str | None = None, postprocess: str | None = None,
                 setup: str | None = None) -> None:
        self.preprocess = preprocess
        self.postprocess = postprocess
        self.setup = setup

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}


class RuntimeConfig:
    __slots__ = ("code_root", "function_name", "model", "pipeline", "source")

    def __init__(
        self,
        function_name: str,
        model: ModelConfig,
        source: Mapping[str, Any],  # {"kind": "bundle", "path": "model.onnx", ...}
        pipeline: PipelineConfig | None = None,
        # Where user code (hooks, model classes) is imported from; None = the task root. Set
        # only when a service directory is served in place rather than from a built artifact.
        code_root: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.model = model
        self.source: dict[str, Any] = dict(source)
        self.pipeline = pipeline or PipelineConfig()
        self.code_root = code_root

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuntimeConfig) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "config") -> RuntimeConfig:
        if data.get("format") != CONFIG_FORMAT:
            raise ConfigError(
                f"{origin}: config format {data.get('format')!r} is not {CONFIG_FORMAT}; "
                "rebuild the function with this version of modelambda"
            )
        try:
            return cls(
                function_name=data["function_name"],
                model=ModelConfig(**data["model"]),
                source=data["source"],
                pipeline=PipelineConfig(**data.get("pipeline", {})),
                code_root=data.get("code_root"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{origin}: malformed runtime config ({exc})") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "function_name": self.function_name,
            "model": self.model.to_dict(),
            "source": dict(self.source),
            "pipeline": self.pipeline.to_dict(),
            "code_root": self.code_root,
        }


def load_config(paths: Paths, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Find and read the runtime config (see the module docstring for the lookup order)."""
    env = os.environ if environ is None else environ
    explicit = env.get("MODELAMBDA_CONFIG")
    path = explicit or os.path.join(paths.task_root, CONFIG_FILE)
    if not os.path.isfile(path):
        where = "$MODELAMBDA_CONFIG" if explicit else "the task root"
        raise ConfigError(
            f"no runtime config at {path} ({where}): build the function with "
            "`modelambda build`, or set MODELAMBDA_CONFIG to a compiled modelambda.json"
        )
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a runtime config is a JSON object, got "
                          f"{type(data).__name__}")
    return RuntimeConfig.from_dict(data, origin=path)
