"""Property-based fuzzing of every event decoder and the inference contract, in process.

Hostile REST v1, HTTP API, Function URL, ALB, SQS/SNS/S3/EventBridge-shaped and direct events,
hostile bodies and v2 tensors, through the iris app: only designed errors (4xx), every error
body a JSON object with a message, and the app serves a good request afterwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelambda.runtime import contract, errors
from modelambda.runtime.app import App
from modelambda.runtime.backends.base import TensorSpec
from tests.conftest import make_app
from tests.hostile.fuzz import (
    BODY,
    EVENT,
    INSTANCES,
    IRIS,
    JSON,
    V2_BODY,
    Tally,
    check_app_event,
    check_still_serving,
)


@pytest.fixture(scope="module")
def app() -> App:
    return make_app(IRIS)


def settle(tally: Tally) -> None:
    assert tally.outcome == "pass", tally.outcome


@given(event=EVENT)
def test_any_event_gets_a_designed_answer(app: App, event: Any) -> None:
    tally = Tally()
    check_app_event(app, event, tally)
    check_still_serving(app, tally)
    settle(tally)


SPECS = [TensorSpec("input", "float32", (None, 4)), TensorSpec("ids", "int64", (None, None)),
         TensorSpec("text", "str", (None,)), TensorSpec("u", "uint64", (None, 2)),
         TensorSpec("h", "float16", None), TensorSpec("any", None, None)]


@given(instances=INSTANCES, index=st.integers(0, len(SPECS) - 1), nonfinite=st.booleans())
def test_the_contract_takes_or_refuses_any_instances(instances: Any, index: int,
                                                     nonfinite: bool) -> None:
    spec = SPECS[index]
    try:
        batch = contract.check_batch(instances, 1024)
        inputs = contract.instances_to_inputs(batch, [spec], allow_nonfinite=nonfinite)
    except errors.RequestError:
        return
    array = inputs[spec.name]
    assert isinstance(array, np.ndarray) and len(array) == len(batch)
    if spec.dtype not in (None, "str"):
        assert array.dtype == np.dtype(spec.dtype)


@given(body=V2_BODY | BODY | JSON)
def test_v2_tensors_take_or_refuse_any_request(body: Any) -> None:
    if not isinstance(body, dict):
        return
    try:
        tensors = contract.v2_tensors(body)
    except errors.RequestError:
        return
    shapes = [list(item["shape"]) for item in body["inputs"]]
    for name, array in tensors.items():
        assert isinstance(name, str) and list(array.shape) in shapes
