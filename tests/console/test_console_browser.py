"""The console end to end in Debian's chromium: the page ``up`` serves while iris runs.

Each test tells a story a developer lives: open the page, try a request, read the invocation
and its REPORT line, watch environments come and go under load (a timed-out one stays with
its reason), and promote a model version on an s3 service until the answers change. The
screenshots go to the test's tmp dir (and $MODELAMBDA_CONSOLE_SHOTS); docs/console/ holds a
set of them for the README.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelambda import modelstore
from modelambda.local.console import Service
from modelambda.local.resources import LocalServices
from modelambda.local.s3server import EmbeddedS3
from modelambda.local.services import function_for
from modelambda.spec import load_spec
from tests.conftest import IRIS, ROOT, make_app
from tests.console.conftest import Shots
from tests.emulator.conftest import (  # noqa: F401  (fixtures)
    Emu,
    lambda_runtime,
    make_function,
    python312,
    require_bwrap,
)
from tests.store.conftest import BUCKET, s3, service  # noqa: F401  (the s3 fixture)

pytestmark = pytest.mark.slow
ROWS = json.loads((IRIS / "request.json").read_text())
# what `modelambda bench` wrote for MiniLM (docs/measurements) and `advise` for iris
# (tests/data/console): real outputs, standing in for the last runs of this service's
BENCH = ROOT / "docs" / "measurements" / "2026-11-28-minilm-bench"
ADVICE = ROOT / "tests" / "data" / "console" / "advise-iris.json"
SLEEPER = """
import time
def handler(event, context):
    time.sleep(30)
