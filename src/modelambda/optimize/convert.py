"""scikit-learn, XGBoost and LightGBM models -> ONNX.

Each model is loaded the way its backend loads it (skops' trust rules, a pickle only when
the spec trusts it; the same messages for a damaged file), then converted: scikit-learn with
skl2onnx, XGBoost and LightGBM with onnxmltools. The ONNX model takes one float32 input named
``input`` ``[N, features]`` and answers with the outputs the original backend answers with, so
a client sees predictions of the same shape after the switch:

- classifiers: ``label`` ``[N]`` and ``probabilities`` ``[N, classes]`` (no ZipMap);
- scikit-learn regressors: ``label`` ``[N]`` (what the sklearn backend calls ``predict``'s
  answer); XGBoost and LightGBM regressors: ``prediction`` ``[N]``.

A converter that has no conversion for a step of the model raises ``OptimizeError`` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelambda.optimize import OptimizeError
from modelambda.runtime.errors import ModelambdaError
from modelambda.spec import ServiceSpec, backend_options

CONVERTIBLE = ("sklearn", "xgboost", "lightgbm")
OPSET = 17  # the default domain, skl2onnx; onnxruntime >= 1.17 runs it
ONNXMLTOOLS_OPSET = 15  # the highest onnxmltools 1.16 converts to
ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier/Regressor as onnxruntime optimises them
_MISSING_CONVERTER = re.compile(r"type '<class '([\w.]+)'>'")


@dataclass
class Converted:
    framework: str  # the original's
    converter: str  # e.g. "skl2onnx 1.20.0"
    model_type: str  # e.g. "RandomForestClassifier", "XGBoost multi:softprob"
    notes: list[str] = field(default_factory=list)


def model_file(spec: ServiceSpec) -> Path:
    """The one model file of the spec (its path, or the one model file in its directory)."""
    from modelambda.spec import SUFFIX_FRAMEWORKS

    path = spec.model_path
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.is_file()
                   and SUFFIX_FRAMEWORKS.get(p.suffix) == spec.model.framework)
    if len(found) != 1:
        raise OptimizeError(f"{spec.model.path} must hold exactly one {spec.model.framework} "
                            f"model file to optimise, found {len(found)}")
    return found[0]


def load_backend(spec: ServiceSpec, framework: str | None = None) -> Any:
    """The spec's model loaded by its backend, as a function loads it."""
    from modelambda.runtime.backends import load_backend_class, resolve

    framework = framework or spec.model.framework
    backend = load_backend_class(resolve(framework))(backend_options(spec.model))
    backend.load(str(spec.model_path))
    return backend


def check_convertible(spec: ServiceSpec) -> None:
    """OptimizeError unless the spec's model can be converted to ONNX."""
    framework = spec.model.framework
    if framework == "onnx":
        raise OptimizeError(f"{spec.model.path} is already ONNX: nothing to convert (to "
                            "quantise it, pass --quantize int8 without --to)")
    if framework not in CONVERTIBLE:
        raise OptimizeError(f"converting {framework} models to ONNX is not supported; "
                            f"--to onnx converts {', '.join(CONVERTIBLE)} models")


