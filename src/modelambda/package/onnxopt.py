"""ONNX models saved with onnxruntime's graph optimisations applied, once, at build time."""

from __future__ import annotations

from pathlib import Path

from modelambda.errors import ModelLoadError
from modelambda.package.archive import Entry


def optimized_onnx(model: list[Entry], work: Path) -> list[Entry]:
    """Model entries with each .onnx file replaced by its offline-optimised form.

    onnxruntime applies its graph optimisations at every session creation; saved once here
    (at the "extended" level, which does not depend on the CPU's instruction set), a cold
    start skips that work. The same onnxruntime version is pinned into the function."""
    if not any(entry.name.endswith(".onnx") for entry in model):
        return model
    try:
        import onnxruntime as ort
    except ImportError:
        return model
    out = []
    for entry in model:
        if not entry.name.endswith(".onnx"):
            out.append(entry)
            continue
        target = work / "optimized" / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        try:
            ort.InferenceSession(str(entry.source), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{entry.name}: onnxruntime {ort.__version__} cannot load it "
                                 f"({first}); check the file, or export it again") from exc
        out.append(Entry(entry.name, target))
    return out
