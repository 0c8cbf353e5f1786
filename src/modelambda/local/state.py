"""Where a running emulator is found: `up` records its URL for `invoke NAME`."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from modelambda.package import deps

STATE_FILE = "emulator.json"


def state_path() -> Path:
    """Where `up` records its URL for `invoke NAME` ($MODELAMBDA_STATE_FILE overrides)."""
    override = os.environ.get("MODELAMBDA_STATE_FILE")
    return Path(override) if override else deps.cache_root() / STATE_FILE


def write_state(url: str, functions: list[str]) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "functions": functions}))
    tmp.replace(path)


def clear_state() -> None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(state_path().read_text()).get("pid") == os.getpid():
            state_path().unlink()


def running_emulator() -> dict[str, Any] | None:
    """The emulator to call: $MODELAMBDA_ENDPOINT, or the one `up` recorded, if still alive."""
    endpoint = os.environ.get("MODELAMBDA_ENDPOINT")
    if endpoint:
        return {"url": endpoint.rstrip("/"), "functions": None}
    try:
        state = json.loads(state_path().read_text())
        os.kill(int(state["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, PermissionError):
        return None
    return state  # type: ignore[no-any-return]
