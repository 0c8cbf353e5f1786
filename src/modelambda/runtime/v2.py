"""Open Inference Protocol v2 tensors: the one encoder (and trusting decoder) of the runtime.

A v2 tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` flattened in row-major
order. The function answers v2 requests with it (``contract.v2_response``) and the endpoint
backend sends its requests with it and reads its endpoint's answers. A client's request is
decoded by ``contract.v2_tensors`` instead, which checks every field and value and says what is
wrong with a 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Open Inference Protocol v2 datatypes <-> numpy dtype names ("str": numpy strings or objects).
V2_TO_NUMPY = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "str",
}
NUMPY_TO_V2 = {v: k for k, v in V2_TO_NUMPY.items()}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The v2 datatype of an array: BYTES for strings and objects; a dtype v2 has no name for
    (e.g. float128) travels as FP64."""
    if dtype.kind in "USO":
        return "BYTES"
    return NUMPY_TO_V2.get(dtype.name, "FP64")


def spec_datatype(dtype: str | None) -> str:
    """The v2 datatype of a ``TensorSpec`` dtype name (None, not known: BYTES), for metadata."""
    return NUMPY_TO_V2.get(dtype or "", "BYTES")


def encode_tensor(name: str, value: Any) -> dict[str, Any]:
    """An array (or anything ``np.asarray`` takes) -> a v2 tensor."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    return {"name": name, "shape": list(arr.shape), "datatype": datatype_of(arr.dtype),
            "data": arr.ravel().tolist()}


def decode_tensor(item: Mapping[str, Any]) -> np.ndarray:
    """A v2 tensor from a peer trusted to send valid ones (an endpoint's answer) -> an array of
    its datatype and shape; BYTES and unknown datatypes keep what numpy infers."""
    dtype = V2_TO_NUMPY.get(str(item.get("datatype", "")))
    array = np.asarray(item["data"], dtype=None if dtype in (None, "str") else dtype)
    return array.reshape(item["shape"])
