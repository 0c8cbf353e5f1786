"""A function's queue of Event invokes on disk: an accepted event outlives the emulator.

Lambda puts an asynchronous invocation in its own queue and answers 202; from then on the event
is run (retried on a function error) or sent to the on-failure destination, never dropped
("How Lambda handles errors and retries with asynchronous invocation", AWS Lambda Developer
Guide). Here the queue is an append-only journal, ``journal.jsonl`` in
``<service>/.modelambda/event-queue/<function>/``, one JSON record a line: an accepted event
(request id, payload, version, when it was received, attempts so far), a new attempt count, or
"done" (delivered, or written to the on-failure file).

- ``add`` appends the event and flushes the journal (``fdatasync``) before the caller answers
  202: one flush, a fraction of what a file per event costs (a create, a rename, two fsyncs). A
  crash mid-append leaves a last line without its newline: that event was never answered
  202, and the line is dropped.
- ``update`` records an attempt count after a failed attempt; ``remove`` appends "done" (not
  flushed: should it be lost in a crash, the event runs once more). When nothing is pending
  and the journal has grown past ``COMPACT_BYTES`` it is emptied.
- ``open`` (at the next start of the same function) returns what is still pending, oldest
  first, and writes a fresh journal holding just those. A line that is not a queue record
  (damaged by hand, a disk error) gets one line, and the whole journal as it was is kept in
  ``<function>-corrupt/`` beside the queue: the records that parsed are still run.

Delivery is at least once, as Lambda's is ("your function may receive the same event multiple
times"): an event whose attempt was running when the emulator stopped or died, or that was
delivered just before a crash and not yet marked done, runs again after the restart. An
attempt that ended in a function error is counted before the next one starts, so a replayed
event does not get more than ``event_retries`` retries in all, bar the one interrupted attempt.

One emulator at a time owns a queue (an ``flock`` on ``.lock`` in the directory, released by
the kernel even on SIGKILL); a second ``up`` of the same service gets ``QueueBusy`` and keeps
its events in memory only.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOURNAL = "journal.jsonl"
CORRUPT = "corrupt"
COMPACT_BYTES = 1 << 20


class QueueBusy(Exception):
    """Another running emulator holds this queue."""


@dataclass
class QueuedEvent:
    request_id: str
    payload: bytes
    version: str
    function_arn: str = ""
    received: float = 0.0  # wall-clock seconds: the event's age counts across restarts
    attempts: int = 0  # attempts that ended (a function error), not the one running

    def record(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "version": self.version,
                "function_arn": self.function_arn, "received": self.received,
                "attempts": self.attempts,
                "payload": base64.b64encode(self.payload).decode("ascii")}

    @classmethod
    def from_record(cls, record: Any) -> QueuedEvent:
        """ValueError naming what is wrong when ``record`` is not a queued event."""
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        types: dict[str, type | tuple[type, ...]] = {
            "request_id": str, "version": str, "function_arn": str, "received": (int, float),
            "attempts": int, "payload": str}
        for key, kind in types.items():
            if not isinstance(record.get(key), kind):
                raise ValueError(f"{key!r} missing or of the wrong type")
        try:
            payload = base64.b64decode(record["payload"], validate=True)
        except ValueError:
            raise ValueError("'payload' is not base64") from None
        return cls(record["request_id"], payload, record["version"], record["function_arn"],
                   float(record["received"]), record["attempts"])


def _apply(line: bytes, pending: dict[str, QueuedEvent]) -> None:
    """One journal record onto the pending events (ValueError: not a record)."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(record, dict) or len(record) not in (1, 2):
        raise ValueError("not a queue record")
    if "add" in record:
        event = QueuedEvent.from_record(record["add"])
        pending[event.request_id] = event
    elif "done" in record and isinstance(record["done"], str):
        pending.pop(record["done"], None)
    elif isinstance(record.get("attempts"), int) and isinstance(record.get("id"), str):
        if record["id"] in pending:
            pending[record["id"]].attempts = record["attempts"]
    else:
        raise ValueError("not a queue record")


