"""The runtime's one retry loop, and its two users (the S3 client, the endpoint backend),
with a fake sleep: nothing here waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from modelambda.runtime.aws.s3 import S3Client, S3Error
from modelambda.runtime.backends.endpoint import EndpointBackend, EndpointError
from modelambda.runtime.retry import delay, retry


class Flaky:
    """Fails with ``errors`` in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retries_until_success_with_growing_capped_delays() -> None:
    slept: list[float] = []
    call = Flaky(*[ConnectionError(str(i)) for i in range(5)])
    result = retry(call, attempts=6, retryable=lambda e: isinstance(e, ConnectionError),
                   base=1.0, cap=3.0, sleep=slept.append, rand=lambda: 1.0)
    assert result == "ok" and call.calls == 6
    assert slept == [1.0, 2.0, 3.0, 3.0, 3.0]  # base * 2**(n-1), capped


def test_full_jitter_scales_the_delay_down_to_zero() -> None:
    assert delay(3, base=0.1, cap=2.0, rand=lambda: 0.0) == 0.0
    assert delay(3, base=0.1, cap=2.0, rand=lambda: 0.5) == pytest.approx(0.2)
    assert 0.0 <= delay(20) <= 2.0  # the real random, capped


def test_no_sleep_before_the_first_attempt() -> None:
    slept: list[float] = []
    assert retry(Flaky(), attempts=3, retryable=lambda e: True, sleep=slept.append) == "ok"
    assert slept == []


def test_an_error_the_caller_does_not_retry_is_raised_at_once() -> None:
    slept: list[float] = []
    call = Flaky(ValueError("bad request"), ConnectionError("never reached"))
    with pytest.raises(ValueError, match="bad request"):
        retry(call, attempts=5, retryable=lambda e: isinstance(e, ConnectionError),
              sleep=slept.append)
    assert call.calls == 1 and slept == []


def test_giving_up_raises_the_last_error_itself() -> None:
    slept: list[float] = []
    errors = [ConnectionError(f"attempt {i}") for i in range(3)]
    call = Flaky(*errors, ConnectionError("not reached"))
    with pytest.raises(ConnectionError) as info:
        retry(call, attempts=3, retryable=lambda e: True, sleep=slept.append)
    assert info.value is errors[2]
    assert call.calls == 3 and len(slept) == 2


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retry(Flaky(), attempts=0, retryable=lambda e: True)


# --- the users ------------------------------------------------------------------------------


class Answers(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer()

    def answer(self) -> None:
        type(self).seen.append(self.path)
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        body = b"<Error><Code>SlowDown</Code></Error>" if status != 200 else b"done"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Answers.statuses, Answers.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_s3_get_retries_5xx_through_the_helper(server: str) -> None:
    slept: list[float] = []
    client = S3Client(region="us-east-1", endpoint=server, attempts=3, sleep=slept.append)
    client.credentials = None
    Answers.statuses = [503, 500]
    assert client.get("b", "k").body == b"done"
    assert len(Answers.seen) == 3 and len(slept) == 2

    Answers.statuses, Answers.seen = [503, 503, 503], []
    with pytest.raises(S3Error, match="gave up after 3 attempts: HTTP 503 SlowDown") as info:
        client.get("b", "k")
    assert info.value.status == 503 and len(Answers.seen) == 3

    Answers.statuses, Answers.seen = [403], []
    with pytest.raises(S3Error, match="HTTP 403") as info:
        client.get("b", "k")
    assert info.value.status == 403 and len(Answers.seen) == 1  # not retried


def test_endpoint_calls_retry_through_the_helper(server: str) -> None:
    backend = EndpointBackend({})
    slept: list[float] = []
    backend.url, backend.timeout, backend.attempts = server, 5.0, 3
    backend.sleep = slept.append
    Answers.statuses = [502]
    assert backend._call("POST", "/infer", b"{}") == (200, b"done")
    assert len(slept) == 1

    Answers.statuses, Answers.seen = [500, 503, 429], []
    with pytest.raises(EndpointError, match=r"HTTP 429.*gave up after 3 attempts"):
        backend._call("POST", "/infer", b"{}")
    assert len(Answers.seen) == 3

    Answers.statuses, Answers.seen = [404], []
    assert backend._call("GET", "/v2/models/x")[0] == 404  # the caller's to interpret
    assert len(Answers.seen) == 1
