"""Service directories -> functions the emulator runs, and where a running emulator is found."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from modelambda.local.interpreters import find_python
from modelambda.local.settings import FunctionSettings
from modelambda.package import deps
from modelambda.package.stage import stage
from modelambda.spec import ServiceSpec, load_spec

STATE_FILE = "emulator.json"


def function_for(directory: Path, *, python: str | None = None,
                 use_bwrap: bool | None = None) -> tuple[FunctionSettings, ServiceSpec]:
    """Stage a service directory and describe it as a function for the emulator.

    ``python`` overrides the interpreter found for the spec's runtime; only an explicit user
    choice should pass it (running 3.12 code on another version hides real failures)."""
    spec = load_spec(directory)
    interpreter = python or find_python(spec.service.runtime)
    staged = stage(spec, interpreter)
    mounts: dict[str, Path] = {}
    if spec.strategy.kind == "efs":
        host = spec.root / ".modelambda" / "efs"
        host.mkdir(parents=True, exist_ok=True)
        mounts[str(spec.strategy.settings.get("mount_path", "/mnt/models"))] = host
    settings = FunctionSettings(
        name=spec.service.name, handler=staged.handler, task_dir=staged.task_dir.resolve(),
        python=interpreter, runtime_dir=staged.runtime_dir, runtime=spec.service.runtime,
        architecture=spec.service.architecture, opt_dir=staged.opt_dir,
        memory_mb=spec.service.memory_mb, timeout_s=spec.service.timeout_s,
        ephemeral_mb=spec.service.ephemeral_storage_mb,
        reserved_concurrency=spec.service.reserved_concurrency, mounts=mounts,
        snapstart=spec.service.snapstart, use_bwrap=use_bwrap,
        on_failure=(spec.root / ".modelambda" / "on-failure.jsonl").resolve(),
    )
    return settings, spec


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
