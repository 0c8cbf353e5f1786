"""The emulator on either event loop: uvloop (when installed, the default) and asyncio's own;
and on either HTTP path: httptools with an asyncio.Protocol (when installed, the default) and
asyncio streams with the pure-Python parser.

uvloop and httptools are optional dependencies (``modelambda[fast]``) chosen for speed
(``eventloop.py``, ``httpproto.py``); asyncio's loop and streams are what run without them.
The same behaviours must hold on each: invoke, Function URL with a query, an Event invoke, a
timeout that kills the environment and a fresh one after it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable

import pytest

from modelambda.local import eventloop, httpproto
from modelambda.local.emulator import EmulatorThread
from modelambda.local.httpserver import HttpRequest
from modelambda.local.settings import FunctionSettings

CODE = """
import time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"got": event, "request_id": context.aws_request_id}
"""

def _post(port: int, path: str, body: dict, headers: dict[str, str] | None = None
          ) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body).encode(),
                     {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()


def _loops() -> list[str]:
    loops = [eventloop.ASYNCIO]
    try:
        import uvloop as _  # noqa: F401
        loops.append(eventloop.UVLOOP)
    except ImportError:
        pass
    return loops


def _combinations() -> list[tuple[str, str]]:
    """(loop, HTTP path): asyncio's loop with streams (nothing optional installed), each
    installed lever on uvloop, and streams on uvloop (the httptools lever's baseline)."""
    combos = [(eventloop.ASYNCIO, httpproto.STREAMS)]
    fast = _loops()[-1]
    combos.append((fast, httpproto.http_kind()))
    if httpproto.http_kind() == httpproto.PROTOCOL:
        combos.append((fast, httpproto.STREAMS))
    return sorted(set(combos))


@pytest.mark.parametrize(("loop", "http"), _combinations())
def test_the_emulator_behaves_alike_on_each_event_loop(
        loop: str, http: str, make_function: Callable[..., FunctionSettings]) -> None:
    lines: list[str] = []
    with EmulatorThread(sink=lines.append, loop=loop, http=http, idle_timeout_s=60) as emu:
        assert emu.emulator.event_loop == loop
        assert emu.describe()["event_loop"] == loop
        assert emu.describe()["http"] == http
        name = f"fn-{loop}-{http}"
        emu.add_function(make_function(CODE, name=name, timeout_s=1))
        port = emu.emulator.port
        path = f"/2015-03-31/functions/{name}/invocations"

        status, body = _post(port, path, {"n": 1})
        assert status == 200 and body["got"] == {"n": 1}
        status, body = _post(port, f"/fn/{name}/a%20b?x=1&x=2", {"n": 2})
        assert status == 200
        assert body["got"]["rawPath"] == "/a b"
        assert body["got"]["queryStringParameters"] == {"x": "1,2"}

        status, _ = _post(port, path, {"n": 3}, {"X-Amz-Invocation-Type": "Event"})
        assert status == 202
        deadline = time.monotonic() + 30
        while not any("REPORT" in line for line in lines[-20:]) or \
                sum("REPORT" in line for line in lines) < 3:
            assert time.monotonic() < deadline, lines[-20:]
            time.sleep(0.05)

        status, body = _post(port, path, {"sleep": 5})  # past the 1 s timeout: killed
        assert status == 200 and body["errorType"] == "Sandbox.Timedout"
        status, body = _post(port, path, {"n": 4})  # a fresh environment answers
        assert status == 200 and body["got"] == {"n": 4}


def test_the_loop_is_chosen_by_name_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV_VAR, "asyncio")
    assert eventloop.loop_kind() == eventloop.ASYNCIO
    loop = eventloop.new_event_loop()
    try:
        assert eventloop.running_kind(loop) == eventloop.ASYNCIO
    finally:
        loop.close()
    monkeypatch.setenv(eventloop.ENV_VAR, "tokio")
    with pytest.raises(ValueError, match="MODELAMBDA_LOOP='tokio'"):
        eventloop.loop_kind()
    monkeypatch.delenv(eventloop.ENV_VAR)
    assert eventloop.loop_kind() == _loops()[-1]  # uvloop whenever it is installed


def test_the_http_path_is_chosen_by_name_or_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(httpproto.ENV_VAR, "streams")
    assert httpproto.http_kind() == httpproto.STREAMS
    monkeypatch.setenv(httpproto.ENV_VAR, "h2")
    with pytest.raises(ValueError, match="MODELAMBDA_HTTP='h2'"):
        httpproto.http_kind()
    monkeypatch.delenv(httpproto.ENV_VAR)
    try:
        import httptools as _  # noqa: F401
        expected = httpproto.PROTOCOL
    except ImportError:
        expected = httpproto.STREAMS
    assert httpproto.http_kind() == expected  # httptools' path whenever it is installed


@pytest.mark.parametrize("target", [
    "/fn/iris/", "/2018-06-01/runtime/invocation/next", "/a%20b/c", "/x?y=1&y=2&z=",
    "//host/p", "/p#frag", "/", "*", "http://h/p?q=1", "/a;b", "/t\tab"])
def test_a_request_target_is_split_as_urlsplit_splits_it(target: str) -> None:
    """The fast path for plain targets gives what the general one gives."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    request = HttpRequest("GET", target, {}, b"")
    parts = urlsplit(target)
    assert (request.path, request.raw_query) == (unquote(parts.path), parts.query)
    assert set(request.query) == {name for name, _ in parse_qsl(parts.query,
                                                                keep_blank_values=True)}
