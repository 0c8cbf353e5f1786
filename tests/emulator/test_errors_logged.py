"""Nothing the emulator survives is swallowed silently: a bug behind an HTTP request, a failure
while shutting down: each is said on stderr with its reason and traceback."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from modelambda.local.front import Front
from modelambda.local.httpserver import HttpRequest, HttpResponse, HttpServer
from tests.emulator.conftest import Emu


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_a_handler_bug_is_a_json_500_and_its_traceback_is_logged(
        capsys: pytest.CaptureFixture[str]) -> None:
    async def buggy_handler(request: HttpRequest) -> HttpResponse:
        raise KeyError("the bug")

    async def scenario() -> tuple[int, bytes, str]:
        server = HttpServer(buggy_handler)
        await server.start()
        try:
            return await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/some/path")
        finally:
            await server.stop()

    status, body, content_type = asyncio.run(scenario())
    assert status == 500 and content_type == "application/json"
    answer = json.loads(body)
    assert "KeyError" in answer["message"]
    assert "Traceback" not in body.decode() and "buggy_handler" not in body.decode()
    log = capsys.readouterr().err
    assert "GET /some/path" in log and "KeyError: 'the bug'" in log
    assert "Traceback (most recent call last)" in log and "in buggy_handler" in log


def test_a_bug_in_the_front_is_logged_and_the_emulator_serves_on(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    async def broken_v2(self: Front, path: str, request: HttpRequest) -> HttpResponse:
        raise ValueError("a bug in the v2 routes")

    monkeypatch.setattr(Front, "v2", broken_v2)
    emu = Emu()
    try:
        status, body, _ = _get(f"{emu.url}/v2/health/ready")
        assert status == 500 and "Traceback" not in body.decode()
        assert json.loads(body)["Type"] == "Service"
        assert _get(f"{emu.url}/health")[0] == 200  # still serving
    finally:
        emu.stop()
    log = capsys.readouterr().err
    assert "ValueError: a bug in the v2 routes" in log and "in broken_v2" in log


def test_shutdown_failures_are_each_logged_with_their_reason(
        make_function: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    emu = Emu()
    emu.add(make_function("def handler(e, c):\n    return 1\n", name="one"))
    emu.add(make_function("def handler(e, c):\n    return 2\n", name="two"))
    for name in ("one", "two"):
        emu.client.invoke(FunctionName=name, Payload=b"{}")
    env = emu.thread.function("one").environments[0]
    close = env.close

    async def failing_close() -> None:
        await close()  # the environment really stops ...
        raise RuntimeError("the cgroup could not be removed")  # ... and then something fails

    env.close = failing_close  # type: ignore[method-assign]
    server = emu.thread.emulator.server
    stop_server = server.stop

    async def failing_stop(drain_s: float = 0.0) -> None:
        await stop_server(drain_s)
        raise OSError("the socket would not close")

    server.stop = failing_stop  # type: ignore[method-assign]
    other = emu.thread.function("two").environments[0]
    emu.stop()

    log = capsys.readouterr().err
    assert ("modelambda: stopping environment one-1 failed: RuntimeError: the cgroup could "
            "not be removed") in log
    assert "modelambda: stopping the front door failed: OSError: the socket would not close" \
        in log
    assert log.count("Traceback (most recent call last)") == 2
    # and the rest was stopped all the same
    assert other.state == "dead" and other.proc is not None and other.proc.returncode is not None
