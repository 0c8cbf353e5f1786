"""AWS errors (botocore, boto3, s3transfer) as one line: what failed and how to fix it.

Nothing here imports botocore: an exception is recognised by the module of its class, so the
commands that never reach AWS (and ``--help``) do not pay for importing it. Messages are built
from the error's code and parameters, not echoed from AWS, and are scrubbed of this shell's
secret values before they are shown.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

_AWS_MODULES = ("botocore", "boto3", "s3transfer")
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                     "AWS_ACCESS_KEY_ID")
_SECRET_FIELDS = re.compile(
    r"(?i)((?:x-amz-)?(?:signature|secret[_-]?access[_-]?key|session[_-]?token|security[_-]?token"
    r"|credential)s?[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+")

# The permission an S3 operation needs, to name it when access is denied.
_S3_PERMISSIONS = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket", "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObjects": "s3:DeleteObject", "DeleteObject": "s3:DeleteObject",
    "CreateBucket": "s3:CreateBucket",
}

_NO_CREDENTIALS = ("no AWS credentials found{at}: set AWS_PROFILE or run `aws configure`, or point "
                   "at a local S3 with AWS_ENDPOINT_URL_S3 (a running `modelambda up` of an s3 "
                   "service is used by itself)")


def _is_aws(exc: BaseException) -> bool:
    return any(klass.__module__.split(".")[0] in _AWS_MODULES for klass in type(exc).__mro__)


def _names(exc: BaseException) -> set[str]:
    return {klass.__name__ for klass in type(exc).__mro__}


def aws_error(exc: BaseException) -> BaseException | None:
    """The AWS error behind ``exc`` (itself, or one it was raised from or while handling)."""
    seen: set[int] = set()
    found: BaseException | None = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_aws(current):
            found = current
            if "ClientError" in _names(current) or "BotoCoreError" in _names(current):
                return current  # the botocore error itself: the most precise
        current = current.__cause__ or current.__context__
    return found


def scrub(text: str) -> str:
    """``text`` without this shell's AWS secrets, signatures or credential fields."""
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return _SECRET_FIELDS.sub(lambda m: m.group(1) + "***", text)


def explain(exc: BaseException, where: str | None = None) -> str | None:
    """One line for an AWS error (None for any other exception). ``where`` names what was
    being reached (e.g. ``s3://bucket/prefix``) when the caller knows it."""
    error = aws_error(exc)
    if error is None:
        return None
    return scrub(" ".join(_explain(error, where).split()))


def _kwarg(error: BaseException, key: str, default: str = "?") -> str:
    kwargs = getattr(error, "kwargs", None) or {}
    return str(kwargs.get(key, default))


def _explain(error: BaseException, where: str | None) -> str:
    names = _names(error)
    if "ClientError" in names:
        return _client_error(error, where)
    at = f" (reaching {where})" if where else ""
    if "NoCredentialsError" in names:
        return _NO_CREDENTIALS.format(at=at)
    if "PartialCredentialsError" in names:
        return (f"incomplete AWS credentials in {_kwarg(error, 'provider')}: "
                f"{_kwarg(error, 'cred_var')} is missing: set it too, or unset the partial ones "
                "and use AWS_PROFILE or `aws configure`")
    if "ProfileNotFound" in names:
        profile = _kwarg(error, "profile")
        return (f"AWS profile {profile!r} not found in ~/.aws/config or ~/.aws/credentials: fix "
                f"AWS_PROFILE, or create it with `aws configure --profile {profile}`")
    if "NoRegionError" in names:
        return ("no AWS region configured: set AWS_REGION (e.g. AWS_REGION=us-east-1) or "
                "run `aws configure`")
    if names & {"SSOError", "TokenRetrievalError", "SSOTokenLoadError",
                "UnauthorizedSSOTokenError"}:
        return ("the AWS SSO session is missing or has expired: run `aws sso login` "
                "(with the same AWS_PROFILE) and retry")
    if "CredentialRetrievalError" in names:
        return (f"could not get AWS credentials from {_kwarg(error, 'provider')}: "
                f"{_kwarg(error, 'error_msg')}: fix that source, or use another AWS_PROFILE")
    if "ConnectionError" in names or "ReadTimeoutError" in names or \
            "ConnectionClosedError" in names:
        url = _kwarg(error, "endpoint_url", "") or _kwarg(error, "proxy_url", "")
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc}" if parts.netloc else (where or "AWS")
        configured = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        fix = (f"AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL is {configured}: is that server running?"
               if configured else "check the network connection (and AWS_REGION)")
        what = "timed out reaching" if "Timeout" in " ".join(names) else "cannot reach"
        return f"{what} {url}: {fix}"
    if "S3UploadFailedError" in names:
        return f"S3 upload failed{at}: {error}"
    return f"AWS error{at}: {type(error).__name__}: {error}"


def _client_error(error: Any, where: str | None) -> str:
    response = getattr(error, "response", None) or {}
    details = response.get("Error") or {}
    code = str(details.get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    operation = str(getattr(error, "operation_name", "") or "request")
    bucket = details.get("BucketName")
    target = where or (f"s3://{bucket}" if bucket else None)
    failed = f"{operation} on {target}" if target else operation
    if code in ("NoSuchBucket",) or (code == "404" and operation == "HeadBucket"):
        name = bucket or (where[5:].split("/")[0] if where and where.startswith("s3://") else
                          None)
        named = f"S3 bucket {name!r}" if name else "the S3 bucket"
        return (f"{named} does not exist ({failed}): create it "
                f"(`aws s3 mb s3://{name or 'BUCKET'}`) or point [strategy] bucket or --store "
                "at one that does")
    if code in ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired",
                "RequestExpired"):
        return (f"the AWS credentials have expired ({failed}): refresh them (`aws sso login`, "
                "or new temporary credentials in AWS_SESSION_TOKEN) and retry")
    if code in ("InvalidAccessKeyId", "UnrecognizedClientException", "InvalidClientTokenId"):
        return (f"the AWS access key id is not known ({failed}): check AWS_ACCESS_KEY_ID or the "
                "profile's credentials (AWS_PROFILE), or the endpoint if it is a local one")
    if code == "SignatureDoesNotMatch":
        return (f"the AWS secret key does not match the access key id ({failed}): check "
                "AWS_SECRET_ACCESS_KEY or the profile's credentials")
    if code in ("InvalidToken",):
        return (f"the AWS session token is not valid ({failed}): check AWS_SESSION_TOKEN or "
                "refresh the credentials")
    if code in ("AccessDenied", "AccessDeniedException", "Forbidden", "AllAccessDisabled") or \
            (code == "403" or (status == 403 and not code)):
        permission = _S3_PERMISSIONS.get(operation)
        needs = f"{permission} permission" if permission else "the permission for it"
        return (f"access denied ({failed}): the AWS identity in use lacks {needs}; grant it, "
                "or use credentials that have it (AWS_PROFILE)")
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                "IllegalLocationConstraintException"):
        region = details.get("Region")
        return (f"the bucket is in another region ({failed}): set AWS_REGION"
                + (f"={region}" if region else " to the bucket's region"))
    if code == "RequestTimeTooSkewed":
        return f"this machine's clock is off ({failed}): synchronise it (NTP) and retry"
    if code in ("SlowDown", "Throttling", "ThrottlingException", "TooManyRequestsException"):
        return f"AWS is throttling the requests ({failed}): retry in a moment"
    message = str(details.get("Message") or "")
    return f"AWS {failed} failed: {code or status}" + (f": {message}" if message else "")
