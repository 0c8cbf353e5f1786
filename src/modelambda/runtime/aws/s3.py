"""A small S3 GET client for the runtime: signed, retried, parallel ranged downloads.

Why not boto3: importing it and creating a client costs about 0.3 s of a cold start (measured
with ``python -X importtime`` and a first ``boto3.client("s3")`` in a fresh python3.12); this
costs a few milliseconds. It only reads: the model store is written by
the modelambda CLI (with boto3) and read here.

Settings, as boto3 reads them: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (e.g. a local
S3-compatible server, addressed path-style), ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, and the
credentials Lambda puts in the environment.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol
from urllib.parse import quote, urlsplit

from modelambda.runtime.aws.sigv4 import UNSIGNED, Credentials, sign
from modelambda.runtime.retry import retry

PART_BYTES = 16 * 1024 * 1024  # S3's guidance: 8-16 MB ranged GETs, in parallel
WORKERS = 8
# A connection faster than this is not what limits the download (S3 gives ~90 MB/s per
# connection): then the rest comes in one stream, since parallel ranges only add requests.
FAST_CONNECTION_BYTES_S = 200 * 1024 * 1024
RETRYABLE = {429, 500, 502, 503, 504}
CHUNK_BYTES = 1024 * 1024  # a streamed GET is read (and hashed) this much at a time

# where downloaded bytes go: write(offset, data), data valid only during the call
Writer = Callable[[int, "memoryview | bytes"], object]


class Digest(Protocol):
    """What ``download`` feeds the bytes to in order (a ``hashlib`` object)."""

    def update(self, data: memoryview | bytes, /) -> None: ...


class _Transient(Exception):
    """One failed attempt worth another (a network error, 5xx, 429)."""

    def __init__(self, cause: str, status: int | None = None) -> None:
        super().__init__(cause)
        self.status = status


class S3Error(Exception):
    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class S3Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class S3Client:
    def __init__(self, region: str | None = None, endpoint: str | None = None,
                 credentials: Credentials | None = None, timeout: float = 10.0,
                 attempts: int = 5, sleep: Callable[[float], object] = time.sleep) -> None:
        env = os.environ
        self.region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") \
            or "us-east-1"
        self.endpoint = (endpoint or env.get("AWS_ENDPOINT_URL_S3")
                         or env.get("AWS_ENDPOINT_URL") or "").rstrip("/") or None
        self._credentials = credentials
        self.timeout = timeout
        self.attempts = attempts
        self.sleep = sleep  # between attempts; tests pass a fake
        self._local = threading.local()  # one keep-alive connection per thread

    @property
    def credentials(self) -> Credentials | None:
        """Given ones, else the environment's, read at each request: after a SnapStart
        restore Lambda hands the environment fresh credentials."""
        return self._credentials or Credentials.from_environment()

    @credentials.setter
    def credentials(self, value: Credentials | None) -> None:
        self._credentials = value

    def url(self, bucket: str, key: str) -> str:
        path = quote(key, safe="/-_.~")
        if self.endpoint:
            return f"{self.endpoint}/{bucket}/{path}"
        if "." in bucket:  # S3's wildcard certificate does not cover dotted bucket hosts
            return f"https://s3.{self.region}.amazonaws.com/{bucket}/{path}"
        return f"https://{bucket}.s3.{self.region}.amazonaws.com/{path}"

    def _connection(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        connections: dict[str, http.client.HTTPConnection] = getattr(self._local, "c", {})
        self._local.c = connections
        conn = connections.get(netloc)
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connections[netloc] = conn
        return conn

    def _drop(self, netloc: str) -> None:
        connections = getattr(self._local, "c", {})
        conn = connections.pop(netloc, None)
        if conn is not None:
            conn.close()

    def get(self, bucket: str, key: str, *, byte_range: tuple[int, int] | None = None,
            if_none_match: str | None = None) -> S3Response:
        """GET an object (or a byte range); 304 when ``if_none_match`` still matches.

        Retried with exponential backoff and jitter on 5xx, 429 and network errors; S3Error
        naming the bucket, key and cause when it finally fails."""
        url = self.url(bucket, key)
        parts = urlsplit(url)
        headers: dict[str, str] = {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        target = parts.path + (f"?{parts.query}" if parts.query else "")

        def once() -> S3Response:
            credentials = self.credentials
            signed = headers if credentials is None else sign(
                "GET", url, headers, self.region, "s3", credentials, payload_sha256=UNSIGNED)
            try:
                conn = self._connection(parts.netloc, parts.scheme)
                conn.request("GET", target, headers=signed)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.netloc)
                raise _Transient(f"{type(exc).__name__}: {exc}") from exc
            status = response.status
            if status in (200, 206, 304):
                return S3Response(status, {k.lower(): v for k, v in response.getheaders()},
                                  body)
            code = _error_code(body)
            cause = f"HTTP {status} {code or ''}".strip()
            if status in RETRYABLE:
                raise _Transient(cause, status)
            raise S3Error(f"s3://{bucket}/{key}: {cause}", status, code)

        try:
            return retry(once, attempts=self.attempts, sleep=self.sleep,
                         retryable=lambda exc: isinstance(exc, _Transient))
        except _Transient as exc:
            raise S3Error(f"s3://{bucket}/{key}: gave up after {self.attempts} attempts: "
                          f"{exc}", exc.status) from exc.__cause__

    def fetch(self, bucket: str, key: str, size: int, *, part_bytes: int = PART_BYTES,
              workers: int = WORKERS) -> bytes:
        """Download an object of known ``size`` into memory (see ``download``)."""
        buffer = bytearray(size)
        view = memoryview(buffer)

        def write(offset: int, data: memoryview | bytes) -> None:
            view[offset:offset + len(data)] = data

        try:
            self.download(bucket, key, size, write, part_bytes=part_bytes, workers=workers)
        finally:
            view.release()
        return bytes(buffer)

    def download(self, bucket: str, key: str, size: int, write: Writer, *,
                 digest: Digest | None = None, part_bytes: int = PART_BYTES,
                 workers: int = WORKERS) -> None:
        """Download an object of known ``size`` as fast as the connection allows, handing
        the bytes to ``write(offset, data)`` (``data`` is only valid during the call) and, in
        order, to ``digest.update`` as they arrive: a checksum needs no second pass.

        One plain GET starts streaming; after the first ``part_bytes`` its rate decides: a
        connection faster than S3 gives one (a local S3) keeps streaming to the end, a
        slower one is dropped and the rest comes in parallel ranged GETs, S3's advice for
        its ~90 MB/s per connection."""
        done = self._stream_start(bucket, key, size, write, digest,
                                  part_bytes if workers > 1 else size)
        if done < size:
            self._parallel(bucket, key, size, write, digest, done, part_bytes, workers)

    def _stream_start(self, bucket: str, key: str, size: int, write: Writer,
                      digest: Digest | None, probe: int) -> int:
        """Stream the object to ``write``; stop after ``probe`` bytes if the connection is
        slow. Returns how many bytes were read (0 if the stream failed at once)."""
        url = self.url(bucket, key)
        parts = urlsplit(url)
        credentials = self.credentials
        signed = {} if credentials is None else sign(
            "GET", url, {}, self.region, "s3", credentials, payload_sha256=UNSIGNED)
        chunk = bytearray(CHUNK_BYTES)
        view = memoryview(chunk)
        position = 0
        try:
            conn = self._connection(parts.netloc, parts.scheme)
            conn.request("GET", parts.path, headers=signed)
            response = conn.getresponse()
            if response.status != 200:
                response.read()
                return 0  # the ranged path below retries and reports the error properly
            started = time.perf_counter()
            limit = min(probe, size)
            while position < size:
                if position >= limit:
                    rate = position / max(time.perf_counter() - started, 1e-6)
                    if rate < FAST_CONNECTION_BYTES_S:
                        self._drop(parts.netloc)  # abandon the stream: parallel ranges do
                        return position           # the rest
                    limit = size
                read = response.readinto(view[:min(CHUNK_BYTES, limit - position)])
                if not read:
                    raise S3Error(f"s3://{bucket}/{key}: {position} bytes, expected {size} "
                                  "(truncated or replaced)")
                write(position, view[:read])
                if digest is not None:
                    digest.update(view[:read])  # hashlib releases the GIL for big chunks
                position += read
            if response.read(1):
                raise S3Error(f"s3://{bucket}/{key}: longer than the {size} bytes expected "
                              "(replaced)")
        except (OSError, http.client.HTTPException):
            self._drop(parts.netloc)
        finally:
            view.release()
        return position

    def _parallel(self, bucket: str, key: str, size: int, write: Writer,
                  digest: Digest | None, begin: int, part_bytes: int, workers: int) -> None:
        def part(span: tuple[int, int]) -> bytes:
            chunk = self.get(bucket, key, byte_range=span).body
            if len(chunk) != span[1] - span[0] + 1:
                raise S3Error(f"s3://{bucket}/{key}: range {span} came back with "
                              f"{len(chunk)} bytes (truncated)")
            return chunk

        ranges = [(start, min(start + part_bytes, size) - 1)
                  for start in range(begin, size, part_bytes)]
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ranges)))) as pool:
            futures = [pool.submit(part, span) for span in ranges]
            for span, future in zip(ranges, futures, strict=True):  # in order, for the digest
                chunk = future.result()
                write(span[0], chunk)
                if digest is not None:
                    digest.update(chunk)


def _error_code(body: bytes) -> str | None:
    start = body.find(b"<Code>")
    if start < 0:
        return None
    end = body.find(b"</Code>", start)
    return body[start + 6:end].decode("utf-8", "replace")