def read_journal(path: Path) -> tuple[list[QueuedEvent], list[str]]:
    """The events pending in a journal, oldest first, and its lines that are not records
    ("line N: why"). Reads only: no lock taken, nothing rewritten."""
    pending: dict[str, QueuedEvent] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    # the last piece has no newline: an append cut short (never answered 202), or empty
    problems = []
    for number, line in enumerate(data.split(b"\n")[:-1], 1):
        if line.strip():
            try:
                _apply(line, pending)
            except ValueError as exc:
                problems.append(f"line {number}: {exc}")
    return sorted(pending.values(), key=lambda e: e.received), problems


class EventQueue:
    def __init__(self, directory: Path, sink: Callable[[str], None], label: str = "") -> None:
        self.directory = directory
        self.sink = sink
        self.label = label or directory.name
        self._lock: int | None = None
        self._fd: int | None = None
        self._size = 0
        self._pending: set[str] = set()
        self._mutex = threading.Lock()  # add runs on a worker thread, remove on the loop

    @property
    def journal(self) -> Path:
        return self.directory / JOURNAL

    def open(self) -> list[QueuedEvent]:
        """Take the queue (QueueBusy if another emulator has it) and return what is still
        pending in it, oldest first; the journal is written afresh with just those."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise QueueBusy(f"{self.directory} is in use by another running emulator") from None
        self._lock = lock
        events, problems = read_journal(self.journal)
        if problems:
            self._keep_aside(problems)
        self._rewrite(events)
        return events

    def _keep_aside(self, problems: list[str]) -> None:
        aside = self.directory.parent / f"{self.directory.name}-{CORRUPT}"
        aside.mkdir(exist_ok=True)
        target = aside / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{JOURNAL}"
        shutil.copyfile(self.journal, target)
        self.sink(f"[{self.label}] event queue: {len(problems)} line(s) of {self.journal} are "
                  f"not queue records ({problems[0]}); the journal as it was is kept in "
                  f"{target}; the events that parsed are run, those lines are not: look at "
                  "the copy, then delete it")

    def _rewrite(self, events: list[QueuedEvent]) -> None:
        """A fresh journal holding ``events``, put in place atomically, then appended to."""
        tmp = self.directory / f".{JOURNAL}.tmp"
        data = b"".join(json.dumps({"add": e.record()}).encode() + b"\n" for e in events)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.journal)
        directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)  # the rename itself is durable
        finally:
            os.close(directory)
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)
        self._pending = {e.request_id for e in events}

    def _append(self, record: dict[str, Any], sync: bool, required: bool = False) -> None:
        line = json.dumps(record).encode() + b"\n"
        with self._mutex:
            if self._fd is None:  # closed at stop: what was pending stays pending
                if required:
                    raise RuntimeError(f"the event queue {self.directory} is closed")
                return
            os.write(self._fd, line)
            self._size += len(line)
            if sync:
                os.fdatasync(self._fd)

    def add(self, event: QueuedEvent) -> None:
        """Write ``event`` durably (flushed to disk) before the caller answers 202."""
        if not event.received:
            event.received = time.time()
        self._append({"add": event.record()}, sync=True, required=True)
        self._pending.add(event.request_id)

    def update(self, event: QueuedEvent) -> None:
        """Record the event's attempt count (it stays queued)."""
        self._append({"attempts": event.attempts, "id": event.request_id}, sync=True)

    def remove(self, event: QueuedEvent) -> None:
        """The event was delivered or written to the on-failure file."""
        self._append({"done": event.request_id}, sync=False)
        self._pending.discard(event.request_id)
        with self._mutex:
            if not self._pending and self._size > COMPACT_BYTES and self._fd is not None:
                os.ftruncate(self._fd, 0)  # nothing pending: nothing to keep
                self._size = 0

    def close(self) -> None:
        with self._mutex:
            for fd in (self._fd, self._lock):
                if fd is not None:
                    os.close(fd)  # closing the lock's descriptor releases the flock
            self._fd = self._lock = None
