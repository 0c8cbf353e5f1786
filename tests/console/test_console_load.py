"""10,000 invocations and more with the console open: the record stays a bounded ring, the
emulator's memory stops growing once it is full, and the page keeps up (extended: about a
minute of requests)."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from modelambda.local.console.store import MAX_INVOCATIONS
from modelambda.local.procfs import rss_bytes
from tests.console.conftest import Shots
from tests.emulator.conftest import (  # noqa: F401  (fixtures)
    Emu,
    emu,
    lambda_runtime,
    make_function,
    python312,
    require_bwrap,
)

pytestmark = [pytest.mark.slow, pytest.mark.extended]
ECHO = """
def handler(event, context):
    print("handling", len(event.get("pad", "")))
    return {"ok": True, "pad": event.get("pad", "")}
"""


def load(url: str, count: int, threads: int = 4) -> None:
    """``count`` invocations of "echo" over ``threads`` keep-alive connections."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"pad": "x" * 2000}).encode()
    errors: list[str] = []

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            for _ in range(n):
                conn.request("POST", "/2015-03-31/functions/echo/invocations", body)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(str(response.status))
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, args=(count // threads,)) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors, errors[:5]


def test_ten_thousand_invocations_stay_bounded(emu: Emu, make_function: Callable[..., Any],  # noqa: F811
                                               page: Any, shots: Shots) -> None:
    from playwright.sync_api import expect

    emu.add(make_function(ECHO, name="echo", memory_mb=256))
    log = emu.thread.emulator.console.log
    page.goto(emu.url + "/#invocations")
    expect(page.locator("#live")).to_have_text("live")
    # WHEN 10,000 invocations fill the record, with the page open
    load(emu.url, MAX_INVOCATIONS)
    assert len(log.records) == MAX_INVOCATIONS
    full = rss_bytes([os.getpid()])
    # AND 5,000 more arrive
    load(emu.url, 5000)
    # THEN the oldest went, the count stays, and the emulator's memory did not grow with them
    assert log.seq == MAX_INVOCATIONS + 5000
    assert len(log.records) == MAX_INVOCATIONS and log.records[0].seq == 5001
    grown_mb = (rss_bytes([os.getpid()]) - full) / (1024 * 1024)
    assert grown_mb < 30, f"the emulator grew {grown_mb:.0f} MB over 5,000 more invocations"
    # AND the page shows the newest (live), lists at most 500, and still opens one
    newest = page.locator("#invocation-list tbody tr").first
    expect(newest).to_have_attribute("data-id", str(log.seq))
    assert page.locator("#invocation-list tbody tr").count() == 500
    newest.click()
    expect(page.locator("#invocation-detail pre.report")).to_contain_text("REPORT RequestId:")
    expect(page.locator("#invocation-detail pre.logs")).to_contain_text("handling 2000")
    shots.take(page, "after-15000")
