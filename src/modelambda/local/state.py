"""Where running emulators are found: one small record per running `modelambda up`.

Each emulator writes ``<state dir>/<pid>-<port>.json`` when it is ready and removes it when it
stops: ``{"url", "pid", "functions", "started", ...extras}`` (``up`` adds ``s3_url`` when it
started the embedded S3). ``invoke NAME`` asks :func:`find` for the emulator that serves NAME;
``modelambda models`` reads :func:`running` to reach an embedded S3. A record whose process is
gone (killed, crashed, the machine rebooted and the pid reused) is ignored and removed.

The directory is ``$MODELAMBDA_STATE_DIR``, else ``emulators/`` in modelambda's cache.
``$MODELAMBDA_ENDPOINT`` overrides the lookup: that URL is the emulator to call.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelambda.package import deps

STATE_DIR = "emulators"


def state_dir() -> Path:
    """The directory of records ($MODELAMBDA_STATE_DIR overrides)."""
    override = os.environ.get("MODELAMBDA_STATE_DIR")
    return Path(override) if override else deps.cache_root() / STATE_DIR


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot), to tell a reused pid from ours; None
    where /proc has no answer (not Linux, or the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _record_path(url: str) -> Path:
    port = urlsplit(url).port or 0
    return state_dir() / f"{os.getpid()}-{port}.json"


def register(url: str, functions: list[str], extras: dict[str, Any] | None = None) -> Path:
    """Record a running emulator of this process: its URL, its functions, and ``extras``
    (e.g. ``{"s3_url": ...}``). Returns the record's file."""
    path = _record_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**(extras or {}), "url": url.rstrip("/"), "pid": os.getpid(),
              "functions": list(functions), "started": time.time(),
              "process_start": _process_start(os.getpid())}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)  # readers never see half a record
    return path


def unregister(url: str | None = None) -> None:
    """Remove this process's record for ``url``, or all of this process's records."""
    if url is not None:
        _record_path(url).unlink(missing_ok=True)
        return
    for path in state_dir().glob(f"{os.getpid()}-*.json"):
        path.unlink(missing_ok=True)


def _alive(record: dict[str, Any]) -> bool:
    pid = int(record["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    recorded, now = record.get("process_start"), _process_start(pid)
    return recorded is None or now is None or recorded == now


def running() -> list[dict[str, Any]]:
    """Every running emulator's record, the most recently started first. Stale records (the
    process is gone) and unreadable ones are removed."""
    records = []
    for path in state_dir().glob("*.json"):
        try:
            record = json.loads(path.read_text())
            alive = (isinstance(record.get("url"), str)
                     and isinstance(record.get("functions"), list) and _alive(record))
        except FileNotFoundError:
            continue  # removed while we looked
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            alive = False
        if not alive:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        records.append(record)
    records.sort(key=lambda r: r.get("started", 0), reverse=True)
    return records


def find(name: str) -> dict[str, Any] | None:
    """The emulator that serves function ``name`` (the most recently started one, if several
    do), or None. With $MODELAMBDA_ENDPOINT set, that URL, whatever it serves
    (``functions`` is None: unknown)."""
    endpoint = os.environ.get("MODELAMBDA_ENDPOINT")
    if endpoint:
        return {"url": endpoint.rstrip("/"), "functions": None}
    return next((r for r in running() if name in r["functions"]), None)

