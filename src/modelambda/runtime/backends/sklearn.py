"""scikit-learn estimators, in skops format; pickle/joblib only when explicitly trusted.

Unpickling runs arbitrary code, so ``.pkl``/``.joblib`` files are refused unless the spec sets
``[model] trust_pickle = true``; loading one then logs a loud warning on every cold start.
skops files load with skops' allow-list, extended by ``[model.options] trusted_types``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import ModelError, ModelLoadError

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def _find_file(path: str) -> str:
    if os.path.isfile(path):
        return path
    found = sorted(n for n in os.listdir(path) if n.endswith((".skops", *PICKLE_SUFFIXES)))
    if len(found) != 1:
        raise ModelLoadError(
            f"{path} must hold exactly one .skops (or trusted pickle) file, found {len(found)}"
        )
    return os.path.join(path, found[0])


class SklearnBackend(Backend):
    framework = "sklearn"
    option_keys = frozenset({"trusted_types", "trust_pickle", "outputs"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        file = _find_file(path)
        name, suffix = os.path.basename(file), os.path.splitext(file)[1]
        if suffix in PICKLE_SUFFIXES:
            self.model = self._load_pickle(file, name)
        elif suffix == ".skops":
            self.model = self._load_skops(file, name)
        else:
            raise ModelLoadError(
                f"{name}: unknown scikit-learn model format {suffix!r}; "
                "save it with skops.io.dump(model, 'model.skops')"
            )
        if not hasattr(self.model, "predict"):
            raise ModelLoadError(f"{name} holds a {type(self.model).__name__}, not a model")
        self._proba = hasattr(self.model, "predict_proba")
        self._wanted = tuple(self.options.get("outputs", ("label", "probabilities")))
        n = getattr(self.model, "n_features_in_", None)
        self._inputs = [TensorSpec("input", "float64", (None, int(n)) if n else None)]

    def _load_skops(self, file: str, name: str) -> Any:
        import skops.io as sio  # deferred: heavy (imports scikit-learn)

        trusted = list(self.options.get("trusted_types", []))
        try:
            untrusted = [t for t in sio.get_untrusted_types(file=file) if t not in trusted]
        except Exception as exc:
            raise ModelLoadError(f"{name} is not a valid skops file: {exc}") from exc
        if untrusted:
            raise ModelLoadError(
                f"{name} contains types skops does not trust by default: {untrusted}. "
                "If you trust this file, list them in [model.options] trusted_types"
            )
        try:
            return sio.load(file, trusted=trusted or None)
        except Exception as exc:
            raise ModelLoadError(f"{name} could not be loaded by skops: {exc}") from exc

    def _load_pickle(self, file: str, name: str) -> Any:
        if self.options.get("trust_pickle") is not True:
            raise ModelLoadError(
                f"{name} is a pickle: loading it runs any code inside it. Convert it to "
                "skops (skops.io.dump) or ONNX, or, if you made this file yourself, set "
                "[model] trust_pickle = true in modelambda.toml"
            )
        print(
            f"WARNING modelambda: loading pickle {name} because trust_pickle = true; "
            "unpickling runs arbitrary code, only do this for files you made",
            file=sys.stderr,
            flush=True,
        )
        import joblib  # joblib reads both joblib and plain pickle files

        try:
            return joblib.load(file)
        except Exception as exc:
            raise ModelLoadError(f"{name} could not be unpickled: {exc}") from exc

    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    def predict(self, inputs: Any) -> Any:
        x = inputs["input"]
        try:
            out: dict[str, Any] = {}
            if "label" in self._wanted:
                out["label"] = self.model.predict(x)
            if self._proba and "probabilities" in self._wanted:
                out["probabilities"] = self.model.predict_proba(x)
        except Exception as exc:
            raise ModelError(f"{type(self.model).__name__} failed: {exc}") from exc
        return out
