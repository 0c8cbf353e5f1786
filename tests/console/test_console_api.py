"""The console's JSON API, its guards and its record, without a browser (no function runs)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from modelambda.local.console.store import InvocationLog
from modelambda.local.emulator import EmulatorThread
from modelambda.local.results import Invocation, InvocationResult


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread(sink=lambda line: None)
    try:
        yield thread
    finally:
        thread.stop(drain_s=1)


def call(emulator: EmulatorThread, method: str, path: str, body: bytes | None = None,
         **headers: str) -> tuple[int, dict[str, str], bytes]:
    host, port = emulator.emulator.host, emulator.emulator.port
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        sent = {"Host": f"{host}:{port}", **{k.replace("_", "-"): v for k, v in headers.items()}}
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        connection.close()


def test_page_and_json_at_the_root(emulator: EmulatorThread) -> None:
    # a browser gets the page, with a policy that allows only the page's own files
    status, headers, body = call(emulator, "GET", "/", Accept="text/html,*/*")
    assert status == 200 and b'src="/console/static/console.js"' in body
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and headers["x-content-type-options"] == "nosniff"
    # a script asking for / still gets /health's JSON
    status, _, body = call(emulator, "GET", "/")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = call(emulator, "GET", "/console/static/console.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    # only the page's own files are served: no path reaches the disk
    for path in ("/console/static/../__init__.py", "/console/static/%2e%2e/api.py",
                 "/console/static/store.py", "/console/measurements/x/..%2f..%2fetc.png"):
        assert call(emulator, "GET", path)[0] == 404, path


def test_json_views_and_their_errors(emulator: EmulatorThread) -> None:
    status, _, body = call(emulator, "GET", "/console/api/functions")
    assert status == 200 and json.loads(body) == {"functions": []}
    status, _, body = call(emulator, "GET", "/console/api/invocations?limit=5")
    listing = json.loads(body)
    assert status == 200 and listing["invocations"] == [] and listing["limit"] == 10_000
    for path, words in [("/console/api/functions/nope", "no function 'nope'"),
                        ("/console/api/invocations/12", "no invocation '12'"),
                        ("/console/api/invocations/" + "9" * 5000, "no invocation"),
                        ("/console/api/latency/nope", "no function 'nope'"),
                        ("/console/api/nothing", "no such console view")]:
        status, _, body = call(emulator, "GET", path)
        assert status == 404 and words in json.loads(body)["error"], (path, body)
    status, _, body = call(emulator, "GET", "/console/api/invocations?limit=lots")
    assert status == 400 and "whole numbers" in json.loads(body)["error"]


def test_foreign_hosts_and_cross_origin_writes_are_refused(emulator: EmulatorThread) -> None:
    url = emulator.url
    promote = "/console/api/models/iris/promote"
    body = b'{"version": "2", "alias": "live"}'
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 names its own host
    status, _, answer = call(emulator, "GET", "/console/api/functions",
                             Host=f"evil.example:{emulator.emulator.port}")
    assert status == 403 and "Host was 'evil.example" in json.loads(answer)["error"]
    # CSRF: another origin's page (or none) cannot promote
    for origin in ("http://evil.example", "null", f"{url}.evil.example"):
        status, _, answer = call(emulator, "POST", promote, body, Origin=origin,
                                 Content_Type="application/json")
        assert status == 403 and "Origin was" in json.loads(answer)["error"], origin
    status, _, _ = call(emulator, "POST", promote, body, Content_Type="application/json")
    assert status == 403
    # a simple (preflight-free) form post is refused even from the page's origin
    status, _, answer = call(emulator, "POST", promote, body, Origin=url,
                             Content_Type="text/plain")
    assert status == 415 and "JSON body" in json.loads(answer)["error"]
    assert call(emulator, "DELETE", "/console/api/functions", Origin=url)[0] == 405
    # from the page itself it reaches the action (here: no such service)
    status, _, answer = call(emulator, "POST", promote, body, Origin=url,
                             Content_Type="application/json")
    assert status == 404 and "has no model store" in json.loads(answer)["error"]


def test_live_stream_costs_nothing_without_a_browser(emulator: EmulatorThread) -> None:
    log = emulator.emulator.console.log
    assert log.on_append is None  # no client: an invocation is one append, nothing more
    host, port = emulator.emulator.host, emulator.emulator.port
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/console/api/live", headers={"Host": f"{host}:{port}"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.readline() == b"retry: 2000\n"
    response.readline()
    assert response.readline() == b"event: update\n"
    update = json.loads(response.readline().removeprefix(b"data: "))
    assert update == {"functions": [], "invocations": [], "last": 0}
    assert log.on_append is not None  # connected: appends wake the pusher
    console = emulator.emulator.console
    assert len(console.live.clients) == 1
    response.close()
    connection.close()
    # the heartbeat's next write finds the socket closed and lets the client go
    deadline = time.monotonic() + 10
    while log.on_append is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.on_append is None


def _record(log: InvocationLog, size: int = 10) -> None:
    function: Any = SimpleNamespace(settings=SimpleNamespace(name="fn"))
    result = InvocationResult(request_id="r", payload=b"x" * size, logs=["START", "REPORT"])
    log.invoked(function, Invocation(b"{}"), result, False)


def test_the_record_is_a_bounded_ring() -> None:
    log = InvocationLog(limit=100, max_bytes=10_000)
    for _ in range(1000):
        _record(log)
    assert len(log.records) == 100 and log.seq == 1000
    assert [r.seq for r in log.newest()][:3] == [1000, 999, 998]
    assert log.get(901) is not None and log.get(900) is None and log.get(1001) is None
    assert log.get(950) is not None and log.get(950).seq == 950  # type: ignore[union-attr]
    # big payloads: the byte budget drops the oldest first, the newest always stays
    _record(log, size=6_000)
    _record(log, size=6_000)
    assert [r.seq for r in log.records] == [1002]
    assert log.bytes == log.records[0].size
    _record(log, size=50_000)
    assert [r.seq for r in log.records] == [1003]


def test_live_streams_are_capped(emulator: EmulatorThread) -> None:
    from modelambda.local.console import MAX_STREAMS

    host, port = emulator.emulator.host, emulator.emulator.port
    opened = []
    try:
        for _ in range(MAX_STREAMS):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("GET", "/console/api/live", headers={"Host": f"{host}:{port}"})
            response = connection.getresponse()
            assert response.status == 200
            opened.append((connection, response))
        status, _, body = call(emulator, "GET", "/console/api/live")
        assert status == 503 and "close a console tab" in json.loads(body)["error"]
    finally:
        for connection, response in opened:
            response.close()
            connection.close()
