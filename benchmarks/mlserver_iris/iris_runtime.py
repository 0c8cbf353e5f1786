"""A minimal MLServer runtime serving an ONNX model with onnxruntime (for benchmarks/emulator.py).

MLServer has no ONNX runtime of its own: ``load`` opens an onnxruntime session on the model
file named by ``parameters.uri`` in model-settings.json; ``predict`` decodes each v2 input
with ``NumpyCodec``, runs the session and returns every output as a v2 tensor.

``parameters.extra`` may set the session's ``intra_op_threads`` and ``allow_spinning`` (the
benchmark gives it the function's own), else onnxruntime's defaults apply.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OnnxModel(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        extra = (self._settings.parameters.extra if self._settings.parameters else None) or {}
        options = ort.SessionOptions()
        if "intra_op_threads" in extra:
            options.intra_op_num_threads = int(extra["intra_op_threads"])
        if "allow_spinning" in extra:
            options.add_session_config_entry("session.intra_op.allow_spinning",
                                             "1" if extra["allow_spinning"] else "0")
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name: _DTYPES.get(i.type, np.float32)
                        for i in self._session.get_inputs()}
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {}
        for request_input in payload.inputs:
            dtype = self._inputs.get(request_input.name)
            if dtype is None:
                raise ValueError(f"unknown input {request_input.name!r}; "
                                 f"expected {sorted(self._inputs)}")
            feeds[request_input.name] = np.asarray(NumpyCodec.decode_input(request_input),
                                                   dtype=dtype)
        results = self._session.run(None, feeds)
        return InferenceResponse(
            model_name=self.name, model_version=self.version, id=payload.id,
            outputs=[NumpyCodec.encode_output(name, value)
                     for name, value in zip(self._outputs, results, strict=True)])
