"""The embedded S3: moto's server on loopback (its own process), for ``up``, tests and
benchmarks.

Any real S3 endpoint replaces it through the usual AWS settings (``AWS_ENDPOINT_URL_S3`` or
none at all, plus credentials).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

REGION = "us-east-1"
# moto accepts any credentials; these are placeholders, not secrets.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "modelambda-local", "AWS_SECRET_ACCESS_KEY": "local"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedS3:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedS3:
        """Start moto's server in its own process: in this one it would compete with the
        emulator's event loop for the GIL on every download."""
        import time

        try:
            import moto.server  # noqa: F401 - only checks that it is installed
        except ImportError as exc:
            from modelambda.errors import UsageError

            raise UsageError("the embedded S3 needs moto's server: pip install "
                             "'modelambda[local]' (or set AWS_ENDPOINT_URL_S3 to an S3 "
                             "endpoint of your own)") from exc
        self._server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    return self
            if self._server.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto's S3 server did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                print(f"modelambda: the embedded S3 at {self.url} did not stop in 10 s after "
                      "SIGTERM; killing it", file=sys.stderr, flush=True)
                self._server.kill()
                self._server.wait(5)
            self._server = None

    def environment(self) -> dict[str, str]:
        """What a function (or boto3) needs to reach this S3."""
        return {"AWS_ENDPOINT_URL_S3": self.url, "AWS_REGION": REGION, **CREDENTIALS}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def ensure_bucket(self, bucket: str) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
