"""The dependency cache: one installer per entry at a time, the others reuse its result."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from modelambda.package import deps


def test_concurrent_installs_of_one_entry_install_once(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELAMBDA_CACHE", str(tmp_path))
    calls: list[int] = []

    def slow_install(requirements: list[str], python_version: str, architecture: str,
                     final: Path, *rest: object) -> Path:
        calls.append(1)
        time.sleep(0.3)  # long enough for the other caller to arrive meanwhile
        final.mkdir()
        (final / ".complete").write_text("{}")
        return final

    monkeypatch.setattr(deps, "_install", slow_install)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        deps.install(["numpy==2.0.0"], "3.12", "x86_64", kind="deps"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 3
