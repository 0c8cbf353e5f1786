"""AWS failures are one line naming what failed and the fix: exit 2, no traceback, no secret.

Through the real console script, with an empty home and no AWS variables unless a test sets
them; S3's error answers come from a small fake S3 on loopback, parsed by the real botocore.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelambda.awserrors import explain, scrub
from modelambda.local.s3server import free_port
from tests.cli.conftest import copy_iris, no_aws_env, one_error_line, run_cli

KEY_ID = "AKIAMODELAMBDATEST42"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENvalue0123456789"


@pytest.fixture
def s3_service(tmp_path: Path) -> Path:
    return copy_iris(tmp_path / "iris", 'kind = "s3"\nbucket = "models"\nprefix = "prod"')


class FakeS3:
    """Answers every request with one S3 error (status, code, message)."""

    def __init__(self) -> None:
        self.status, self.code, self.message = 500, "InternalError", "x"
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                fake.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fake.code}</Code>'
                        f"<Message>{fake.message}</Message><BucketName>models</BucketName>"
                        f"<AWSAccessKeyId>{KEY_ID}</AWSAccessKeyId>"
                        "<RequestId>4442587FB7D0A2F9</RequestId></Error>").encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fake_s3() -> Iterator[FakeS3]:
    server = FakeS3()
    yield server
    server.stop()


def credentialed_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return no_aws_env(tmp_path / "home", AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_SESSION_TOKEN=TOKEN, AWS_REGION="us-east-1", AWS_MAX_ATTEMPTS="1",
                      **extra)


def assert_no_secret(done: subprocess.CompletedProcess[str]) -> None:
    for secret in (SECRET, TOKEN, KEY_ID):
        assert secret not in done.stdout + done.stderr


# --- through the console script -----------------------------------------------------------


def test_no_credentials_is_one_line_with_the_fix(s3_service: Path, tmp_path: Path) -> None:
    done = run_cli("models", "list", s3_service, env=no_aws_env(tmp_path / "home"))
    line = one_error_line(done, "models")
    assert "no AWS credentials found" in line
    assert "AWS_PROFILE" in line and "aws configure" in line and "AWS_ENDPOINT_URL_S3" in line
    assert "s3://models/prod" in line  # what was being reached
    assert done.stdout == ""


def test_missing_profile_is_named(s3_service: Path, tmp_path: Path) -> None:
    done = run_cli("models", "publish", s3_service,
                   env=no_aws_env(tmp_path / "home", AWS_PROFILE="no-such-profile"))
    line = one_error_line(done, "models")
    assert "AWS profile 'no-such-profile' not found" in line
    assert "aws configure --profile no-such-profile" in line


def test_partial_credentials_name_the_missing_one(s3_service: Path, tmp_path: Path) -> None:
    done = run_cli("models", "list", s3_service,
                   env=no_aws_env(tmp_path / "home", AWS_ACCESS_KEY_ID=KEY_ID))
    line = one_error_line(done, "models")
    assert "incomplete AWS credentials" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert_no_secret(done)


def test_unreachable_endpoint_names_it(s3_service: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli("models", "list", s3_service,
                   env=credentialed_env(tmp_path, AWS_ENDPOINT_URL_S3=url))
    line = one_error_line(done, "models")
    assert f"cannot reach {url}" in line and "is that server running?" in line
    assert_no_secret(done)


@pytest.mark.parametrize("status,code,expected", [
    (404, "NoSuchBucket", ["S3 bucket 'models' does not exist", "aws s3 mb s3://models",
                           "ListObjectsV2 on s3://models/prod"]),
    (403, "AccessDenied", ["access denied (ListObjectsV2 on s3://models/prod)",
                           "s3:ListBucket permission"]),
    (400, "ExpiredToken", ["AWS credentials have expired", "aws sso login"]),
    (403, "InvalidAccessKeyId", ["access key id is not known", "AWS_ACCESS_KEY_ID"]),
    (403, "SignatureDoesNotMatch", ["secret key does not match", "AWS_SECRET_ACCESS_KEY"]),
])
def test_s3_refusals_are_one_line_with_the_fix(fake_s3: FakeS3, s3_service: Path,
                                               tmp_path: Path, status: int, code: str,
                                               expected: list[str]) -> None:
    fake_s3.status, fake_s3.code, fake_s3.message = status, code, f"{code} happened"
    done = run_cli("models", "list", s3_service,
                   env=credentialed_env(tmp_path, AWS_ENDPOINT_URL_S3=fake_s3.url))
    line = one_error_line(done, "models")
    for text in expected:
        assert text in line
    assert_no_secret(done)


def test_an_unknown_refusal_shows_aws_message_without_secrets(
        fake_s3: FakeS3, s3_service: Path, tmp_path: Path) -> None:
    fake_s3.status, fake_s3.code = 400, "SomethingNew"
    fake_s3.message = f"bad request signed with {KEY_ID} and token {TOKEN}"
    done = run_cli("models", "publish", s3_service, "--alias", "live",
                   env=credentialed_env(tmp_path, AWS_ENDPOINT_URL_S3=fake_s3.url))
    line = one_error_line(done, "models")
    assert "SomethingNew: bad request signed with *** and token ***" in line
    assert_no_secret(done)


def test_help_does_not_import_botocore() -> None:
    code = ("import sys\nfrom modelambda.cli.main import main\n"
            "for argv in (['--help'], ['models', '--help'], ['models', 'list', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('botocore', 'boto3')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- the explanations themselves ----------------------------------------------------------


def test_other_exceptions_are_not_explained() -> None:
    assert explain(ValueError("a bug")) is None
    assert explain(KeyError("x")) is None


def test_region_partial_sso_and_wrapped_errors_are_explained() -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        ClientError,
        NoRegionError,
        PartialCredentialsError,
        SSOTokenLoadError,
    )

    assert explain(NoRegionError()) == (
        "no AWS region configured: set AWS_REGION (e.g. AWS_REGION=us-east-1) or run "
        "`aws configure`")
    line = explain(PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"))
    assert line is not None and line.startswith(
        "incomplete AWS credentials in env: AWS_SECRET_ACCESS_KEY is missing")
    sso = explain(SSOTokenLoadError(error_msg="expired"))
    assert sso is not None and "aws sso login" in sso
    # upload_file wraps the ClientError in S3UploadFailedError: the ClientError is explained
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    try:
        try:
            raise denied
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload x: {exc}")  # noqa: B904 - as boto3
    except S3UploadFailedError as wrapped:
        line = explain(wrapped, "s3://models/prod")
    assert line == ("access denied (PutObject on s3://models/prod): the AWS identity in use "
                    "lacks s3:PutObject permission; grant it, or use credentials that have it "
                    "(AWS_PROFILE)")


def test_scrub_removes_secret_values_and_signature_fields(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    text = scrub(f"secret {SECRET} in https://x/?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA"
                 "X/2024 and aws_secret_access_key = other-secret")
    assert SECRET not in text and "abcdef" not in text and "other-secret" not in text
    assert "X-Amz-Signature=***" in text
