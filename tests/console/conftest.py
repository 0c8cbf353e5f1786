"""Fixtures for the console: an emulator serving iris as ``up`` does, and Debian's chromium
driven by Playwright (never Playwright's own browser download: there is no CDN here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches chromium keeps calling home (and the network
# here is closed); no GPU, no sandbox (tests run as root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]
# Set to a directory to keep a copy of the screenshots (docs/console/ is made this way).
SHOTS_ENV = "MODELAMBDA_CONSOLE_SHOTS"


# Module scope, not session: Playwright's sync API keeps its asyncio loop registered as the main
# thread's running loop while it is open, so a later test's asyncio.run() would fail with
# "cannot be called from a running event loop" (seen in CI).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium): .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


class Shots:
    """Screenshots into the test's tmp dir (and $MODELAMBDA_CONSOLE_SHOTS when set)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    def take(self, page: Any, name: str, full_page: bool = False) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 10_000, f"{path} looks empty"
        self.taken.append(path)
        keep = os.environ.get(SHOTS_ENV)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    directory = tmp_path / "screenshots"
    directory.mkdir()
    return Shots(directory)
