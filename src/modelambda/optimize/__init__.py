"""``modelambda optimize``: a model converted to ONNX or quantised to int8, checked against
the original, written as a new version beside it (never replacing it).

- ``convert.py``: scikit-learn (skl2onnx), XGBoost and LightGBM (onnxmltools) -> ONNX;
- ``quantize.py``: dynamic int8 quantisation of ONNX models (onnxruntime.quantization);
- ``check.py``: N inputs through the original and the new model, side by side;
- ``run.py``: the command's steps (name the version, convert/quantise in a scratch
  directory, check, move into place, record a report, publish to the model store);
- ``sizes.py``: ``what_if(spec)``, what converting or quantising would change, for
  ``advise``.

Build-side only: nothing here ships in a function.
"""

from __future__ import annotations

from modelambda.errors import ModelambdaError


class OptimizeError(ModelambdaError):
    """The model cannot be optimised as asked (one line: what, and what to do)."""


class CheckFailed(OptimizeError):
    """The new version does not agree with the original within the thresholds."""


__all__ = ["CheckFailed", "OptimizeError"]
