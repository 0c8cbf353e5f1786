"""The HTTP server's ``asyncio.Protocol`` path: httptools (llhttp, the C parser uvicorn uses)
parses, callbacks build the request, no StreamReader/StreamWriter in between.

``httpserver.HttpServer`` serves on this path when httptools imports (``modelambda[fast]``)
and ``$MODELAMBDA_HTTP`` does not say ``streams``; otherwise on asyncio streams with the
pure-Python parser (``httpserver.parse_head``). Every rule of that path holds here: the same
caps (MAX_HEAD_BYTES, MAX_HEADERS), the same framing checks (``body_framing``: RFC 9112 6.1
and 6.3), Host on HTTP/1.1, 408 for a slow client unless ``read_timeout_s`` is None, the 413s,
keep-alive and pipelining in order, TCP_NODELAY, server-sent events. llhttp adds its own
strictness on top (https://llhttp.org: tokens in methods and header names, no bare CR).
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from modelambda.local.errorlog import log_exception
from modelambda.local.httpserver import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    BadRequest,
    HttpRequest,
    StreamResponse,
    body_framing,
    encode_response,
    encode_stream_head,
    error_response,
    internal_error,
)

if TYPE_CHECKING:
    from modelambda.local.httpserver import HttpServer

STREAMS, PROTOCOL = "streams", "protocol"
ENV_VAR = "MODELAMBDA_HTTP"


def http_kind(requested: str | None = None) -> str:
    """The server path: ``requested`` (or ``$MODELAMBDA_HTTP``), else ``protocol`` when
    httptools imports, else ``streams``. ValueError for an unknown name or a missing
    httptools."""
    kind = requested or os.environ.get(ENV_VAR, "") or None
    if kind not in (None, STREAMS, PROTOCOL):
        raise ValueError(f"{ENV_VAR}={kind!r}: use {STREAMS!r} or {PROTOCOL!r}")
    if kind == STREAMS:
        return STREAMS
    try:
        import httptools  # noqa: F401
    except ImportError:
        if kind == PROTOCOL:
            raise ValueError(f"{ENV_VAR}=protocol but httptools is not installed: "
                             "pip install 'modelambda[fast]'") from None
        return STREAMS
    return PROTOCOL


# the path an emulator chose for every server on its loop (its front door and each
# environment's Runtime API), so that a benchmark can run one emulator of each side by side
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = \
    weakref.WeakKeyDictionary()


def choose_for_loop(loop: asyncio.AbstractEventLoop, requested: str | None = None) -> str:
    """Fix the path of every server later started on ``loop`` (see ``http_kind``)."""
    kind = _per_loop[loop] = http_kind(requested)
    return kind


def kind_for_loop(loop: asyncio.AbstractEventLoop) -> str:
    return _per_loop.get(loop) or http_kind()


class _TooLarge(Exception):
    """A body past 4x the limit: answered with the server's 413, connection closed."""