def to_onnx(spec: ServiceSpec, target: Path) -> Converted:
    """Convert the spec's model and save it as ``target``; the model file is not touched."""
    check_convertible(spec)
    framework = spec.model.framework
    try:
        import onnx
    except ImportError as exc:
        raise OptimizeError(f"--to onnx needs onnx, skl2onnx and onnxmltools: pip install "
                            f"'modelambda[optimize]' ({exc})") from exc
    try:
        backend = load_backend(spec)
    except ModelambdaError as exc:
        raise OptimizeError(str(exc)) from exc
    name = model_file(spec).name
    if framework == "sklearn":
        model, info = _sklearn(backend.model, name)
    elif framework == "xgboost":
        model, info = _xgboost(backend, name)
    else:
        model, info = _lightgbm(backend, name)
    _batch_dimension(model)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OptimizeError(f"{info.converter} made an invalid ONNX model from {name}: "
                            f"{_first(exc)}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return info


def _first(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{module} {version(module)}"
    except PackageNotFoundError:
        return module


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptimizeError(f"--to onnx needs {module.split('.')[0]}: pip install "
                            f"'modelambda[optimize]' ({exc})") from exc


# --- scikit-learn -------------------------------------------------------------------------


def _sklearn(estimator: Any, name: str) -> tuple[Any, Converted]:
    skl2onnx = _import("skl2onnx")
    data_types = _import("skl2onnx.common.data_types")
    from sklearn.base import is_classifier

    features = getattr(estimator, "n_features_in_", None)
    if features is None:
        raise OptimizeError(f"{name}: {type(estimator).__name__} does not say how many "
                            "features it takes (n_features_in_); cannot convert it")
    classifier = bool(is_classifier(estimator))
    info = Converted("sklearn", _version("skl2onnx"), type(estimator).__name__)
    try:
        model = skl2onnx.convert_sklearn(
            estimator, initial_types=[("input", data_types.FloatTensorType([None,
                                                                            int(features)]))],
            options={id(estimator): {"zipmap": False}} if classifier else None,
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    except Exception as exc:
        raise OptimizeError(_unsupported(exc, info.converter, name)) from exc
    renames = {"output_label": "label", "output_probability": "probabilities"}
    _rename_outputs(model, renames)
    if not classifier:
        _flatten_single_output(model, "label")
    return model, info


def _unsupported(exc: Exception, converter: str, name: str) -> str:
    """The converter's failure as one line; a missing converter names the step's type."""
    found = _MISSING_CONVERTER.search(str(exc))
    if found:
        qualified = found.group(1)
        return (f"{converter} has no converter for {qualified.rsplit('.', 1)[-1]} "
                f"({qualified}) in {name}: serve it with its own backend, or replace that "
                "step with one the converter supports")
    return f"{converter} could not convert {name}: {type(exc).__name__}: {_first(exc)}"


# --- XGBoost, LightGBM ----------------------------------------------------------------------


def _initial_types(features: int) -> list[tuple[str, Any]]:
    data_types = _import("onnxmltools.convert.common.data_types")
    return [("input", data_types.FloatTensorType([None, features]))]


def _xgboost(backend: Any, name: str) -> tuple[Any, Converted]:
    onnxmltools = _import("onnxmltools")
    features = int(backend.inputs()[0].shape[1])
    info = Converted("xgboost", _version("onnxmltools"), f"XGBoost {backend.objective}")
    try:
        model = onnxmltools.convert_xgboost(backend.booster, initial_types=_initial_types(
            features), target_opset=ONNXMLTOOLS_OPSET)
    except Exception as exc:
        raise OptimizeError(f"{info.converter} could not convert {name} (objective "
                            f"{backend.objective}): {type(exc).__name__}: "
                            f"{_first(exc)}") from exc
    _tree_outputs(model, backend)
    return model, info


def _lightgbm(backend: Any, name: str) -> tuple[Any, Converted]:
    onnxmltools = _import("onnxmltools")
    features = int(backend.inputs()[0].shape[1])
    info = Converted("lightgbm", _version("onnxmltools"),
                     f"LightGBM {backend.objective or 'model'}")
    info.notes.append("LightGBM compares float64 rows with its thresholds; the ONNX model "
                      "takes float32 (the check shows whether any prediction changes)")
    try:
        model = onnxmltools.convert_lightgbm(backend.booster, initial_types=_initial_types(
            features), target_opset=ONNXMLTOOLS_OPSET, zipmap=False)
    except Exception as exc:
        raise OptimizeError(f"{info.converter} could not convert {name} (objective "
                            f"{backend.objective}): {type(exc).__name__}: "
                            f"{_first(exc)}") from exc
    _tree_outputs(model, backend)
    return model, info


def _tree_outputs(model: Any, backend: Any) -> None:
    """The converter's output names -> the tree backends' (label, probabilities or
    prediction)."""
    names = [o.name for o in model.graph.output]
    if "label" in names:
        _rename_outputs(model, {"output_probability": "probabilities"})
        wanted = set(backend._wanted)
        for unwanted in ({"label", "probabilities"} - wanted):
            _drop_output(model, unwanted)
    else:
        _rename_outputs(model, {names[0]: "prediction"})
        _flatten_single_output(model, "prediction")


# --- graph edits ------------------------------------------------------------------------------


def _rename_outputs(model: Any, renames: dict[str, str]) -> None:
    for node in model.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for output in model.graph.output:
        output.name = renames.get(output.name, output.name)


def _drop_output(model: Any, name: str) -> None:
    keep = [o for o in model.graph.output if o.name != name]
    del model.graph.output[:]
    model.graph.output.extend(keep)


def _flatten_single_output(model: Any, name: str) -> None:
    """A single ``[N, 1]`` output -> ``name`` ``[N]``, as the original backend answers."""
    import numpy as np
    from onnx import helper, numpy_helper

    if len(model.graph.output) != 1:
        return
    output = model.graph.output[0]
    dims = output.type.tensor_type.shape.dim
    if len(dims) != 2 or dims[1].dim_value not in (0, 1):
        if output.name != name:
            _rename_outputs(model, {output.name: name})
        return
    source = output.name
    if source == name:
        _rename_outputs(model, {source: f"{name}_2d"})
        source = f"{name}_2d"
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), name=f"{name}_shape")
    model.graph.initializer.append(shape)
    model.graph.node.append(helper.make_node("Reshape", [source, shape.name], [name],
                                             name=f"{name}_flatten"))
    elem = output.type.tensor_type.elem_type
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(name, elem, ["N"]))


def _batch_dimension(model: Any) -> None:
    """Outputs declared with a fixed first dimension of 1 (onnxmltools' LightGBM label) get a
    symbolic batch dimension, as the input has; onnxruntime warns on every run otherwise."""
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].dim_param = "N"
