"""The inference contract's conversions, directly: edge cases the HTTP tests do not reach."""

from __future__ import annotations

import numpy as np
import pytest

from modelambda.runtime import InvalidValue, ModelError
from modelambda.runtime.aws.s3 import S3Client
from modelambda.runtime.backends.base import TensorSpec
from modelambda.runtime.contract import outputs_to_predictions, to_tensor


@pytest.mark.parametrize("dtype,value", [("int32", 3_000_000_000), ("uint8", -1),
                                         ("uint8", 256), ("int64", 2.0**70),
                                         # the maxima round up to these as floats
                                         ("int64", 2.0**63), ("uint64", 2.0**64)])
def test_integers_out_of_range_are_refused_not_wrapped(dtype: str, value: float) -> None:
    with pytest.raises(InvalidValue, match=f"takes {dtype} values from"):
        to_tensor([[value]], TensorSpec("x", dtype, (None, 1)))


def test_integers_in_range_pass() -> None:
    assert to_tensor([[255]], TensorSpec("x", "uint8", (None, 1))).dtype == np.uint8


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predictions_that_json_cannot_carry_are_a_model_error(bad: float) -> None:
    with pytest.raises(ModelError, match="NaN or infinity"):
        outputs_to_predictions({"y": np.array([1.0, bad])}, 2)


def test_s3_urls_virtual_hosted_or_path_style() -> None:
    client = S3Client(region="eu-west-1", endpoint=None)
    client.endpoint = None
    assert client.url("plain", "a b/c") == "https://plain.s3.eu-west-1.amazonaws.com/a%20b/c"
    # a dotted bucket breaks S3's wildcard certificate in a host name: path style instead
    assert client.url("my.bucket", "k") == "https://s3.eu-west-1.amazonaws.com/my.bucket/k"


def test_s3_credentials_are_read_at_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    client = S3Client(region="us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "FIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert client.credentials is not None and client.credentials.access_key == "FIRST"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AFTER-RESTORE")
    assert client.credentials.access_key == "AFTER-RESTORE"
