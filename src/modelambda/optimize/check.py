"""The accuracy check: the same inputs through the original and the new model, compared.

Inputs: the service's ``request.json`` instances first (what a client sends, through the
pipeline's hooks as a request would go), then, up to N, rows generated from the model's
input schema: uniform within the range the model itself reports for each feature (a tree
ensemble's split thresholds, LightGBM's ``feature_infos``) or the example rows span, widened
by 10 % each side; a fixed seed, so a check is repeatable. A model whose input cannot be
generated (text through a preprocess hook, integer token ids) is checked on the examples alone.

Both models answer through the in-function runtime (``App``), so the comparison is of the
predictions a client would get: for classifiers the share of equal labels, for every numeric
output the largest absolute difference, for vector outputs without labels (embeddings) the mean
cosine similarity of each row to the original's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from modelambda.optimize import CheckFailed, OptimizeError
from modelambda.spec import ServiceSpec

SEED = 0
MARGIN = 0.1  # of a feature's range, each side
MAX_CHUNK = 256


@dataclass
class Thresholds:
    min_agreement: float = 0.99  # labels: share equal
    max_diff: float | None = None  # any numeric output: largest absolute difference
    min_cosine: float = 0.98  # vector outputs without labels: mean cosine similarity


@dataclass
class CheckResult:
    inputs: int
    from_examples: int
    generated: int
    label_agreement: float | None = None
    max_diff: float | None = None
    max_diff_output: str | None = None
    mean_cosine: float | None = None
    min_cosine: float | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        parts = [f"{self.inputs} inputs ({self.from_examples} from request.json, "
                 f"{self.generated} generated)"]
        if self.label_agreement is not None:
            parts.append(f"label agreement {self.label_agreement:.2%}")
        if self.max_diff is not None:
            parts.append(f"largest difference {self.max_diff:.3g} ({self.max_diff_output})")
        if self.mean_cosine is not None:
            parts.append(f"mean cosine {self.mean_cosine:.4f} (lowest {self.min_cosine:.4f})")
        return ", ".join(parts)


# --- inputs -----------------------------------------------------------------------------------


def example_instances(spec: ServiceSpec) -> list[Any]:
    """The instances of the service's ``request.json`` (empty when there is none)."""
    file = spec.root / "request.json"
    if not file.is_file():
        return []
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise OptimizeError(f"{file}: not valid JSON ({exc}); the check reads its "
                            "'instances'") from exc
    instances = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(instances, list):
        raise OptimizeError(f"{file}: expected {{\"instances\": [...]}} for the check")
    return instances


def feature_ranges(backend: Any) -> list[tuple[float, float]] | None:
    """Per feature (low, high) as the model reports it, or None when it does not."""
    try:
        if backend.framework == "xgboost":
            return _xgboost_ranges(backend)
        if backend.framework == "lightgbm":
            return _lightgbm_ranges(backend)
        if backend.framework == "sklearn":
            return _sklearn_ranges(backend.model)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError):
        return None
    return None


def _from_thresholds(features: int, pairs: Any) -> list[tuple[float, float]] | None:
    low = [math.inf] * features
    high = [-math.inf] * features
    for feature, value in pairs:
        if 0 <= feature < features and math.isfinite(value):
            low[feature] = min(low[feature], value)
            high[feature] = max(high[feature], value)
    if all(math.isinf(v) for v in low):
        return None
    return [(lo, hi) if math.isfinite(lo) else (-1.0, 1.0) for lo, hi in zip(low, high,
                                                                              strict=True)]


def _xgboost_ranges(backend: Any) -> list[tuple[float, float]] | None:
    model = json.loads(bytes(backend.booster.save_raw("json")))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    features = int(backend.booster.num_features())
    pairs = ((int(f), float(c)) for tree in trees for f, c, left in zip(
        tree["split_indices"], tree["split_conditions"], tree["left_children"], strict=True)
        if left != -1)
    return _from_thresholds(features, pairs)


def _lightgbm_ranges(backend: Any) -> list[tuple[float, float]] | None:
    infos = backend.header["feature_infos"].split()
    out = []
    for info in infos:
        if info.startswith("[") and ":" in info:
            lo, _, hi = info.strip("[]").partition(":")
            out.append((float(lo), float(hi)))
        else:  # "none" (unused) or a categorical feature's values "0:1:2"
            values = [float(v) for v in info.split(":") if v not in ("", "none")]
            out.append((min(values), max(values)) if values else (-1.0, 1.0))
    return out


def _sklearn_ranges(estimator: Any) -> list[tuple[float, float]] | None:
    features = getattr(estimator, "n_features_in_", None)
    if features is None:
        return None
    trees = []
    for member in [estimator, *list(_flat(getattr(estimator, "estimators_", [])))]:
        tree = getattr(member, "tree_", None)
        if tree is not None:
            trees.append(tree)
    pairs = ((int(f), float(t)) for tree in trees
             for f, t in zip(tree.feature, tree.threshold, strict=True) if f >= 0)
    return _from_thresholds(int(features), pairs)


def _flat(items: Any) -> Any:
    for item in items:
        if isinstance(item, list | tuple) or getattr(item, "ndim", 0) >= 1:
            yield from _flat(item)
        else:
            yield item


