"""``what_if(spec)``: what converting or quantising the model would change, for ``advise``.

Pure: reads files, writes nothing, builds nothing. Each item is a dict (see ``what_if``);
the numbers come from the real thing when it exists:

- the model's size after: the report of an earlier ``modelambda optimize`` run on this
  service (``DIR/.modelambda/optimize/*.json``, with that run's check), else an estimate;
- the dependencies' size: this machine's installs for the target (the cache ``build`` fills,
  unpacked and byte-compiled, before slimming), else the estimates below.

Estimates (``DEPENDENCY_BYTES``): what each framework's requirement set unpacks to for
CPython 3.12 on manylinux x86_64, measured from this project's dependency cache (numpy 2.4.6,
onnxruntime 1.32.0, scikit-learn 1.9.1 with scipy 1.17.1 and skops 0.16.0, xgboost-cpu
3.2.0 with scipy, lightgbm 4.7.0 with scipy, ai-edge-litert 2.3.0; November 2026).
int8 (dynamic, per channel) stores MatMul/Gemm/Gather weights in a quarter of their float32
bytes: MiniLM-L6 86.5 MB -> 22.8 MB (0.26x); a tree ensemble has no such weights and does not
shrink.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelambda.spec import ServiceSpec

MB = 2**20
# requirement set (BACKEND_REQUIREMENTS) -> bytes unpacked, x86_64, cp312 (see above)
DEPENDENCY_BYTES = {
    "onnx": 152_884_383,
    "sklearn": 273_508_563,
    "xgboost": 213_000_000,
    "lightgbm": 199_000_000,
    "tflite": 131_000_000,
}
CONVERTIBLE = ("sklearn", "xgboost", "lightgbm")
INT8_WEIGHT_RATIO = 0.25  # int8 weight bytes / float32 weight bytes
INT8_MODEL_RATIO = 0.26  # measured on MiniLM-L6 (weights plus graph)
_WEIGHT_OPS = ("MatMul", "Gemm", "Gather", "Attention", "LSTM", "Conv",
               "EmbedLayerNormalization")


def what_if(spec: ServiceSpec) -> list[dict[str, Any]]:
    """What each applicable optimisation would change, one dict per option:

    ``change`` ("onnx" for scikit-learn, XGBoost and LightGBM models, "int8" for ONNX
    models with weights to quantise), ``command`` (the optimize command line),
    ``summary`` (one sentence with the numbers), ``dependencies`` ({"drops", "adds",
    "bytes_before", "bytes_after", "source"}), ``model`` ({"bytes_before", "bytes_after",
    "source"}), ``unzipped_delta_bytes`` (what the function and its layers unpack, after
    minus before; negative is smaller), ``check`` (the check's result of a real run, or None),
    ``written`` (whether that run wrote the version; None without a run) and ``path`` (the
    new version, relative to the service dir, when written). ``source`` is "measured" or
    "estimate". Empty when nothing applies (TFLite, a Python class, an endpoint).
    """
    framework = spec.model.framework
    items = []
    if framework in CONVERTIBLE:
        items.append(_convert(spec))
    elif framework == "onnx":
        quantized = _quantize(spec)
        if quantized is not None:
            items.append(quantized)
    return items


# --- pieces --------------------------------------------------------------------------------


def _report(spec: ServiceSpec, to: str | None, quantize: str | None) -> dict[str, Any] | None:
    from modelambda.optimize.run import reports

    for record in reports(spec):
        if record.get("to") == to and record.get("quantize") == quantize:
            return record
    return None


def _model_bytes(spec: ServiceSpec) -> int:
    path = spec.model_path
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def dependency_bytes(spec: ServiceSpec, framework: str) -> tuple[int, str]:
    """(bytes unpacked, "measured" | "estimate") of a framework's requirement set for the
    spec's target, with the service's own requirements.txt."""
    from modelambda.package import deps

    wanted = deps.pinned(list(deps.BACKEND_REQUIREMENTS.get(framework, ())))
    extra = deps.pinned(deps.read_requirements(spec.root / "requirements.txt"))
    requirements = sorted(set(wanted) | set(extra))
    python = spec.service.runtime.removeprefix("python")
    key_data = json.dumps([deps.CACHE_FORMAT, requirements, python, spec.service.architecture,
                           "python"])
    key = hashlib.sha256(key_data.encode()).hexdigest()[:16]
    cached = deps.cache_root() / f"deps-py{python}-{spec.service.architecture}-{key}"
    if (cached / ".complete").is_file():
        return sum(p.stat().st_size for p in cached.rglob("*") if p.is_file()
                   and p.name != ".complete"), "measured"
    # the service's own requirements are the same before and after: they cancel out
    return DEPENDENCY_BYTES.get(framework, DEPENDENCY_BYTES["onnx"]), "estimate"


def _names(framework: str) -> set[str]:
    from modelambda.package import deps

    return set(deps.BACKEND_REQUIREMENTS.get(framework, ()))


# what each framework's set pulls in besides what it names (for the summary's wording)
_PULLED_IN = {"sklearn": ("scipy", "joblib"), "xgboost": ("scipy",), "lightgbm": ("scipy",),
              "onnx": ("protobuf", "flatbuffers")}


def _convert(spec: ServiceSpec) -> dict[str, Any]:
    framework = spec.model.framework
    before, before_source = dependency_bytes(spec, framework)
    after, after_source = dependency_bytes(spec, "onnx")
    drops = sorted((_names(framework) - _names("onnx")) | set(_PULLED_IN[framework]))
    adds = sorted(_names("onnx") - _names(framework))
    model_before = _model_bytes(spec)
    record = _report(spec, "onnx", None)
    if record is not None:
        model_after, model_source = int(record["new"]["bytes"]), "measured"
    else:  # tree ensembles: about the size of the original's file (measured on iris:
        # RandomForest skops 1.8 MB -> 77 KB, XGBoost JSON 45 KB -> 13 KB, LightGBM text
        # 47 KB -> 24 KB); keep the original's as the upper bound
        model_after, model_source = model_before, "estimate"
    delta = (after - before) + (model_after - model_before)
    source = "measured" if "estimate" not in (before_source, after_source) else "estimate"
    summary = (f"converted to ONNX the function drops {', '.join(drops)} for "
               f"{', '.join(adds)}: dependencies ~{before / MB:,.0f} MB -> "
               f"~{after / MB:,.0f} MB unpacked ({source})")
    return {"change": "onnx", "command": f"modelambda optimize {spec.root} --to onnx",
            "summary": summary + _check_phrase(record),
            "dependencies": {"drops": drops, "adds": adds, "bytes_before": before,
                             "bytes_after": after, "source": source},
            "model": {"bytes_before": model_before, "bytes_after": model_after,
                      "source": model_source},
            "unzipped_delta_bytes": delta, **_run(record)}


def _quantize(spec: ServiceSpec) -> dict[str, Any] | None:
    model_before = _model_bytes(spec)
    record = _report(spec, None, "int8")
    if record is not None:
        model_after, source = int(record["new"]["bytes"]), "measured"
    else:
        estimated = _int8_estimate(spec, model_before)
        if estimated is None:
            return None  # no weights to quantise: nothing to say
        model_after, source = estimated, "estimate"
    summary = (f"int8: model {model_before / MB:,.1f} MB -> {model_after / MB:,.1f} MB "
               f"({source})")
    return {"change": "int8", "command": f"modelambda optimize {spec.root} --quantize int8",
            "summary": summary + _check_phrase(record),
            "dependencies": {"drops": [], "adds": [], "bytes_before": 0, "bytes_after": 0,
                             "source": "measured"},
            "model": {"bytes_before": model_before, "bytes_after": model_after,
                      "source": source},
            "unzipped_delta_bytes": model_after - model_before, **_run(record)}


def _int8_estimate(spec: ServiceSpec, model_before: int) -> int | None:
    """The model's bytes after int8: its weight initialisers at a quarter, the rest as is;
    None when it has none (a tree ensemble). Without onnx installed: the MiniLM ratio."""
    path = spec.model_path
    files = [path] if path.is_file() else sorted(path.rglob("*.onnx")) if path.is_dir() else []
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return int(model_before * INT8_MODEL_RATIO) if files else None
    weights = 0
    for file in files:
        try:
            model = onnx.load(str(file), load_external_data=False)
        except Exception:
            return None
        consumed = {name for node in model.graph.node if node.op_type in _WEIGHT_OPS
                    for name in node.input}
        for tensor in model.graph.initializer:
            if tensor.name in consumed and tensor.data_type == onnx.TensorProto.FLOAT:
                weights += numpy_helper.to_array(tensor).nbytes
    if weights == 0:
        return None
    return int(model_before - weights * (1 - INT8_WEIGHT_RATIO))


def _check_phrase(record: dict[str, Any] | None) -> str:
    if record is None:
        return ""
    check = record.get("check")
    if not check:
        return "; optimize ran without a check"
    parts = []
    if check.get("label_agreement") is not None:
        parts.append(f"label agreement {check['label_agreement']:.2%}")
    if check.get("mean_cosine") is not None:
        parts.append(f"mean cosine {check['mean_cosine']:.4f}")
    if check.get("max_diff") is not None:
        parts.append(f"largest difference {check['max_diff']:.3g}")
    verdict = "passed" if check.get("passed") else "refused"
    return f"; check on {check.get('inputs')} inputs {verdict}: {', '.join(parts)}"


def _run(record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"check": None, "written": None, "path": None}
    written = bool(record.get("written"))
    return {"check": record.get("check"), "written": written,
            "path": record["new"]["path"] if written else None}


__all__ = ["DEPENDENCY_BYTES", "what_if"]