class _Writer:
    """What ``StreamResponse.stream`` writes to: the slice of ``asyncio.StreamWriter`` the
    console's live stream uses (write, drain, is_closing, transport)."""

    __slots__ = ("_conn", "transport")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.transport = conn.transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    async def drain(self) -> None:
        await self._conn.drain()


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        import httptools

        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self._errors = (httptools.HttpParserError,)
        self._upgrade = httptools.HttpParserUpgrade
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer: tuple[str, int] | None = None
        # requests parsed and not yet answered, in order: (request, keep_alive) or
        # (None, (status, message)) for an error that ends the connection, or
        # (None, keep_alive) for the server's 413
        self.queue: deque[tuple[HttpRequest | None, Any]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.pending: bytearray | None = None  # data held while admit() decides
        self.stopped = False  # nothing more is parsed (an error, an upgrade, the end)
        self.eof = False
        self.timer: asyncio.TimerHandle | None = None
        self.unparsed = 0  # bytes received since the last head was complete
        self.paused = False
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.fields = 0
        self.head_size = 0
        self.in_message = False
        self.in_body = False
        self.body: list[bytes] = []
        self.size = 0
        self.limit_passed = False

    # ---- the transport's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer = transport.get_extra_info("peername")
        self.server._connections.add(self)
        if self.server.admit is not None:
            self.pending = bytearray()
            self.task = self.loop.create_task(self._admit())
        else:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stopped = True
        self._disarm()
        self.server._connections.discard(self)
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("the client hung up"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    async def drain(self) -> None:
        if self.transport.is_closing():
            await asyncio.sleep(0)  # as StreamWriter.drain: let connection_lost run
            if self.stopped and self.transport.is_closing():
                raise ConnectionResetError("the connection is closed")
        if self._write_paused:
            self._drain = self.loop.create_future()
            await self._drain

    def close(self) -> None:
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.pending is not None:
            self.pending += data
            return
        if self.stopped:
            return
        if not self.in_body:
            # httptools buffers a header's name and value until the field ends: bytes of a
            # head still unfinished are counted here, so that one endless field is a 431
            self.unparsed += len(data)
        try:
            self.parser.feed_data(data)
            if not self.in_body and self.unparsed > MAX_HEAD_BYTES + len(data):
                raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes", 431)
        except BadRequest as exc:
            self.stopped = True
            self.queue.append((None, (exc.status, f"bad request: {exc}")))
        except self._upgrade:
            self.stopped = True  # no protocol upgrades: answer what came, then close
        except self._errors as exc:  # the callbacks' own exceptions come wrapped
            self.stopped = True
            too_large = isinstance(exc.__context__, _TooLarge)
            self.queue.append((None, False if too_large else self._refusal(exc)))
        if self.queue:
            self._disarm()
            if self.task is None:
                self.task = self.loop.create_task(self._serve())
            if not self.paused:  # one request at a time: the rest waits in the socket
                self.paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.in_message and not self.in_body and not self.stopped:
            self.stopped = True
            self.queue.append((None, (400, "bad request: the connection ended inside a "
                                           "request head")))
        if self.task is None:
            if self.queue:
                self.task = self.loop.create_task(self._serve())
            else:
                self.transport.close()
        return True  # half-closed: answers already owed still go out

    def _refusal(self, exc: BaseException) -> tuple[int, str]:
        cause = exc.__context__
        if isinstance(cause, BadRequest):
            return cause.status, f"bad request: {cause}"
        return 400, f"bad request: {exc}"

    # ---- the parser's callbacks (httptools calls them inside feed_data)
    def on_message_begin(self) -> None:
        self._reset()
        self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > MAX_HEAD_BYTES:
            raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes", 431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        if self.fields > MAX_HEADERS:
            raise BadRequest(f"more than {MAX_HEADERS} header fields", 431)
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD_BYTES:
            raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes", 431)
        key = name.decode("latin-1").lower()
        text = value.strip(b" \t").decode("latin-1")
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        headers = self.headers
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise BadRequest("malformed request line: want 'METHOD target HTTP/1.1'")
        if version == "1.1" and "host" not in headers:
            raise BadRequest("HTTP/1.1 request without a Host header")  # RFC 9112 3.2
        length = body_framing(headers)
        if length is not None and length > 4 * self.server.max_body:
            raise _TooLarge
        self.limit_passed = length is not None and length > self.server.max_body
        self.in_body = True
        self.unparsed = 0
        if headers.get("expect", "").lower() == "100-continue" and not self.queue \
                and self.task is None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > 4 * self.server.max_body:
            raise _TooLarge
        if self.size > self.server.max_body:
            self.limit_passed = True
            self.body.clear()
        elif not self.limit_passed:
            self.body.append(body)

    def on_message_complete(self) -> None:
        headers = self.headers
        keep_alive = self.parser.get_http_version() == "1.1" \
            and headers.get("connection", "").lower() != "close"
        self.in_message = self.in_body = False
        if self.limit_passed:
            self.queue.append((None, keep_alive))
            return
        try:
            request = HttpRequest(self.parser.get_method().decode("ascii"),
                                  self.url.decode("latin-1"), headers,
                                  b"".join(self.body) if self.body else b"", self.peer)
        except ValueError as exc:  # urlsplit: e.g. an unclosed "[" in the target
            raise BadRequest(f"malformed request target: {exc}") from exc
        self.queue.append((request, keep_alive))

    # ---- answering, one request at a time
    async def _admit(self) -> None:
        try:
            admitted = await self.server.admit(self.peer)  # type: ignore[misc, arg-type]
        except Exception as exc:
            log_exception(f"admitting a connection on port {self.server.port}", exc)
            admitted = False
        self.task = None
        pending, self.pending = self.pending, None
        if not admitted:
            self.stopped = True
            self.transport.write(encode_response(self.server.refused, keep_alive=False))
            self.transport.close()
            return
        self._arm()
        if pending:
            self.data_received(bytes(pending))
        if self.eof and self.task is None:
            self.eof_received()

    async def _serve(self) -> None:
        server = self.server
        try:
            while self.queue:
                if server._closing and not self.transport.is_closing():
                    break
                request, how = self.queue.popleft()
                if request is None:
                    if isinstance(how, tuple):
                        self.transport.write(encode_response(error_response(*how), False))
                        break
                    self.transport.write(encode_response(server.too_large, how))
                    if not how:
                        break
                    continue
                server._busy.add(self)
                try:
                    keep_alive = await self._answer(request, how)
                finally:
                    server._busy.discard(self)
                if not keep_alive:
                    break
            else:
                self.task = None
                if self.eof or self.stopped or self.transport.is_closing():
                    self.transport.close()
                    return
                self._arm()
                if self.paused:
                    self.paused = False
                    self.transport.resume_reading()
                return
        except ConnectionError:
            pass
        self.task = None
        self.stopped = True
        self.transport.close()

    async def _answer(self, request: HttpRequest, keep_alive: bool) -> bool:
        server = self.server
        try:
            response = await server.handler(request)
        except Exception as exc:  # a bug in a handler must not kill the server, nor hide
            log_exception(f"{request.method} {request.target} on port {server.port}", exc)
            response = internal_error(exc)
        if isinstance(response, StreamResponse):
            self.transport.write(encode_stream_head(response))
            await response.stream(_Writer(self))  # type: ignore[arg-type]
            return False
        keep_alive = keep_alive and not server._closing
        self.transport.write(encode_response(response, keep_alive))
        if self._write_paused:
            await self.drain()
        return keep_alive

    # ---- the slow-client timeout: from the connection or the last answer to a whole request
    def _arm(self) -> None:
        timeout = self.server.read_timeout_s
        if timeout is not None and not self.stopped:
            self._disarm()
            self.timer = self.loop.call_later(timeout, self._timed_out, timeout)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self, timeout: float) -> None:
        self.timer = None
        if self.task is not None or self.queue or self.transport.is_closing():
            return
        self.stopped = True
        self.transport.write(encode_response(
            error_response(408, f"request not received within {timeout} s"), False))
        self.transport.close()