def generated_rows(specs: Any, count: int, ranges: list[tuple[float, float]] | None,
                   examples: list[Any]) -> list[Any] | None:
    """``count`` rows for a single float tensor input of fixed feature shape, or None."""
    import numpy as np

    if count <= 0 or not specs or len(specs) != 1:
        return None
    spec = specs[0]
    if spec.dtype in (None, "str") or spec.shape is None or len(spec.shape) != 2 \
            or spec.shape[1] is None or np.dtype(spec.dtype).kind != "f":
        return None
    features = int(spec.shape[1])
    low = np.full(features, np.inf)
    high = np.full(features, -np.inf)
    if ranges is not None and len(ranges) == features:
        low = np.minimum(low, [r[0] for r in ranges])
        high = np.maximum(high, [r[1] for r in ranges])
    try:
        rows = np.asarray(examples, dtype=np.float64)
        if rows.ndim == 2 and rows.shape[1] == features and len(rows):
            low, high = np.minimum(low, rows.min(axis=0)), np.maximum(high, rows.max(axis=0))
    except (ValueError, TypeError):
        pass
    unknown = ~np.isfinite(low) | ~np.isfinite(high)
    low[unknown], high[unknown] = -1.0, 1.0
    span = np.maximum(high - low, 1e-6)
    low, high = low - MARGIN * span, high + MARGIN * span
    rng = np.random.default_rng(SEED)
    generated: list[Any] = rng.uniform(low, high, size=(count, features)).astype(
        spec.dtype).tolist()
    return generated


# --- comparison -------------------------------------------------------------------------------


def _columns(predictions: list[Any]) -> dict[str, list[Any]]:
    if predictions and isinstance(predictions[0], dict):
        return {key: [p.get(key) for p in predictions] for key in predictions[0]}
    return {"predictions": predictions}


def _numeric(values: list[Any]) -> Any:
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    return array.reshape(len(values), -1)


def _answers(app: Any, instances: list[Any], which: str) -> list[Any]:
    from modelambda.runtime.errors import ModelambdaError

    size = max(1, min(app.model.max_batch, MAX_CHUNK))
    predictions: list[Any] = []
    for start in range(0, len(instances), size):
        try:
            answer = app.handle({"instances": instances[start:start + size]})
        except ModelambdaError as exc:
            raise OptimizeError(f"the check's inputs fail on the {which} model: "
                                f"{exc.error_type}: {exc}") from exc
        predictions.extend(answer["predictions"])
    return predictions


def compare(original: Any, new: Any, instances: list[Any], from_examples: int,
            thresholds: Thresholds) -> CheckResult:
    """Run ``instances`` through both apps and compare their predictions."""
    import numpy as np

    result = CheckResult(len(instances), from_examples, len(instances) - from_examples,
                         thresholds=asdict(thresholds))
    before = _columns(_answers(original, instances, "original"))
    after = _columns(_answers(new, instances, "new"))
    common = [key for key in before if key in after]
    if not common and len(before) == len(after) == 1:
        (old_key, old), (new_key, values) = next(iter(before.items())), next(iter(after.items()))
        result.notes.append(f"compared output {old_key!r} with {new_key!r}")
        before, after, common = {old_key: old}, {old_key: values}, [old_key]
    if not common:
        raise OptimizeError(f"the new model answers with {sorted(after)}, the original with "
                            f"{sorted(before)}: nothing to compare")
    for key in sorted(set(before) ^ set(after)):
        result.notes.append(f"output {key!r} is only in the "
                            f"{'original' if key in before else 'new'} model")
    for key in common:
        if key == "label":
            same = [json.dumps(a) == json.dumps(b) for a, b in zip(before[key], after[key],
                                                                   strict=True)]
            result.label_agreement = sum(same) / len(same)
            continue
        old, values = _numeric(before[key]), _numeric(after[key])
        if old is None or values is None:
            continue
        if old.shape != values.shape:
            result.failures.append(f"output {key!r} has shape {list(values.shape[1:])} per "
                                   f"instance, the original {list(old.shape[1:])}")
            continue
        diff = float(np.abs(old - values).max()) if old.size else 0.0
        if result.max_diff is None or diff > result.max_diff:
            result.max_diff, result.max_diff_output = diff, key
        if "label" not in before and old.shape[1] > 1:
            norms = np.linalg.norm(old, axis=1) * np.linalg.norm(values, axis=1)
            cosine = np.sum(old * values, axis=1) / np.maximum(norms, 1e-12)
            result.mean_cosine = float(cosine.mean())
            result.min_cosine = float(cosine.min())
    _gate(result, thresholds)
    return result


def _gate(result: CheckResult, thresholds: Thresholds) -> None:
    if result.label_agreement is not None and result.label_agreement < thresholds.min_agreement:
        result.failures.append(f"label agreement {result.label_agreement:.2%} is below "
                               f"--min-agreement {thresholds.min_agreement:.2%}")
    if thresholds.max_diff is not None and result.max_diff is not None \
            and result.max_diff > thresholds.max_diff:
        result.failures.append(f"largest difference {result.max_diff:.3g} "
                               f"({result.max_diff_output}) is above --max-diff "
                               f"{thresholds.max_diff:g}")
    if result.mean_cosine is not None and result.mean_cosine < thresholds.min_cosine:
        result.failures.append(f"mean cosine similarity {result.mean_cosine:.4f} is below "
                               f"--min-cosine {thresholds.min_cosine:g}")


def raise_if_failed(result: CheckResult, new_name: str) -> None:
    if not result.passed:
        raise CheckFailed(f"refused: {new_name} was not written: {'; '.join(result.failures)} "
                          f"(checked {result.summary()}); lower the threshold if that is "
                          "good enough for you")
