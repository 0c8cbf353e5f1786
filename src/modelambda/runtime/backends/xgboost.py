"""XGBoost models in XGBoost's own formats (``.json``, ``.ubj``), through the booster alone.

The function installs the ``xgboost-cpu`` wheel: plain ``xgboost`` on Linux requires
``nvidia-nccl-cu13`` (about 360 MB unpacked), which alone breaks Lambda's 250 MB limit.

Predictions go through ``Booster.inplace_predict`` (no DMatrix per request). What a row's
prediction is follows the model's objective: classifiers (``multi:softprob``,
``multi:softmax``, ``binary:logistic``, ``binary:logitraw``) answer ``label`` and
``probabilities`` like the scikit-learn and converted-ONNX backends (``[model.options]
outputs`` picks one); ``binary:hinge`` answers ``label``; every other objective (regression,
ranking, survival, count) answers ``prediction``. The shared helpers below serve the LightGBM
backend too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import (
    ConfigError,
    DependencyMissing,
    ModelError,
    ModelLoadError,
)

SUFFIXES = (".json", ".ubj")
CLASS_OUTPUTS = ("label", "probabilities")


def first_line(exc: BaseException) -> str:
    """A library's error as one line: native libraries append stack traces to theirs."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def model_source(path: str, blobs: Mapping[str, bytes] | None, suffixes: tuple[str, ...],
                 what: str) -> tuple[str, bytes | None]:
    """(the model file's path, its bytes when a remote source kept them in memory).

    ``path`` is the file itself or a directory holding exactly one file with a suffix in
    ``suffixes``."""
    in_memory = [name for name in (blobs or {}) if name.endswith(suffixes)]
    if len(in_memory) == 1:
        return in_memory[0], (blobs or {})[in_memory[0]]
    if os.path.isfile(path):
        return path, None
    if not os.path.isdir(path):
        raise ModelLoadError(f"{path}: no such {what} model file")
    found = sorted(name for name in os.listdir(path) if name.endswith(suffixes))
    if len(found) != 1:
        raise ModelLoadError(
            f"{path} must hold exactly one {what} model ({' or '.join(suffixes)}), found "
            f"{len(found)}" + (f" ({', '.join(found)})" if found else "")
            + "; point [model] path at the file itself")
    return os.path.join(path, found[0]), None


def wanted_outputs(options: Mapping[str, Any], framework: str) -> tuple[str, ...]:
    wanted = tuple(options.get("outputs", CLASS_OUTPUTS))
    unknown = [name for name in wanted if name not in CLASS_OUTPUTS]
    if unknown or not wanted:
        raise ConfigError(f"[model.options] outputs = {list(wanted)} for framework "
                          f"{framework!r}: a non-empty list of {list(CLASS_OUTPUTS)}")
    return wanted


def threads(options: Mapping[str, Any]) -> int:
    """``[model.options] threads``, else the vCPUs Lambda gives this memory size."""
    from modelambda.runtime.backends.onnx import lambda_vcpus  # no onnxruntime import

    value = options.get("threads")
    if value is None:
        return lambda_vcpus()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"[model.options] threads = {value!r}: a positive integer")
    return value


def class_outputs(probabilities: Any, wanted: tuple[str, ...]) -> dict[str, Any]:
    """``{label, probabilities}`` from an ``[N, classes]`` array of class probabilities."""
    import numpy as np

    out: dict[str, Any] = {}
    if "label" in wanted:
        out["label"] = np.argmax(probabilities, axis=1).astype(np.int64)
    if "probabilities" in wanted:
        out["probabilities"] = probabilities
    return out


def binary_probabilities(positive: Any) -> Any:
    """``[N]`` probabilities of class 1 -> ``[N, 2]`` (class 0, class 1)."""
    import numpy as np

    positive = np.asarray(positive).reshape(-1)
    return np.stack([1.0 - positive, positive], axis=1)


def class_specs(classes: int, wanted: tuple[str, ...], dtype: str) -> list[TensorSpec]:
    specs = []
    if "label" in wanted:
        specs.append(TensorSpec("label", "int64", (None,)))
    if "probabilities" in wanted:
        specs.append(TensorSpec("probabilities", dtype, (None, classes)))
    return specs


# objective -> how its raw output becomes class probabilities (None: not a classifier)
_CLASSIFIERS = {"multi:softprob": "probabilities", "multi:softmax": "margins",
                "binary:logistic": "positive", "binary:logitraw": "logit",
                "binary:hinge": "labels"}


class XGBoostBackend(Backend):
    framework = "xgboost"
    option_keys = frozenset({"outputs", "threads"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        try:
            import xgboost as xgb  # deferred: only functions that serve XGBoost pay for it
        except ImportError as exc:
            raise DependencyMissing(
                f"the xgboost backend needs xgboost (the xgboost-cpu wheel): {exc}") from exc
        file, data = model_source(path, blobs, SUFFIXES, "XGBoost")
        name = os.path.basename(file)
        self._wanted = wanted_outputs(self.options, self.framework)
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data) if data is not None else file)
            config = json.loads(booster.save_config())
            learner = config["learner"]
            self.objective = str(learner["objective"]["name"])
            classes = int(float(learner["learner_model_param"].get("num_class", 0) or 0))
            features = int(booster.num_features())
        except Exception as exc:  # XGBoostError, or a model without the usual config
            raise ModelLoadError(f"{name} is not a loadable XGBoost model (JSON or UBJ): "
                                 f"{first_line(exc)}") from exc
        booster.set_param({"nthread": threads(self.options)})
        self.booster = booster
        self._kind = _CLASSIFIERS.get(self.objective)
        if self._kind in ("positive", "logit", "labels"):
            classes = 2
        self._inputs = [TensorSpec("input", "float32", (None, features))]
        if self._kind is None:
            self._outputs = [TensorSpec("prediction", "float32", None)]
        elif self._kind == "labels":
            self._outputs = [TensorSpec("label", "int64", (None,))]
        else:
            self._outputs = class_specs(classes, self._wanted, "float32")

    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def predict(self, inputs: Any) -> Any:
        import numpy as np

        x = inputs["input"]
        margin = self._kind in ("margins", "logit")
        try:
            raw = np.asarray(self.booster.inplace_predict(
                x, predict_type="margin" if margin else "value", validate_features=False))
        except Exception as exc:
            raise ModelError(f"xgboost failed: {first_line(exc)}") from exc
        if self._kind is None:
            return {"prediction": raw}
        if self._kind == "labels":
            return {"label": raw.reshape(-1).astype(np.int64)}
        if self._kind == "margins":  # multi:softmax: its value is the label; softmax margins
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        elif self._kind == "logit":
            probabilities = binary_probabilities(1.0 / (1.0 + np.exp(-raw)))
        elif self._kind == "positive":
            probabilities = binary_probabilities(raw)
        else:
            probabilities = raw
        return class_outputs(probabilities.astype(np.float32, copy=False), self._wanted)
