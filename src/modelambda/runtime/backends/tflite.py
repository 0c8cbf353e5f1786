"""TensorFlow Lite models (``.tflite``) through ``ai-edge-litert``, the successor of
``tflite-runtime`` (which has no wheel for Python 3.12). No TensorFlow in the function.

Inputs and outputs are named by the model's signature when it has exactly one (Keras'
``keras_tensor`` / ``output_0``), else by their tensor names. Each input's first dimension is
the batch.

Batches: a converted model's tensors are often allocated for batch 1 (iris MLP: ``[1, 4]``).
The interpreter's inputs are resized to the request's batch and re-allocated, and that
allocation is kept until a request of another size comes. Measured on the iris MLP (this
machine, one thread, mean of 300 calls): 150 rows take about 0.05-0.09 ms resized against
1.7-2.6 ms invoked row by row (about 20-30x: per-invoke overhead dominates a model this
small); one row costs the same either way (0.03-0.1 ms), and alternating batch sizes, which
re-allocate every time, stay at 0.05-0.1 ms. A model whose graph cannot be resized (a
reshape fixed at batch 1, say) is detected at the first failed resize and then served row by
row, which is always correct.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.backends.xgboost import first_line, model_source, threads
from modelambda.runtime.errors import DependencyMissing, ModelError, ModelLoadError

SUFFIXES = (".tflite",)


def _dims(detail: Mapping[str, Any]) -> tuple[int | None, ...]:
    """Batch first as None; other dimensions from the shape signature (-1 = any size)."""
    signature = detail.get("shape_signature")
    shape = [int(d) for d in (signature if signature is not None and len(signature)
                              else detail["shape"])]
    return (None, *(d if d >= 0 else None for d in shape[1:])) if shape else ()


def _dtype(detail: Mapping[str, Any]) -> str:
    import numpy as np

    return str(np.dtype(detail["dtype"]).name)


class TFLiteBackend(Backend):
    framework = "tflite"
    option_keys = frozenset({"threads", "signature"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        try:  # deferred: only functions that serve TFLite pay for it
            Interpreter = importlib.import_module("ai_edge_litert.interpreter").Interpreter
        except ImportError as exc:
            raise DependencyMissing(
                f"the tflite backend needs ai-edge-litert (tflite-runtime has no wheel for "
                f"Python 3.12): {exc}") from exc
        file, data = model_source(path, blobs, SUFFIXES, "TFLite")
        name = os.path.basename(file)
        try:
            if data is not None:
                interpreter = Interpreter(model_content=data, num_threads=threads(self.options))
            else:
                interpreter = Interpreter(model_path=file, num_threads=threads(self.options))
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # "not a valid Flatbuffer buffer", ...
            raise ModelLoadError(f"{name} is not a loadable TFLite model: "
                                 f"{first_line(exc)}") from exc
        self.interpreter = interpreter
        inputs, outputs = self._named_details()
        self._in = [(n, int(d["index"]), list(int(x) for x in d["shape"])) for n, d in inputs]
        self._out = [(n, int(d["index"])) for n, d in outputs]
        self._inputs = [TensorSpec(n, _dtype(d), _dims(d)) for n, d in inputs]
        self._outputs = [TensorSpec(n, _dtype(d), _dims(d)) for n, d in outputs]
        self._allocated = tuple(tuple(shape) for _, _, shape in self._in)
        self._resizable = True

    def _named_details(self) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        """(name, tensor detail) of the inputs and outputs, by signature when there is one."""
        signatures = list(self.interpreter.get_signature_list())
        wanted = self.options.get("signature")
        if wanted is not None and wanted not in signatures:
            from modelambda.runtime.errors import ConfigError

            raise ConfigError(f"[model.options] signature = {wanted!r}: the model's "
                              f"signatures are {signatures}")
        key = wanted if wanted is not None else (signatures[0] if len(signatures) == 1
                                                 else None)
        if key is None:
            return ([(d["name"], d) for d in self.interpreter.get_input_details()],
                    [(d["name"], d) for d in self.interpreter.get_output_details()])
        runner = self.interpreter.get_signature_runner(key)
        return (sorted(runner.get_input_details().items(), key=lambda kv: kv[1]["index"]),
                sorted(runner.get_output_details().items(), key=lambda kv: kv[1]["index"]))

    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def _allocate(self, shapes: tuple[tuple[int, ...], ...]) -> bool:
        """Resize the inputs to ``shapes`` and allocate; False if the graph cannot be."""
        if shapes == self._allocated:
            return True
        try:
            for (_, index, _), shape in zip(self._in, shapes, strict=True):
                self.interpreter.resize_tensor_input(index, list(shape))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self._resizable = False
            original = tuple(tuple(shape) for _, _, shape in self._in)
            for (_, index, _), shape in zip(self._in, original, strict=True):
                self.interpreter.resize_tensor_input(index, list(shape))
            self.interpreter.allocate_tensors()
            self._allocated = original
            return False
        self._allocated = shapes
        return True

    def _run(self, arrays: Sequence[Any]) -> dict[str, Any]:
        for (_, index, _), array in zip(self._in, arrays, strict=True):
            self.interpreter.set_tensor(index, array)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index) for name, index in self._out}

    def predict(self, inputs: Any) -> Any:
        import numpy as np

        arrays = [np.ascontiguousarray(inputs[name]) for name, _, _ in self._in]
        try:
            if self._resizable and self._allocate(tuple(a.shape for a in arrays)):
                return self._run(arrays)
            # row by row, at the shapes the model was allocated with
            rows = [self._run([a[i:i + 1].reshape(self._allocated[k])
                               for k, a in enumerate(arrays)])
                    for i in range(len(arrays[0]))]
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"the TFLite interpreter failed: {first_line(exc)}") from exc
        return {name: np.concatenate([row[name] for row in rows]) for name, _ in self._out}
