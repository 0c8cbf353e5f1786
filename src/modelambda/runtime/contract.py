"""The inference contract (DESIGN.md section 3): requests in, predictions out.

``{"instances": [...]}`` -> model inputs, checked against the model's own input specs
(names, dtypes, shapes, finite values) so that a bad request is a 4xx that says exactly what is
wrong, never a crash inside the backend. The Open Inference Protocol v2 request/response shape
is the alternative (its tensors encoded by ``runtime/v2.py``). Pure functions of numpy arrays:
no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelambda.runtime.backends.base import TensorSpec
from modelambda.runtime.errors import (
    BatchTooLarge,
    DTypeError,
    EmptyBatch,
    InvalidValue,
    MissingField,
    ModelError,
    ShapeError,
)
from modelambda.runtime.v2 import V2_TO_NUMPY, encode_tensor

_KIND_NAMES = {"U": "strings", "S": "bytes", "O": "nulls, objects or mixed types",
               "b": "booleans", "i": "integers", "u": "integers", "f": "numbers"}


def check_batch(instances: Any, max_batch: int) -> list[Any]:
    if not isinstance(instances, list):
        raise ShapeError(
            f"'instances' must be a list with one element per row, got {type(instances).__name__}"
        )
    if not instances:
        raise EmptyBatch("'instances' is empty: send at least one instance")
    if len(instances) > max_batch:
        raise BatchTooLarge(
            f"{len(instances)} instances in one request; this function takes at most "
            f"{max_batch} ([model] max_batch): split the batch"
        )
    return instances


def _dims(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _check_finite(arr: np.ndarray, name: str, where: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidValue(
            f"{where}: input {name!r} has {arr[index].item()!r} at index {list(index)}; the "
            "model takes "
            "finite numbers only (set [model] allow_nonfinite = true if it handles missing values)"
        )


def to_tensor(
    values: Any, spec: TensorSpec, *, allow_nonfinite: bool = False, where: str = "request"
) -> np.ndarray:
    """Turn batch-first values into an array of the spec's dtype and shape, or say why not."""
    try:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise ShapeError(
            f"{where}: input {spec.name!r}: instances do not all have the same shape ({exc})"
        ) from exc
    if spec.dtype == "uint64" and arr.dtype.kind == "f" and not isinstance(values, np.ndarray):
        arr = _exact_uint64(values, arr)
    arr = _convert_dtype(arr, spec, allow_nonfinite, where)
    if spec.shape is not None:
        expected = spec.shape[1:]
        got = arr.shape[1:]
        mismatch = len(got) != len(expected) or any(
            e is not None and g != e for g, e in zip(got, expected, strict=True)
        )
        if mismatch:
            hint = ""
            if len(expected) == 1 and len(got) == 1 and expected[0] is not None:
                hint = f": expected {expected[0]} features per instance, got {got[0]}"
            elif arr.ndim == 0 or (len(got) + 1 == len(expected)):
                hint = ": wrap each instance in a list, one list per row"
            raise ShapeError(
                f"{where}: input {spec.name!r} takes instances of shape {_dims(expected)}, "
                f"got {list(got)}{hint}"
            )
    return arr  # type: ignore[no-any-return]


def _exact_uint64(values: Any, inferred: np.ndarray) -> np.ndarray:
    """numpy reads a list that mixes integers above int64's range with others as float64,
    losing their low digits; read it as uint64 instead when that gives the same numbers."""
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            exact = np.array(values, dtype=np.uint64)
    except (OverflowError, ValueError, TypeError):
        return inferred
    same = exact.shape == inferred.shape and np.array_equal(exact.astype(np.float64), inferred)
    return exact if same else inferred


def _convert_dtype(arr: np.ndarray, spec: TensorSpec, allow_nonfinite: bool, where: str) -> Any:
    if spec.dtype is None:
        return arr
    kind = arr.dtype.kind
    if spec.dtype == "str":
        if kind not in "US":
            raise DTypeError(
                f"{where}: input {spec.name!r} takes strings, got {_KIND_NAMES.get(kind, kind)}"
            )
        return arr.astype(object)
    target = np.dtype(spec.dtype)
    if kind not in "biuf":
        raise DTypeError(
            f"{where}: input {spec.name!r} takes numbers ({target.name}), got "
            f"{_KIND_NAMES.get(kind, arr.dtype.name)}"
        )
    if kind == "f":
        if not allow_nonfinite or target.kind in "iu":  # no integer is NaN or infinite
            _check_finite(arr, spec.name, where)
        if target.kind in "iu" and not np.all(np.mod(arr, 1) == 0):
            raise DTypeError(
                f"{where}: input {spec.name!r} takes integers ({target.name}), got fractions"
            )
    if target.kind in "iu" and arr.size:  # a cast would wrap around silently
        info = np.iinfo(target)
        # as Python numbers: numpy compares a bool or int64 with 2**64 - 1 by converting the
        # bound to a C long, which overflows
        low, high = arr.min().item(), arr.max().item()
        # floats: int64's and uint64's maxima round up to 2**63 and 2**64 as floats, which
        # are out of range, so the bound is max + 1 (a power of two, exact as a float)
        too_high = high >= float(info.max + 1) if kind == "f" else high > info.max
        if low < info.min or too_high:
            raise InvalidValue(
                f"{where}: input {spec.name!r} takes {target.name} values from {info.min} to "
                f"{info.max}; got {(low if low < info.min else high)!r}")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        out = arr.astype(target, copy=False)
    if target.kind == "f" and not allow_nonfinite and out.dtype.itemsize < arr.dtype.itemsize:
        _check_finite(out, spec.name, f"{where} (after conversion to {target.name})")
    return out


