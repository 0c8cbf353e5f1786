"""Real servers for the hostile-input tests, and a raw-socket HTTP exchange."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelambda.local import httpproto
from modelambda.local.emulator import EmulatorThread
from modelambda.local.httpserver import HttpRequest, HttpResponse, HttpServer

JSON = ("Content-Type", "application/json")


class EchoServer:
    """A bare ``HttpServer`` on its own event loop thread, answering every request with
    ``response`` (by default 200 and the request's method, path and body length as JSON)."""

    def __init__(self, response: HttpResponse | None = None, http: str | None = None,
                 **options: Any) -> None:
        self.response = response
        self.loop = asyncio.new_event_loop()
        httpproto.choose_for_loop(self.loop, http)  # None: as the emulator would choose
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = HttpServer(self._handle, **options)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.port = self.server.port

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        if self.response is not None:
            return self.response
        return HttpResponse(200, (f'{{"method": "{request.method}", '
                                  f'"body": {len(request.body)}}}').encode(), [JSON])

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_emulator(read_timeout_s: float | None = None, **options: Any
                  ) -> Iterator[EmulatorThread]:
    """A real emulator (no functions unless added); ``read_timeout_s`` shortens its front's
    client read timeout so that the slow-client tests take seconds, not a minute."""
    emu = EmulatorThread(sink=lambda line: None, **options)
    if read_timeout_s is not None:
        emu.emulator.server.read_timeout_s = read_timeout_s  # read at each request
    try:
        yield emu
    finally:
        emu.stop(drain_s=1)


def http_exchange(address: tuple[str, int], raw: bytes, timeout: float = 20,
                  hang_up: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection (``hang_up``: then close the sending side, so a request
    cut short ends instead of waiting for the rest); (status, lower-case headers, body) of the
    first response. The body is read by its Content-Length (every response of ours has one)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        # the server may answer and close before taking it all (an oversized head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
            if hang_up:
                sock.shutdown(socket.SHUT_WR)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock)
            if not chunk:
                raise AssertionError(f"connection closed without an answer: {data[:200]!r}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = _recv(sock)
            if not chunk:
                break
            body += chunk
    return status, headers, body[:length]


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
