"""Malformed HTTP requests: a table of hand-made cases, and random damage to good requests.

RFC 9112 is the reference for what is malformed: 6.1 and 6.3 (conflicting Content-Length and
Transfer-Encoding, an invalid Content-Length, a transfer coding not ending with chunked), 3.2
(Host), 5.1 and 5.2 (whitespace before the colon, obs-fold), 7.1 (chunk sizes).
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from modelambda.local.httpserver import MAX_HEAD_BYTES, MAX_HEADERS
from tests.hostile.fuzz import Tally, error_message
from tests.hostile.servers import http_exchange

GOOD = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

# (raw request, expected status): each malformed in one way
MALFORMED = {
    "content-length-and-chunked": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "chunked-and-content-length": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400),
    "coding-not-ending-chunked": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    "unknown-coding": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    "two-content-lengths": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
        b"\r\nab", 400),
    "negative-content-length": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "signed-content-length": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab", 400),
    "hex-content-length": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0x2\r\n\r\nab", 400),
    "bad-chunk-size": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "negative-chunk-size": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n",
        400),
    "huge-chunk-size": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"f" * 40 + b"\r\n", 400),
    "chunk-longer-than-its-size": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nabcdef\r\n0\r\n\r\n", 400),
    "no-request-line-version": (b"GET /health\r\nHost: x\r\n\r\n", 400),
    "http2-version": (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 400),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "no-host": (b"GET /health HTTP/1.1\r\n\r\n", 400),
    "header-without-colon": (b"GET /health HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n", 400),
    "space-before-colon": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", 400),
    "obs-fold": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
    "bare-cr-in-value": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r2\r\n\r\n", 400),
    "unclosed-ipv6-target": (b"GET //[::1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "oversized-header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 1)
        + b"\r\n\r\n", 431),
    "line-past-the-buffer": (b"GET /" + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n", 431),
    "too-many-headers": (
        b"GET /health HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n", 431),
}


GOOD_REQUESTS = [
    GOOD,
    b"POST /fn/iris/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 41\r\n\r\n{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}    ",
    b"POST /2015-03-31/functions/iris/invocations HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b"14\r\n{\"instances\": [[5.1, \r\n13\r\n3.5, 1.4, 0.2]]}   \r\n0\r\n\r\n",
]


@st.composite
def damaged_request(draw: st.DrawFn) -> bytes:
    """A good request with random damage: bytes replaced, inserted or cut, a header line
    doubled, CRLFs turned into LFs; sometimes a hand-made malformed one as it is."""
    raw = bytearray(draw(st.sampled_from(GOOD_REQUESTS + [v[0] for v in MALFORMED.values()
                                                          if len(v[0]) < 4096])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["replace", "insert", "cut", "lf", "double"]))
        if action == "replace" and at < len(raw):
            raw[at] = draw(st.integers(0, 255))
        elif action == "insert":
            raw[at:at] = draw(st.sampled_from([b"\r\n", b" ", b":", b"\x00", b"\r",
                                                b"Content-Length: 3\r\n",
                                                b"Transfer-Encoding: chunked\r\n", b"\xff"]))
        elif action == "cut":
            del raw[at:]
        elif action == "lf":
            raw[:] = raw.replace(b"\r\n", b"\n", 1)
        elif action == "double" and b"\r\n" in raw:
            line = raw.split(b"\r\n")[min(1, raw.count(b"\r\n"))]
            raw[at:at] = line + b"\r\n"
    return bytes(raw)


def check_raw_answer(address: tuple[str, int], raw: bytes, tally: Tally) -> None:
    """Whatever came in: an answer that is not a 5xx, a JSON error body with a message for a
    4xx, or the connection closed without one (a request cut short); then a good request on
    the same server is answered."""
    tally.cases += 1
    try:
        status, _, body = http_exchange(address, raw, timeout=30, hang_up=True)
    except AssertionError:  # closed without an answer: the request never ended
        status = None
    except TimeoutError:
        tally.failed("crashes", f"no answer nor close in 30 s to {raw[:200]!r}")
        return
    if status is not None:
        if status >= 500 and status != 501:  # 501: a transfer coding not understood
            tally.failed("unexpected_5xx", f"{status} {body[:200]!r} for {raw[:200]!r}")
        elif status >= 400 and not raw.startswith(b"HEAD "):
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if error_message(payload) is None:
                tally.failed("non_json_errors", f"{status} {body[:200]!r} for {raw[:200]!r}")
    try:
        alive, _, _ = http_exchange(address, GOOD, timeout=30)
    except (AssertionError, OSError) as exc:
        tally.failed("crashes", f"{exc} after {raw[:200]!r}")
        return
    if alive != 200:
        tally.failed("crashes", f"the server answers {alive} after {raw[:200]!r}")
