"""Backend registry: framework name -> ``module:Class``, via entry points.

Built-ins are declared in modelambda's ``pyproject.toml`` under ``modelambda.backends``, the
same group a third-party package uses for its own backend; ``BUILTIN`` mirrors them so that a
function whose package metadata was slimmed away still finds them.
"""

from __future__ import annotations

import importlib
from functools import cache

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import ConfigError, DependencyMissing

GROUP = "modelambda.backends"

BUILTIN: dict[str, str] = {
    "onnx": "modelambda.runtime.backends.onnx:OnnxBackend",
    "sklearn": "modelambda.runtime.backends.sklearn:SklearnBackend",
    "python": "modelambda.runtime.backends.python:PythonBackend",
    "tflite": "modelambda.runtime.backends.tflite:TFLiteBackend",
    "xgboost": "modelambda.runtime.backends.xgboost:XGBoostBackend",
    "lightgbm": "modelambda.runtime.backends.lightgbm:LightGBMBackend",
}

# Frameworks the spec knows by name (DESIGN.md section 2) even when no backend is installed.
KNOWN_FRAMEWORKS = ("onnx", "sklearn", "xgboost", "lightgbm", "tflite", "python")


@cache
def registered() -> dict[str, str]:
    """All backends: entry points (plugins and built-ins), built-ins as the fallback."""
    # importlib.metadata scans every installed distribution: build-time only.
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def resolve(framework: str) -> str:
    """Framework name -> ``module:Class``; ConfigError naming what is available."""
    table = registered()
    if framework in table:
        return table[framework]
    hint = (
        f"framework {framework!r} is known but no backend for it is installed"
        if framework in KNOWN_FRAMEWORKS
        else f"unknown framework {framework!r}"
    )
    raise ConfigError(f"{hint}; backends available: {', '.join(sorted(table))}")


def load_backend_class(target: str) -> type[Backend]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except ImportError as exc:
        raise DependencyMissing(
            f"backend {target} cannot be imported: {exc}. Install the extra for it, e.g. "
            "pip install 'modelambda[onnx]' or 'modelambda[sklearn]'"
        ) from exc
    except AttributeError as exc:
        raise ConfigError(f"backend {target}: {module_name} has no {attr!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"backend {target} is not a modelambda Backend subclass")
    return cls


__all__ = [
    "BUILTIN",
    "GROUP",
    "KNOWN_FRAMEWORKS",
    "Backend",
    "TensorSpec",
    "load_backend_class",
    "registered",
    "resolve",
]
