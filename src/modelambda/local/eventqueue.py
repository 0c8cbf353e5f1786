"""A function's queue of Event invokes on disk: an accepted event outlives the emulator.

Lambda puts an asynchronous invocation in its own queue and answers 202; from then on the event
is run (retried on a function error) or sent to the on-failure destination, never dropped
("How Lambda handles errors and retries with asynchronous invocation", AWS Lambda Developer
Guide). Here the queue is a directory, ``<service>/.modelambda/event-queue/<function>/``, one
file per event: its request id, payload, version, when it was received and how many attempts
it has had.

- ``add`` makes an event durable before the caller answers 202: the file is written under a
  temporary name, fsynced, renamed into place and the directory fsynced, so after a crash
  (SIGKILL of the emulator, power loss) an event is either whole in the queue or was never
  accepted.
- ``update`` records an attempt count after a failed attempt; ``remove`` deletes the file once
  the event was delivered or written to the on-failure file.
- ``open`` (at the next start of the same service) returns what is still queued, oldest first,
  for the function to run again. A file that is not a queued event (damaged by hand, a disk
  error) gets one line and is moved to ``<function>-corrupt/`` beside the queue, never
  deleted.

Delivery is at least once, as Lambda's is ("your function may receive the same event multiple
times"): an event whose attempt was running when the emulator stopped or died, or that was
delivered just before a crash and not yet removed, runs again after the restart. An attempt
that ended in a function error is counted before the next one starts, so a replayed event does
not get more than ``event_retries`` retries in all, bar the one interrupted attempt.

One emulator at a time owns a queue (an ``flock`` on ``.lock`` in the directory, released by
the kernel even on SIGKILL); a second ``up`` of the same service gets ``QueueBusy`` and keeps
its events in memory only.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".event.json"
CORRUPT = "corrupt"
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


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
    name: str = ""  # the file's name in the queue, once added

    def to_json(self) -> bytes:
        return json.dumps({
            "request_id": self.request_id, "version": self.version,
            "function_arn": self.function_arn, "received": self.received,
            "attempts": self.attempts,
            "payload": base64.b64encode(self.payload).decode("ascii")}).encode()

    @classmethod
    def from_json(cls, data: bytes, name: str) -> QueuedEvent:
        """ValueError naming what is wrong when ``data`` is not a queued event."""
        try:
            record = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from None
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
                   float(record["received"]), record["attempts"], name)


class EventQueue:
    def __init__(self, directory: Path, sink: Callable[[str], None], label: str = "") -> None:
        self.directory = directory
        self.sink = sink
        self.label = label or directory.name
        self._lock: int | None = None
        self._dir_fd: int | None = None

    def open(self) -> list[QueuedEvent]:
        """Take the queue (QueueBusy if another emulator has it) and return what is still in
        it, oldest first. Half-written files (an add cut short, never answered 202) go."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise QueueBusy(f"{self.directory} is in use by another running emulator") from None
        self._lock = lock
        self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        events = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
            elif path.name.endswith(SUFFIX):
                try:
                    events.append(QueuedEvent.from_json(path.read_bytes(), path.name))
                except (OSError, ValueError) as exc:
                    self._keep_aside(path, str(exc))
        return events

    def _keep_aside(self, path: Path, why: str) -> None:
        aside = self.directory.parent / f"{self.directory.name}-{CORRUPT}"
        aside.mkdir(exist_ok=True)
        target = aside / path.name
        path.replace(target)
        self.sink(f"[{self.label}] event queue: {path} is not a queued event ({why}); "
                  f"moved to {target}, not run: look at it, then delete it or fix it and move "
                  "it back")

    def add(self, event: QueuedEvent) -> None:
        """Write ``event`` durably (fsynced) before the caller answers 202."""
        if not event.received:
            event.received = time.time()
        event.name = (f"{int(event.received * 1e6):017d}-"
                      f"{_UNSAFE.sub('_', event.request_id)[:80]}{SUFFIX}")
        self._write(event)

    def update(self, event: QueuedEvent) -> None:
        """Record the event's attempt count (it stays queued)."""
        self._write(event)

    def _write(self, event: QueuedEvent) -> None:
        tmp = self.directory / f".tmp-{event.name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, event.to_json())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / event.name)
        if self._dir_fd is not None:
            os.fsync(self._dir_fd)  # the rename itself is durable

    def remove(self, event: QueuedEvent) -> None:
        """The event was delivered or written to the on-failure file. Not fsynced: should the
        removal be lost in a crash, the event runs once more (at least once)."""
        if event.name:
            (self.directory / event.name).unlink(missing_ok=True)

    def close(self) -> None:
        for fd in (self._dir_fd, self._lock):
            if fd is not None:
                os.close(fd)  # closing the lock's descriptor releases the flock
        self._dir_fd = self._lock = None
