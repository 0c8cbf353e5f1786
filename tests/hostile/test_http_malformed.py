"""Malformed HTTP against the emulator's own HTTP server, on raw sockets.

Each case is sent to a real server: a bare ``HttpServer`` with an echo handler, and the
emulator's front (``EmulatorThread``, whatever HTTP parser it is built with). A malformed request
gets a 4xx (or the designed 501) with a JSON ``message`` and its connection closed; either way
the same server then answers a good request. RFC 9112 is the reference for what is malformed:
6.1 and 6.3 (conflicting Content-Length and Transfer-Encoding, an invalid Content-Length, a
transfer coding not ending with chunked), 3.2 (Host), 5.1 and 5.2 (whitespace before the colon,
obs-fold), 7.1 (chunk sizes).
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given

from modelambda.local import httpproto
from modelambda.local.httpserver import HttpResponse
from tests.hostile.fuzz import Tally
from tests.hostile.malformed import GOOD, MALFORMED, check_raw_answer, damaged_request
from tests.hostile.servers import EchoServer, http_exchange, open_emulator

# the bare server on each path it has (httpproto.py): httptools' when installed, and streams
PATHS = sorted({httpproto.http_kind(), httpproto.STREAMS})


@pytest.fixture(scope="module", params=[*(f"httpserver-{p}" for p in PATHS), "emulator"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """(host, port) of a real server: the bare HttpServer on one of its paths, or the
    emulator's front door."""
    if request.param.startswith("httpserver-"):
        with EchoServer(read_timeout_s=1.0, http=request.param.split("-", 1)[1]) as echo:
            assert echo.server.kind == request.param.split("-", 1)[1]
            yield "127.0.0.1", echo.port
    else:
        with open_emulator(read_timeout_s=1.0) as emu:
            yield "127.0.0.1", emu.emulator.port


def assert_served(address: tuple[str, int]) -> None:
    status, _, _ = http_exchange(address, GOOD)
    assert status == 200


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_a_json_4xx_and_the_server_lives_on(
        server: tuple[str, int], case: str) -> None:
    raw, expected = MALFORMED[case]
    status, headers, body = http_exchange(server, raw)
    assert status == expected, (case, status, body[:200])
    assert headers.get("content-type") == "application/json"
    assert isinstance(json.loads(body)["message"], str)
    assert headers.get("connection") == "close"
    assert_served(server)


@given(raw=damaged_request())
def test_a_damaged_request_gets_a_designed_answer(server: tuple[str, int], raw: bytes) -> None:
    tally = Tally()
    check_raw_answer(server, raw, tally)
    assert tally.outcome == "pass", tally.outcome


@pytest.mark.parametrize("cut", [5, 17, len(GOOD) - 2])
def test_truncated_head_then_hang_up(server: tuple[str, int], cut: int) -> None:
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(GOOD[:cut])
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(65536)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400 ")
    assert_served(server)


def test_truncated_body_then_hang_up(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""  # nothing to answer: the request never ended
    assert_served(server)


def test_pipelined_requests_are_answered_in_order(server: tuple[str, int]) -> None:
    requests = [b"GET /health?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3)]
    requests.append(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"".join(requests))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 4


def test_a_slow_client_holds_nothing_up_and_is_timed_out(server: tuple[str, int]) -> None:
    """Slowloris: connections sending a head a few bytes at a time, and one sending nothing.
    Others are served meanwhile; each slow one is answered 408 and closed once it has had the
    server's read timeout (1 s here) without completing its request."""
    slow = [socket.create_connection(server, timeout=10) for _ in range(8)]
    idle = socket.create_connection(server, timeout=10)
    answers: dict[int, bytes] = {}
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
        deadline = time.monotonic() + 30
        while len(answers) < len(slow) and time.monotonic() < deadline:
            assert_served(server)  # others are served while the slow ones trickle
            for index, sock in enumerate(slow):
                if index in answers:
                    continue
                if select.select([sock], [], [], 0)[0]:  # the server spoke: its answer
                    answers[index] = sock.recv(65536)
                    continue
                sock.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.2)
        assert len(answers) == len(slow), "slow clients were never timed out"
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers.values()), answers
        idle.settimeout(30)
        assert idle.recv(65536).startswith(b"HTTP/1.1 408 ")  # the silent one too
    finally:
        for sock in [*slow, idle]:
            sock.close()


@pytest.mark.parametrize("path", PATHS)
def test_a_header_cannot_split_the_response(path: str) -> None:
    """A function that puts CR/LF in a header value (e.g. echoing client input) must not
    inject headers or a second response: the header is dropped."""
    response = HttpResponse(200, b"{}", [("X-Echo", "a\r\nSet-Cookie: stolen=1"),
                                         ("X-Fine", "yes")])
    with EchoServer(response=response, http=path) as echo:
        status, headers, _ = http_exchange(("127.0.0.1", echo.port), GOOD)
    assert status == 200
    assert "set-cookie" not in headers and "x-echo" not in headers
    assert headers["x-fine"] == "yes"
