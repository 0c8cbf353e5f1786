"""AWS Signature Version 4, for the runtime's own S3 and SageMaker requests.

Checked against botocore's signer as the oracle (tests/unit/test_sigv4.py), session tokens
included. Reference: docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


class Credentials:
    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    def __repr__(self) -> str:  # never print the secret
        token = "yes" if self.token else "no"
        return f"Credentials(access_key={self.access_key[:4]}..., token={token})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """The variables Lambda sets from the execution role (None when absent)."""
        env = os.environ if environ is None else environ
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return None
        return cls(key, secret, env.get("AWS_SESSION_TOKEN") or None)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _canonical_query(query: str) -> str:
    """The query as sent (already percent-encoded by the caller), pairs sorted."""
    if not query:
        return ""
    pairs = [part.partition("=")[::2] for part in query.split("&")]
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def sign(method: str, url: str, headers: Mapping[str, str], region: str, service: str,
         credentials: Credentials, payload_sha256: str = EMPTY_SHA256,
         now: float | None = None) -> dict[str, str]:
    """Return ``headers`` plus Host, X-Amz-Date, X-Amz-Content-Sha256, the security token
    (if any) and Authorization, for this request."""
    parts = urlsplit(url)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    date = stamp[:8]
    out = {k: v for k, v in headers.items()}
    lower = {k.lower() for k in out}
    if "host" not in lower:
        out["Host"] = parts.netloc
    out["X-Amz-Date"] = stamp
    if service == "s3":
        out["X-Amz-Content-Sha256"] = payload_sha256
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    canonical = {k.lower().strip(): " ".join(str(v).split()) for k, v in out.items()}
    signed = ";".join(sorted(canonical))
    # The URL's path is already percent-encoded: S3 signs it as sent, other services
    # encode it once more.
    path = parts.path or "/"
    canonical_path = path if service == "s3" else quote(path, safe="/-_.~")
    request = "\n".join([
        method.upper(), canonical_path, _canonical_query(parts.query),
        "".join(f"{k}:{canonical[k]}\n" for k in sorted(canonical)), signed, payload_sha256,
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(credentials.secret_key, date, region, service),
                         to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={signed}, Signature={signature}")
    return out
