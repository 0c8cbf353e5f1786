"""The runtime's SigV4 signer against botocore's, the oracle."""

from __future__ import annotations

import calendar
import time

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from modelambda.runtime.aws.sigv4 import Credentials, sign


def botocore_headers(method: str, url: str, headers: dict[str, str], body: bytes,
                     service: str, token: str | None) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    creds = BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, "eu-west-1")
    auth.add_auth(request)
    return dict(request.headers.items())


def signed_at(headers: dict[str, str]) -> float:
    """The instant botocore signed at, so that ours signs the same one."""
    return float(calendar.timegm(time.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")))


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//=="])
@pytest.mark.parametrize("method,url,headers,body,service", [
    ("GET", "https://bucket.s3.eu-west-1.amazonaws.com/models/iris/aliases/live", {}, b"", "s3"),
    ("GET", "http://127.0.0.1:5000/bucket/models/m/versions/1/model.onnx",
     {"Range": "bytes=0-8388607"}, b"", "s3"),
    ("GET", "https://s3.eu-west-1.amazonaws.com/bucket/a%20key/with%2Bplus?versionId=3&x=a%2Fb",
     {"If-None-Match": '"abc"'}, b"", "s3"),
    ("POST", "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/my-endpoint/"
             "invocations", {"Content-Type": "application/json"}, b'{"instances": [[1, 2]]}',
     "sagemaker"),
])
def test_signature_matches_botocore(method: str, url: str, headers: dict[str, str], body: bytes,
                                    service: str, token: str | None) -> None:
    import hashlib

    expected = botocore_headers(method, url, dict(headers), body, service, token)
    ours = sign(method, url, headers, "eu-west-1", service,
                Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                payload_sha256=hashlib.sha256(body).hexdigest(), now=signed_at(expected))
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"]
    if token:
        assert ours["X-Amz-Security-Token"] == token


def test_credentials_never_show_the_secret() -> None:
    creds = Credentials("AKIDEXAMPLE", "very-secret-key", "token")
    assert "very-secret" not in repr(creds) and "token=yes" in repr(creds)


def test_credentials_from_lambdas_environment() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    creds = Credentials.from_environment(env)
    assert creds is not None and (creds.access_key, creds.token) == ("AKID", "t")
    assert Credentials.from_environment({}) is None
