"""A small asyncio HTTP/1.1 server: keep-alive, TCP_NODELAY, Content-Length and chunked bodies.

Why not ``http.server``: it parses headers with the email package and runs a thread per
connection; a Runtime API behind it answered in ~44 ms until Nagle's algorithm was switched off
(Nagle's algorithm meeting delayed ACKs, RFC 896 and RFC 1122 4.2.3.2; measured here with
awslambdaric 4.2.2 on loopback). Both of the emulator's HTTP surfaces are latency-critical, so this
parses the little HTTP/1.1 they need directly on asyncio streams and sets TCP_NODELAY.
When httptools is installed (``modelambda[fast]``) the same server runs as an
``asyncio.Protocol`` with httptools' C parser instead (``httpproto.py``, same rules);
``MODELAMBDA_HTTP=streams`` keeps this module's path.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from modelambda.local.errorlog import log_exception

REASONS = {100: "Continue", 200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Payload Too Large", 429: "Too Many Requests",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}

# What a request head may be. API Gateway and Function URLs take 10 KB of headers; these caps
# are looser and only there so that a hostile client cannot make the server buffer without end.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 200
# How long a client may take to send a request (head and body), from the connection or the
# previous response: a client that opens connections and sends nothing, or a head a byte at a
# time (slowloris), gets its connection closed instead of holding it forever.
READ_TIMEOUT_S = 60.0
# RFC 9110 5.6.2: a header name is a token
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset(b"0123456789abcdefABCDEF")


# a target with none of these is its own path, with no query (see HttpRequest)
_SPLIT_CHARS = frozenset("?#%\t\r\n")  # urlsplit also drops tabs and newlines


class HttpRequest:
    __slots__ = ("body", "headers", "method", "path", "peer", "query", "raw_query", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes,
                 peer: tuple[str, int] | None = None) -> None:
        self.method = method
        self.peer = peer  # the client's (address, port)
        self.target = target
        if target.startswith("/") and not target.startswith("//") \
                and not _SPLIT_CHARS.intersection(target):
            # the warm path's targets (/next, /response, /fn/name/): nothing to split or
            # unquote, and urlsplit + parse_qsl were ~6% of the emulator's CPU per invoke
            self.path, self.raw_query, self.query = target, "", {}
            self.headers = headers
            self.body = body
            return
        parts = urlsplit(target)
        self.path = unquote(parts.path)
        self.raw_query = parts.query
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            # repeated parameters are joined with commas, as Function URLs and HTTP APIs do
            query[name] = f"{query[name]},{value}" if name in query else value
        self.query = query
        self.headers = headers  # lower-case names; repeated headers joined with ", "
        self.body = body


class HttpResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"",
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []


class StreamResponse(HttpResponse):
    """A response whose body is written as it is made (server-sent events): the head goes
    out without a Content-Length, then ``stream(writer)`` writes until it returns, and the
    connection closes."""

    __slots__ = ("stream",)

    def __init__(self, status: int, headers: list[tuple[str, str]],
                 stream: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        super().__init__(status, b"", headers)
        self.stream = stream


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
# Whether a connection from this peer address (host, port) may be served; None: any.
Admit = Callable[[tuple[str, int]], Awaitable[bool]]


class BodyTooLarge(Exception):
    """Past the hard cap: the connection is dropped without reading the rest."""


class BadRequest(Exception):
    """A request that is not HTTP/1.1 as RFC 9112 has it: answered with ``status`` and the
    connection closed (the next request's start cannot be found reliably)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, headers) of a request head, or BadRequest saying why not."""
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes", 431)
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not set(parts[0]) <= _TOKEN \
            or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("malformed request line: want 'METHOD target HTTP/1.1'")
    headers: dict[str, str] = {}
    fields = [raw for raw in lines[1:] if raw]
    if len(fields) > MAX_HEADERS:
        raise BadRequest(f"more than {MAX_HEADERS} header fields", 431)
    for raw in fields:
        name, colon, value = raw.partition(b":")
        # RFC 9112 5.1: no whitespace between name and colon; 5.2: obs-fold is rejected
        if not colon or not name or not set(name) <= _TOKEN or b"\r" in value \
                or b"\n" in value or b"\0" in value:
            raise BadRequest(f"malformed header field {raw[:40]!r}")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return parts[0].decode("ascii"), parts[1].decode("latin-1"), parts[2].decode("ascii"), \
        headers


def body_framing(headers: dict[str, str]) -> int | None:
    """The body's length from Content-Length, or None when it is chunked (RFC 9112 6.3)."""
    coding = headers.get("transfer-encoding")
    if coding is not None:
        # 6.1: a sender must not send both; a request with both is a smuggling attempt
        if "content-length" in headers:
            raise BadRequest("both Transfer-Encoding and Content-Length")
        codings = [c.strip().lower() for c in coding.split(",")]
        if codings[-1] != "chunked":  # 6.3 (4): the length cannot be known
            raise BadRequest(f"Transfer-Encoding {coding!r} does not end with chunked")
        if codings != ["chunked"]:
            raise BadRequest(f"Transfer-Encoding {coding!r}: only chunked is understood", 501)
        return None
    values = {v.strip() for v in headers.get("content-length", "0").split(",")}
    # 6.3 (5): several different values, or one that is not digits, is an error
    if len(values) != 1 or not all(v.isdigit() and v.isascii() for v in values):
        raise BadRequest(f"invalid Content-Length {headers['content-length']!r}")
    return int(values.pop())


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str],
                     limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` (read and discarded up to 4x the limit,
    so that the client, still sending, gets a clean answer instead of a reset)."""
    cap = 4 * limit
    length = body_framing(headers)
    if length is None:
        chunks: list[bytes] = []
        size = 0
        while True:
            digits = (await reader.readline()).split(b";", 1)[0].strip()
            if not digits or len(digits) > 16 or not set(digits) <= _HEX:
                raise BadRequest(f"invalid chunk size {digits[:20]!r}")
            length = int(digits, 16)
            if length == 0:
                for _ in range(MAX_HEADERS + 1):  # trailers, then the blank line
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        return b"".join(chunks) if size <= limit else None
                raise BadRequest("too many trailer fields", 431)
            size += length
            if size > cap:
                raise BodyTooLarge
            chunk = await reader.readexactly(length)
            if size <= limit:
                chunks.append(chunk)
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest("chunk data longer than its size")
    if length > cap:
        raise BodyTooLarge
    body = await reader.readexactly(length) if length else b""
    return body if length <= limit else None


def _head(status: int, headers: list[tuple[str, str]], *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    # a header a function returns must not split the response (CR, LF or NUL in it): dropped
    head += [f"{name}: {value}" for name, value in headers
             if not _UNSAFE.intersection(name + value)]
    head += extra
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")


def encode_response(response: HttpResponse, keep_alive: bool) -> bytes:
    extra = () if keep_alive else ("Connection: close",)
    return _head(response.status, response.headers,
                 f"Content-Length: {len(response.body)}", *extra) + response.body


def encode_stream_head(response: StreamResponse) -> bytes:
    """The head of a streamed answer (server-sent events): no length, the connection closes."""
    return _head(response.status, response.headers, "Connection: close")


_UNSAFE = frozenset("\r\n\0")


def error_response(status: int, message: str) -> HttpResponse:
    """A JSON error of the server itself (a malformed request, one too slow)."""
    return HttpResponse(status, json.dumps({"message": message}).encode(),
                        [("Content-Type", "application/json")])


def internal_error(exc: BaseException) -> HttpResponse:
    """The 500 a client gets for a bug of ours: JSON, as the AWS service error botocore
    parses (ServiceException), with the exception's type but no traceback (that is logged)."""
    body = {"Type": "Service", "message": f"internal error in the emulator "
                                          f"({type(exc).__name__}); its log has the details"}
    return HttpResponse(500, json.dumps(body).encode(), [
        ("Content-Type", "application/json"), ("x-amzn-ErrorType", "ServiceException")])


class HttpServer:
    """Serve ``handler`` on ``host:port`` (0 = a free port, see ``.port`` after ``start``)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 max_body: int = 16 * 1024 * 1024, too_large: HttpResponse | None = None,
                 admit: Admit | None = None, refused: HttpResponse | None = None,
                 read_timeout_s: float | None = READ_TIMEOUT_S) -> None:
        self.handler = handler
        # None: clients may take as long as they like (the Runtime API, whose clients are
        # environments that may be frozen between two requests)
        self.read_timeout_s = read_timeout_s
        self.admit = admit
        self.refused = refused or HttpResponse(403, b"forbidden")
        self.host = host
        self.port = port
        self.max_body = max_body
        self.too_large = too_large or HttpResponse(413, b"request body too large")
        self._server: asyncio.Server | None = None
        # StreamWriters, or httpproto's connections: both have close()
        self._connections: set[Any] = set()
        self._busy: set[Any] = set()  # between a request and its response
        self._closing = False
        self.kind = ""  # httpproto.STREAMS or PROTOCOL, once started

    async def start(self) -> None:
        from modelambda.local import httpproto  # it imports this module

        loop = asyncio.get_running_loop()
        self.kind = httpproto.kind_for_loop(loop)
        if self.kind == httpproto.PROTOCOL:
            self._server = await loop.create_server(
                lambda: httpproto._Connection(self), self.host, self.port,
                reuse_address=True)
        else:
            self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                      reuse_address=True, limit=1024 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, drain_s: float = 0.0) -> None:
        """Stop accepting; let requests in progress get their answers (up to ``drain_s``)."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        for writer in list(self._connections - self._busy):
            writer.close()  # idle keep-alive connections
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while self._busy and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for writer in list(self._connections):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections.add(writer)
        try:
            if self.admit is not None and not await self.admit(writer.get_extra_info("peername")):
                writer.write(encode_response(self.refused, keep_alive=False))
                await writer.drain()
                return
            while await self._one_request(reader, writer):
                pass
        except BadRequest as exc:
            await self._refuse(writer, exc.status, f"bad request: {exc}")
        except (asyncio.LimitOverrunError, ValueError):  # a line past the stream's buffer
            await self._refuse(writer, 431, "bad request: a line too long")
        except TimeoutError:
            await self._refuse(writer, 408, f"request not received within "
                                            f"{self.read_timeout_s} s")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a client that hung up: drop the connection
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        try:
            writer.write(encode_response(error_response(status, message), keep_alive=False))
            await writer.drain()
        except ConnectionError:
            pass

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        try:
            # one read for the whole head (asyncio.timeout: no task per request, as wait_for)
            async with asyncio.timeout(self.read_timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise BadRequest("the connection ended inside a request head") from exc
            return False  # the client closed the connection
        if self._closing:
            return False
        self._busy.add(writer)
        try:
            return await self._respond(head, reader, writer)
        finally:
            self._busy.discard(writer)

    async def _respond(self, head: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        method, target, version, headers = parse_head(head)
        try:
            request = HttpRequest(method, target, headers, b"", writer.get_extra_info("peername"))
        except ValueError as exc:  # urlsplit: e.g. an unclosed "[" in the target
            raise BadRequest(f"malformed request target: {exc}") from exc
        if version == "HTTP/1.1" and "host" not in headers:
            raise BadRequest("HTTP/1.1 request without a Host header")  # RFC 9112 3.2
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(self.read_timeout_s):
                body = await _read_body(reader, headers, self.max_body)
        except BodyTooLarge:
            writer.write(encode_response(self.too_large, keep_alive=False))
            await writer.drain()
            return False
        if body is None:
            writer.write(encode_response(self.too_large, keep_alive))
            await writer.drain()
            return keep_alive
        request.body = body
        try:
            response = await self.handler(request)
        except Exception as exc:  # a bug in a handler must not kill the server, nor hide
            log_exception(f"{method} {target} on port {self.port}", exc)
            response = internal_error(exc)
        if isinstance(response, StreamResponse):
            writer.write(encode_stream_head(response))
            await response.stream(writer)
            return False
        keep_alive = keep_alive and not self._closing
        writer.write(encode_response(response, keep_alive))
        await writer.drain()
        return keep_alive
