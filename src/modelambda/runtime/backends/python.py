"""A user's own Python class: ``load(path)`` once per environment, ``predict(batch)`` per request.

``[model] class = "module:Class"`` names it; the module is imported from the function's code
(the service directory, which becomes the task root).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.backends.base import Backend
from modelambda.runtime.errors import (
    ConfigError,
    DependencyMissing,
    ModelError,
    ModelLoadError,
)


class PythonBackend(Backend):
    framework = "python"
    option_keys = frozenset({"class"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        target = self.options.get("class")
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(
                "framework 'python' needs [model] class = \"module:Class\" naming your model class"
            )
        module_name, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise DependencyMissing(f"[model] class = {target!r} cannot be imported: {exc}")\
                from exc
        except AttributeError as exc:
            raise ConfigError(f"[model] class = {target!r}: {exc}") from exc
        self.model = cls()
        for method in ("load", "predict"):
            if not callable(getattr(self.model, method, None)):
                raise ConfigError(f"{target} has no {method}() method")
        try:
            self.model.load(path)
        except Exception as exc:
            raise ModelLoadError(f"{target}.load({path}) failed: {exc!r}") from exc

    def predict(self, inputs: Any) -> Any:
        try:
            return self.model.predict(inputs)
        except Exception as exc:
            raise ModelError(f"{type(self.model).__name__}.predict failed: {exc!r}") from exc
