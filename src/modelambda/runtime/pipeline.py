"""User pre/post-processing hooks (``[pipeline]`` in the spec), imported once at init.

- ``setup(model_path)``: optional, runs once per environment with the model's path as a
  string (e.g. to load a tokenizer that lives beside the model), while the backend finishes
  loading the model (an ONNX session builds on its own thread meanwhile; see
  ``Backend.start_load``);
- ``preprocess(instances) -> inputs``: the request's instances -> ``{input name: array}``
  (or one array for a single-input model). Raise ``modelambda.runtime.InvalidInput`` to
  reject a request with a 400; any other exception is also reported as a 400
  (``PreprocessError``), because it is the request that a preprocess hook could not handle;
- ``postprocess(outputs) -> predictions``: the model's outputs -> one prediction per instance.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from modelambda.runtime.config import PipelineConfig
from modelambda.runtime.errors import (
    ConfigError,
    DependencyMissing,
    ModelambdaError,
    ModelError,
    PreprocessError,
)

Hook = Callable[..., Any]


def import_hook(ref: str, key: str) -> Hook:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"[pipeline] {key} = {ref!r} must look like 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DependencyMissing(
            f"[pipeline] {key} = {ref!r}: cannot import {module_name}: {exc}") from exc
    hook = getattr(module, attr, None)
    if not callable(hook):
        raise ConfigError(f"[pipeline] {key} = {ref!r}: {module_name} has no function {attr!r}")
    return hook  # type: ignore[no-any-return]


class Pipeline:
    __slots__ = ("postprocess", "preprocess", "setup")

    def __init__(self, preprocess: Hook | None = None, postprocess: Hook | None = None,
                 setup: Hook | None = None) -> None:
        self.preprocess = preprocess
        self.postprocess = postprocess
        self.setup = setup

    @classmethod
    def load(cls, config: PipelineConfig, model_path: str, run_setup: bool = True) -> Pipeline:
        """Import the hooks; run ``setup`` now unless ``run_setup`` is False (a refresh runs
        it at the switch, since setup typically sets module state the serving version uses)."""
        pipeline = cls(
            preprocess=import_hook(config.preprocess, "preprocess") if config.preprocess else None,
            postprocess=(
                import_hook(config.postprocess, "postprocess") if config.postprocess else None
            ),
            setup=import_hook(config.setup, "setup") if config.setup else None,
        )
        if run_setup:
            pipeline.run_setup(model_path)
        return pipeline

    def run_setup(self, model_path: str) -> None:
        if self.setup is None:
            return
        try:
            self.setup(model_path)
        except ModelambdaError:
            raise
        except Exception as exc:
            name = getattr(self.setup, "__name__", "setup")
            raise ConfigError(f"[pipeline] setup {name} failed: {exc!r}") from exc

    def run_preprocess(self, instances: list[Any]) -> Any:
        assert self.preprocess is not None
        try:
            return self.preprocess(instances)
        except ModelambdaError:
            raise
        except Exception as exc:
            raise PreprocessError(f"preprocess could not handle the request: {exc!r}") from exc

    def run_postprocess(self, outputs: Any) -> Any:
        assert self.postprocess is not None
        try:
            return self.postprocess(outputs)
        except ModelambdaError:
            raise
        except Exception as exc:
            raise ModelError(f"postprocess failed: {exc!r}") from exc
