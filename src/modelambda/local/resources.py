"""What ``up`` starts for the strategies it runs, shared by its functions, stopped together.

The strategies ask for what they need (``Strategy.start_local``): the S3 that the model store
lives in (moto's server on loopback, started on first use, unless this shell names an S3
endpoint of its own with ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``), and the local
endpoint host (unless ``--endpoint-url`` names a server of your own).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from modelambda.local.s3server import CREDENTIALS, REGION, EmbeddedS3
from modelambda.spec import ServiceSpec

# What a function (or boto3) needs from this shell to reach a real or user-run AWS service.
_AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LocalServices:
    def __init__(self, *, s3: EmbeddedS3 | None = None, endpoint_url: str | None = None,
                 log: Callable[[str], None] = _stderr) -> None:
        self._s3 = s3  # given: the caller owns it; started here: stopped here
        self._own_s3 = False
        self.endpoint_url = endpoint_url  # a v2/SageMaker server of the user's own
        self.log = log
        self._hosts: list[Any] = []

    # --- S3 -----------------------------------------------------------------------------

    @staticmethod
    def shell_names_s3() -> bool:
        return bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))

    @property
    def s3_url(self) -> str | None:
        """The embedded S3's URL, when one is running for these services."""
        return self._s3.url if self._s3 is not None else None

    def _embedded(self) -> EmbeddedS3 | None:
        if self._s3 is None and not self.shell_names_s3():
            self._s3 = EmbeddedS3().start()
            self._own_s3 = True
            self.log(f"embedded S3 (moto) at {self._s3.url}")
        return self._s3

    def s3_client(self, bucket: str | None = None) -> Any:
        """A boto3 S3 client for the store; with the embedded S3, ``bucket`` is created."""
        s3 = self._embedded()
        if s3 is None:
            import boto3

            return boto3.client("s3")
        if bucket:
            s3.ensure_bucket(bucket)
        return s3.client()

    def s3_environment(self) -> dict[str, str]:
        """How a function reaches the S3 it reads: the embedded one, or this shell's."""
        s3 = self._embedded()
        if s3 is not None:
            return s3.environment()
        return {k: os.environ[k] for k in _AWS_VARIABLES if os.environ.get(k)}

    # --- inference endpoints ------------------------------------------------------------

    def endpoint_host(self, spec: ServiceSpec, name: str | None) -> str:
        """Start the local endpoint host serving the spec's model; its URL."""
        from modelambda.local.endpoint_host import EndpointHost

        host = EndpointHost(spec, name=name).start()
        self._hosts.append(host)
        self.log(f"{spec.service.name}: local endpoint host at {host.url} (SageMaker and v2)")
        return host.url

    def signing_environment(self) -> dict[str, str]:
        """Credentials and region a function signs SageMaker requests with: this shell's
        settings, else the local placeholders (a local endpoint accepts any signature)."""
        environment = {k: os.environ[k] for k in _AWS_VARIABLES if os.environ.get(k)}
        environment.setdefault("AWS_REGION", REGION)
        if "AWS_ACCESS_KEY_ID" not in environment:
            environment.update(CREDENTIALS)
        return environment

    # --- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        for host in self._hosts:
            host.stop()
        self._hosts.clear()
        if self._own_s3 and self._s3 is not None:
            self._s3.stop()
            self._s3 = None

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