def instances_to_inputs(
    instances: list[Any], specs: Sequence[TensorSpec], *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """``instances`` (rows, or objects keyed by input name) -> ``{input name: array}``."""
    names = [s.name for s in specs]
    if len(specs) == 1 and not isinstance(instances[0], dict):
        return {names[0]: to_tensor(instances, specs[0], allow_nonfinite=allow_nonfinite)}
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise ShapeError(
                f"instance {i} is a {type(instance).__name__}; this model takes "
                f"{len(names)} inputs, so each instance must be an object with keys {names}"
            )
        for name in names:
            if name not in instance:
                raise MissingField(f"instance {i} has no {name!r}; the model's inputs are {names}")
            columns[name].append(instance[name])
        extra = set(instance) - set(names)
        if extra:
            raise MissingField(
                f"instance {i} has unknown key(s) {sorted(extra)}; the model's inputs are {names}"
            )
    return {
        s.name: to_tensor(columns[s.name], s, allow_nonfinite=allow_nonfinite) for s in specs
    }


def prepared_to_inputs(
    prepared: Any, specs: Sequence[TensorSpec], *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """A preprocess hook's output (a mapping by input name, or one array) -> model inputs."""
    where = "preprocess output"
    if isinstance(prepared, Mapping):
        missing = [s.name for s in specs if s.name not in prepared]
        if missing:
            raise ModelError(f"{where} lacks input(s) {missing}; it has {sorted(prepared)}")
        return {
            s.name: to_tensor(prepared[s.name], s, allow_nonfinite=allow_nonfinite, where=where)
            for s in specs
        }
    if len(specs) != 1:
        raise ModelError(
            f"{where} must be a dict keyed by {[s.name for s in specs]} for this multi-input model"
        )
    return {specs[0].name: to_tensor(prepared, specs[0], allow_nonfinite=allow_nonfinite,
                                     where=where)}


def _as_list(value: Any) -> Any:
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        # JSON has no NaN or infinity; a client would get invalid JSON or a null
        raise ModelError("the model produced NaN or infinity, which JSON cannot carry; "
                         "check the input or the model")
    return value.tolist()


def outputs_to_predictions(outputs: Any, batch: int) -> list[Any]:
    """Model outputs -> one prediction per instance.

    One output: each prediction is that output's row. Several: each prediction is an object
    keyed by output name.
    """
    if isinstance(outputs, Mapping):
        columns = {name: _as_list(value) for name, value in outputs.items()}
        for name, column in columns.items():
            if not isinstance(column, list) or len(column) != batch:
                raise ModelError(
                    f"model output {name!r} does not have one row per instance ({batch})"
                )
        if len(columns) == 1:
            return next(iter(columns.values()))
        names = list(columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    predictions = _as_list(outputs)
    if not isinstance(predictions, list) or len(predictions) != batch:
        size = len(predictions) if isinstance(predictions, list) else type(predictions).__name__
        raise ModelError(f"the model returned {size} predictions for {batch} instances")
    return predictions


# --- Open Inference Protocol v2 ---------------------------------------------------------


def v2_tensors(body: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Decode the ``inputs`` of a v2 inference request into arrays of their stated shape."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise MissingField("a v2 request needs 'inputs': a non-empty list of tensors")
    tensors: dict[str, np.ndarray] = {}
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise ShapeError(f"inputs[{i}] must be an object with name, shape, datatype, data")
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in item]
        if missing:
            raise MissingField(f"inputs[{i}] lacks {missing}")
        name, shape, datatype = item["name"], item["shape"], item["datatype"]
        if not isinstance(datatype, str) or datatype not in V2_TO_NUMPY:
            raise DTypeError(
                f"inputs[{i}] ({name}): unknown datatype {datatype!r}; one of {list(V2_TO_NUMPY)}"
            )
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                                and d >= 0 for d in shape)):
            raise ShapeError(f"inputs[{i}] ({name}): shape must be a list of non-negative ints")
        spec = TensorSpec(str(name), V2_TO_NUMPY[datatype], None)
        flat = to_tensor(item["data"], spec, allow_nonfinite=True, where=f"inputs[{i}]").ravel()
        needed = math.prod(shape)  # exact: np.prod wraps around past int64
        if flat.size != needed:
            raise ShapeError(
                f"inputs[{i}] ({name}): shape {shape} needs {needed} values, data has {flat.size}"
            )
        tensors[str(name)] = flat.reshape(shape)
    return tensors


def v2_to_inputs(
    tensors: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], *, allow_nonfinite: bool
) -> dict[str, np.ndarray]:
    names = [s.name for s in specs]
    if len(specs) == 1 and len(tensors) == 1:
        # A single-input model takes a single tensor whatever the client named it.
        return {names[0]: to_tensor(next(iter(tensors.values())), specs[0],
                                    allow_nonfinite=allow_nonfinite)}
    missing = [n for n in names if n not in tensors]
    if missing:
        raise MissingField(f"v2 request lacks input(s) {missing}; the model's inputs are {names}")
    return {s.name: to_tensor(tensors[s.name], s, allow_nonfinite=allow_nonfinite)
            for s in specs}


def v2_response(
    outputs: Any, model_name: str, model_version: str, request_id: str | None
) -> dict[str, Any]:
    if not isinstance(outputs, Mapping):
        outputs = {"predictions": outputs}
    encoded = [encode_tensor(name, value) for name, value in outputs.items()]
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version,
                                "outputs": encoded}
    if request_id is not None:
        response["id"] = request_id
    return response
