"""scikit-learn estimators, in skops format; pickle/joblib only when explicitly trusted.

Unpickling runs arbitrary code, so ``.pkl``/``.joblib`` files are refused unless the spec sets
``[model] trust_pickle = true``; loading one then logs a loud warning on every cold start.
skops files load with skops' allow-list, extended by ``[model.options] trusted_types``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import ModelError, ModelLoadError

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def _find_file(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.suffix in (".skops", *PICKLE_SUFFIXES))
    if len(found) != 1:
        raise ModelLoadError(
            f"{path} must hold exactly one .skops (or trusted pickle) file, found {len(found)}"
        )
    return found[0]


class SklearnBackend(Backend):
    framework = "sklearn"
    option_keys = frozenset({"trusted_types", "trust_pickle", "outputs"})

    def load(self, path: Path) -> None:
        file = _find_file(path)
        if file.suffix in PICKLE_SUFFIXES:
            self.model = self._load_pickle(file)
        elif file.suffix == ".skops":
            self.model = self._load_skops(file)
        else:
            raise ModelLoadError(
                f"{file.name}: unknown scikit-learn model format {file.suffix!r}; "
                "save it with skops.io.dump(model, 'model.skops')"
            )
        if not hasattr(self.model, "predict"):
            raise ModelLoadError(f"{file.name} holds a {type(self.model).__name__}, not a model")
        self._proba = hasattr(self.model, "predict_proba")
        self._wanted = tuple(self.options.get("outputs", ("label", "probabilities")))
        n = getattr(self.model, "n_features_in_", None)
        self._inputs = [TensorSpec("input", "float64", (None, int(n)) if n else None)]

    def _load_skops(self, file: Path) -> Any:
        import skops.io as sio  # deferred: heavy (imports scikit-learn)

        trusted = list(self.options.get("trusted_types", []))
        try:
            untrusted = [t for t in sio.get_untrusted_types(file=file) if t not in trusted]
        except Exception as exc:
            raise ModelLoadError(f"{file.name} is not a valid skops file: {exc}") from exc
        if untrusted:
            raise ModelLoadError(
                f"{file.name} contains types skops does not trust by default: {untrusted}. "
                "If you trust this file, list them in [model.options] trusted_types"
            )
        try:
            return sio.load(file, trusted=trusted or None)
        except Exception as exc:
            raise ModelLoadError(f"{file.name} could not be loaded by skops: {exc}") from exc

    def _load_pickle(self, file: Path) -> Any:
        if self.options.get("trust_pickle") is not True:
            raise ModelLoadError(
                f"{file.name} is a pickle: loading it runs any code inside it. Convert it to "
                "skops (skops.io.dump) or ONNX, or, if you made this file yourself, set "
                "[model] trust_pickle = true in modelambda.toml"
            )
        print(
            f"WARNING modelambda: loading pickle {file.name} because trust_pickle = true; "
            "unpickling runs arbitrary code, only do this for files you made",
            file=sys.stderr,
            flush=True,
        )
        import joblib  # joblib reads both joblib and plain pickle files

        try:
            return joblib.load(file)
        except Exception as exc:
            raise ModelLoadError(f"{file.name} could not be unpickled: {exc}") from exc

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
