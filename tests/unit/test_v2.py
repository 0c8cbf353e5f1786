"""Open Inference Protocol v2 tensors: one encoder for the function's answers and the endpoint
backend's requests; every datatype survives the trip through JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from modelambda.runtime import contract
from modelambda.runtime.backends.endpoint import EndpointBackend
from modelambda.runtime.v2 import (
    NUMPY_TO_V2,
    V2_TO_NUMPY,
    datatype_of,
    decode_tensor,
    encode_tensor,
    spec_datatype,
)

SAMPLES: dict[str, list[Any]] = {
    "BOOL": [True, False, True, True, False, False],
    "UINT8": [0, 1, 2, 127, 200, 255],
    "UINT16": [0, 1, 2, 3, 4, 65535],
    "UINT32": [0, 1, 2, 3, 4, 2**32 - 1],
    "UINT64": [0, 1, 2, 3, 4, 2**64 - 1],
    "INT8": [-128, -1, 0, 1, 2, 127],
    "INT16": [-32768, -1, 0, 1, 2, 32767],
    "INT32": [-(2**31), -1, 0, 1, 2, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 1, 2, 2**63 - 1],
    "FP16": [-1.5, 0.0, 0.25, 1.0, 2.0, 65504.0],
    "FP32": [-1.5, 0.0, 0.1, 1.0, 2.0, 3.4e38],
    "FP64": [-1.5, 0.0, 0.1, 1.0, 2.0, 1e300],
    "BYTES": ["a", "bc", "", "déjà", "x y", "z"],
}


def sample(datatype: str) -> np.ndarray:
    dtype = V2_TO_NUMPY[datatype]
    return np.array(SAMPLES[datatype], dtype=None if dtype == "str" else dtype).reshape(2, 3)


def over_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_every_datatype_has_a_sample_and_the_tables_invert() -> None:
    assert set(SAMPLES) == set(V2_TO_NUMPY)
    assert {NUMPY_TO_V2[v]: v for v in NUMPY_TO_V2} == {k: V2_TO_NUMPY[k] for k in V2_TO_NUMPY}


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_encode_then_decode_keeps_dtype_shape_and_values(datatype: str) -> None:
    array = sample(datatype)
    tensor = over_json(encode_tensor("x", array))
    assert tensor["name"] == "x" and tensor["shape"] == [2, 3]
    assert tensor["datatype"] == datatype
    back = decode_tensor(tensor)
    assert back.shape == (2, 3)
    assert back.tolist() == array.tolist()
    if datatype != "BYTES":
        assert back.dtype == array.dtype


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_a_clients_request_decodes_to_the_same_arrays(datatype: str) -> None:
    # the strict request decoder reads what the encoder writes, for every datatype
    array = sample(datatype)
    tensors = contract.v2_tensors(over_json({"inputs": [encode_tensor("x", array)]}))
    assert tensors["x"].shape == (2, 3) and tensors["x"].tolist() == array.tolist()
    assert tensors["x"].dtype == (object if datatype == "BYTES" else array.dtype)


def test_uint64_beyond_int64_is_read_exactly_from_a_request() -> None:
    # numpy alone reads [1, 2**64 - 1] as float64 and loses the low digits
    values = [1, 2**64 - 1, 2**63 + 1]
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": "UINT64", "data": values}]}
    assert contract.v2_tensors(over_json(body))["x"].tolist() == values


def test_strings_and_objects_are_bytes_unknown_numbers_fp64() -> None:
    assert datatype_of(np.array(["a"]).dtype) == "BYTES"
    assert datatype_of(np.array(["a"], dtype=object).dtype) == "BYTES"
    assert datatype_of(np.dtype("longdouble")) in ("FP64", "FP64")  # no v2 name: FP64
    assert spec_datatype("float32") == "FP32" and spec_datatype(None) == "BYTES"


def test_the_functions_answer_uses_the_encoder() -> None:
    outputs = {"label": np.array([1, 0], dtype="int64"), "p": np.array([[0.5], [1.0]], "f4")}
    response = contract.v2_response(outputs, "iris", "1", "req-1")
    assert response["outputs"] == [encode_tensor("label", outputs["label"]),
                                   encode_tensor("p", outputs["p"])]
    assert response["id"] == "req-1"


def test_the_endpoint_backend_sends_and_reads_the_same_tensors() -> None:
    # GIVEN an endpoint backend whose endpoint echoes its inputs back as outputs
    backend = EndpointBackend({})
    backend.name, backend.protocol = "m", "v2"
    sent: list[Any] = []

    def echo(method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, sign: bool = False) -> tuple[int, bytes]:
        request = json.loads(body or b"{}")
        sent.append(request)
        return 200, json.dumps({"outputs": request["inputs"]}).encode()

    backend._call = echo  # type: ignore[method-assign]
    inputs = {name: sample(name) for name in ("INT64", "FP32", "BOOL", "UINT8")}
    # WHEN it predicts
    outputs = backend.predict(inputs)
    # THEN the request carries the encoder's tensors, and the answer decodes to the inputs
    assert sent[0]["inputs"] == [over_json(encode_tensor(n, a)) for n, a in inputs.items()]
    for name, array in inputs.items():
        assert outputs[name].dtype == array.dtype and outputs[name].tolist() == array.tolist()
