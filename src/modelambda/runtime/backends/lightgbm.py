"""LightGBM models in LightGBM's text format (``Booster.save_model``: ``.txt``, ``.lgb``).

A ``.txt`` file could be anything, so a spec names ``framework = "lightgbm"`` (``init`` and
the spec recognise the format's header, ``tree`` then ``version=v...``). Rows are float64, as
LightGBM compares them with its thresholds. The objective in the model's header says what a
prediction is: ``multiclass``/``multiclassova`` and ``binary`` answer ``label`` and
``probabilities`` (like the scikit-learn and converted-ONNX backends); every other objective
(regression, ranking, cross-entropy) answers ``prediction``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.backends.xgboost import (
    binary_probabilities,
    class_outputs,
    class_specs,
    first_line,
    model_source,
    threads,
    wanted_outputs,
)
from modelambda.runtime.errors import DependencyMissing, ModelError, ModelLoadError

SUFFIXES = (".txt", ".lgb")
_MULTICLASS = ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr")


def header(text: str) -> dict[str, str]:
    """The ``key=value`` lines before the first tree of a LightGBM text model."""
    values: dict[str, str] = {}
    for line in text[:65536].splitlines():
        if line.startswith("Tree="):
            break
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


class LightGBMBackend(Backend):
    framework = "lightgbm"
    option_keys = frozenset({"outputs", "threads"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        try:
            import lightgbm as lgb  # deferred: only functions that serve LightGBM pay for it
        except ImportError as exc:
            raise DependencyMissing(f"the lightgbm backend needs lightgbm: {exc}") from exc
        file, data = model_source(path, blobs, SUFFIXES, "LightGBM")
        name = os.path.basename(file)
        self._wanted = wanted_outputs(self.options, self.framework)
        what = f"{name} is not a loadable LightGBM model (text format, Booster.save_model)"
        try:
            if data is None:
                with open(file, "rb") as handle:
                    data = handle.read()
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelLoadError(f"{what}: it is not text ({exc.reason} at byte "
                                 f"{exc.start})") from exc
        self.header = head = header(text)
        if not text.startswith("tree") or "version" not in head:
            raise ModelLoadError(f"{what}: it does not start with LightGBM's header "
                                 "('tree', then 'version=v...')")
        try:
            self.booster = lgb.Booster(model_str=text)
            features = int(self.booster.num_feature())
        except Exception as exc:  # LightGBMError: the file is damaged
            raise ModelLoadError(f"{what}: {first_line(exc)}") from exc
        self._threads = threads(self.options)
        self.objective = head.get("objective", "").split(" ")[0]
        classes = int(head.get("num_class", "1") or 1)
        if self.objective in _MULTICLASS:
            self._kind: str | None = "probabilities"
        elif self.objective == "binary":
            self._kind, classes = "positive", 2
        else:
            self._kind = None
        self._inputs = [TensorSpec("input", "float64", (None, features))]
        self._outputs = ([TensorSpec("prediction", "float64", None)] if self._kind is None
                         else class_specs(classes, self._wanted, "float64"))

    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def predict(self, inputs: Any) -> Any:
        import numpy as np

        x = inputs["input"]
        try:
            raw = np.asarray(self.booster.predict(x, num_threads=self._threads,
                                                  validate_features=False))
        except Exception as exc:
            raise ModelError(f"lightgbm failed: {first_line(exc)}") from exc
        if self._kind is None:
            return {"prediction": raw}
        probabilities = binary_probabilities(raw) if self._kind == "positive" else raw
        return class_outputs(probabilities, self._wanted)