"""


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def iris(tmp_path: Path) -> Iterator[Emu]:
    root = tmp_path / "iris"
    shutil.copytree(IRIS, root, ignore=shutil.ignore_patterns(".modelambda"))
    settings, spec = function_for(root)
    bench = root / ".modelambda" / "bench"
    bench.mkdir(parents=True)
    for name in ("bench.json", "cold-start.png", "latency.png"):
        shutil.copy(BENCH / name, bench / name)
    (root / ".modelambda" / "advise").mkdir()
    shutil.copy(ADVICE, root / ".modelambda" / "advise" / "advise.json")
    emu = Emu(max_environments=4)
    emu.thread.add_function(settings, [spec.model.name], Service.of(spec))
    try:
        yield emu
    finally:
        emu.stop(drain_s=1)


def test_try_it_invocations_and_environments(iris: Emu, page: Any, shots: Shots,
                                            make_function: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    # GIVEN `up` serving iris (and a function that sleeps past its 1 s timeout)
    iris.add(make_function(SLEEPER, name="sleeper", timeout_s=1, memory_mb=128))
    # WHEN the developer opens the page
    page.goto(iris.url + "/")
    card = page.locator('[data-function="iris"]')
    expect(card).to_contain_text("bundle")
    expect(card).to_contain_text("python3.12")
    expect(card).to_contain_text(f"{iris.url}/fn/iris/")
    expect(page.locator("#live")).to_have_text("live")

    # WHEN they send the prefilled request.json with the form, through the Function URL
    page.click('#tabs button[data-tab="try"]')
    page.select_option("#try-function", "iris")
    assert json.loads(page.input_value("#try-body")) == ROWS
    page.click("#try-send")
    # THEN the prediction is on the page, as the model makes it
    expect(page.locator("#try-result .status")).to_contain_text("HTTP 200")
    answer = json.loads(page.locator("#try-result pre.response").inner_text())
    assert answer["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]
    shots.take(page, "try-it")

    # THEN the invocation is listed (cold: the first), and opening it shows its REPORT line
    page.click('#tabs button[data-tab="invocations"]')
    row = page.locator("#invocation-list tbody tr").first
    expect(row).to_contain_text("iris")
    expect(row).to_contain_text("cold")
    row.click()
    report = page.locator("#invocation-detail pre.report")
    expect(report).to_contain_text("REPORT RequestId:")
    expect(report).to_contain_text("Init Duration:")
    expect(page.locator("#invocation-detail pre.response")).to_contain_text("predictions")
    expect(page.locator("#invocation-detail pre.request")).to_contain_text('"rawPath"')
    shots.take(page, "invocation")

    # WHEN requests arrive at once (the one environment is busy: others start)
    page.click('#tabs button[data-tab="overview"]')
    barrier = threading.Barrier(3)

    def burst() -> None:
        barrier.wait()
        post(f"{iris.url}/fn/iris/", json.dumps(ROWS).encode())

    threads = [threading.Thread(target=burst) for _ in range(3)]
    for thread in threads:
        thread.start()
    # AND the sleeper runs past its timeout
    sleeper = iris.client.invoke(FunctionName="sleeper", Payload=b"{}")
    assert sleeper["FunctionError"] == "Unhandled"
    assert json.loads(sleeper["Payload"].read())["errorType"] == "Sandbox.Timedout"
    for thread in threads:
        thread.join()
    # THEN new environments appear live (no reload), and the killed one stays with its reason
    expect(page.locator('#environments tr[data-env="iris-2"]')).to_be_visible()
    ended = page.locator('#environments tr.ended[data-env="sleeper-1"]')
    expect(ended).to_contain_text("Sandbox.Timedout: timed out after 1.00 s")
    expect(page.locator('[data-latency="iris"] svg.hist')).to_be_visible()
    expect(page.locator('[data-latency="iris"]')).to_contain_text("invocations")
    shots.take(page, "functions")

    # WHEN they look at the measurements: the last bench's table and charts, the advice
    page.click('#tabs button[data-tab="measurements"]')
    measured = page.locator('[data-measurements="iris"]')
    expect(measured.locator("table")).to_contain_text("bundle")
    expect(measured.locator('img[alt="cold-start.png"]')).to_be_visible()
    assert measured.locator('img[alt="latency.png"]').evaluate("i => i.naturalWidth") > 100
    advice = json.loads(ADVICE.read_text())
    expect(measured).to_contain_text(f"recommendation: {advice['recommendation']['option']}")
    expect(measured.locator("svg.chart")).to_contain_text("bundle")
    shots.take(page, "measurements", full_page=True)


def test_promote_moves_the_alias_and_the_answers(s3: EmbeddedS3, tmp_path: Path,  # noqa: F811
                                                  page: Any, shots: Shots) -> None:
    from playwright.sync_api import expect

    # GIVEN an s3 service whose function checks its alias every second, and a version 2
    root = service(IRIS, tmp_path / "iris", f'kind = "s3"\nbucket = "{BUCKET}"\n'
                                             f'prefix = "console-{tmp_path.name}"\nrefresh_s = 1')
    local = LocalServices(s3=s3)
    settings, spec = function_for(root, local)
    store = modelstore.default_store(spec, s3.client())
    first = modelstore.aliases(store, "iris")["live"]["version"]
    modelstore.publish_service(load_spec(root), store, version="v2")
    emu = Emu()
    try:
        emu.thread.add_function(settings, [spec.model.name], Service.of(spec, local))
        url = f"{emu.url}/fn/iris/"
        assert post(url, json.dumps(ROWS).encode())["model_version"] == first
        # WHEN the developer opens the models tab
        page.goto(emu.url + "/#models")
        panel = page.locator('[data-model="iris"]')
        expect(panel.locator('tr[data-alias="live"] .target')).to_have_text(first)
        expect(panel.locator('tr[data-version="v2"]')).to_contain_text("model.onnx")
        shots.take(page, "models-before")
        # AND promotes v2, confirming in the page's dialog
        panel.locator('tr[data-version="v2"] button.promote').click()
        expect(page.locator("#confirm")).to_contain_text("version v2")
        page.click("#confirm-ok")
        # THEN the alias moves, in the store as the CLI's promote moves it
        expect(panel.locator('tr[data-alias="live"] .target')).to_have_text("v2")
        expect(panel.locator(".outcome")).to_contain_text(f"live: {first} → v2")
        assert modelstore.aliases(store, "iris")["live"]["version"] == "v2"
        # AND the version answering changes within the refresh (try it, until it does)
        page.click('#tabs button[data-tab="try"]')
        page.fill("#try-body", json.dumps(ROWS))
        for _ in range(40):
            page.click("#try-send")
            expect(page.locator("#try-result .status")).to_contain_text("HTTP 200")
            answer = json.loads(page.locator("#try-result pre.response").inner_text())
            if answer["model_version"] == "v2":
                break
            page.wait_for_timeout(250)
        assert answer["model_version"] == "v2"
        shots.take(page, "try-after-promote")
        page.click('#tabs button[data-tab="models"]')
        expect(panel.locator(".events")).to_contain_text("model switched")
        shots.take(page, "models-after")
    finally:
        page.goto("about:blank")  # the page lets go of its stream before the server stops
        emu.stop(drain_s=1)
