"""The Event queue is on disk: accepted events survive SIGKILL of ``modelambda up``.

A service whose model sleeps takes Event invokes one at a time (reserved concurrency 1); the
real ``up`` is killed with SIGKILL while most of them are still queued, and started again: it
says how many it replays, and every accepted event is then delivered (a REPORT without an
error) or in the on-failure file. None is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from modelambda.local.eventqueue import EventQueue, QueuedEvent, read_journal
from tests.cli.test_console_scripts import Running

SPEC = """\
[service]
name = "slowq"
runtime = "python3.12"
memory_mb = 256
timeout_s = 10
reserved_concurrency = 1

[service.events]
maximum_retry_attempts = 0

[model]
path = "w.txt"
framework = "python"
class = "slow:Model"

[strategy]
kind = "bundle"
"""

MODEL = """\
import time

class Model:
    def load(self, path):
        pass

    def predict(self, batch):
        if batch == ["fail"]:
            raise ValueError("this event always fails")
        time.sleep(0.4)
        return batch
"""

READY = re.compile(r"modelambda: ready on (http://\S+)")


def service(root: Path) -> Path:
    root.mkdir()
    (root / "modelambda.toml").write_text(SPEC)
    (root / "w.txt").write_text("")
    (root / "slow.py").write_text(MODEL)
    return root


def send_event(url: str, body: object) -> str:
    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/slowq/invocations", data=json.dumps(body).encode(),
        headers={"X-Amz-Invocation-Type": "Event"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return str(response.headers["x-amzn-RequestId"])


def delivered(lines: list[str]) -> set[str]:
    """Request ids with a REPORT line that is not a failure."""
    return {m.group(1) for line in lines
            if (m := re.search(r"REPORT RequestId: (\S+)", line)) and "Status:" not in line}


def on_failure(root: Path) -> set[str]:
    path = root / ".modelambda" / "on-failure.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["requestContext"]["requestId"]
            for line in path.read_text().splitlines()}


def start(root: Path, env: dict[str, str]) -> tuple[Running, str]:
    up = Running("up", root, "--port", "0", "--no-warmup", env=env)
    ready = up.wait_for("modelambda: ready on", 300)
    match = READY.search(ready)
    assert match is not None
    return up, match.group(1)


def wait_until(up: Running, predicate: Callable[[], bool], timeout: float) -> None:
    """Read ``up``'s lines until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        with contextlib.suppress(AssertionError):  # no REPORT in this half second
            up.wait_for("REPORT", 0.5)
    raise AssertionError("not done in time:\n" + "\n".join(up.seen))


def test_events_queued_when_up_is_killed_are_delivered_by_the_next_up(tmp_path: Path) -> None:
    root = service(tmp_path / "slowq")
    env = {**os.environ, "MODELAMBDA_STATE_DIR": str(tmp_path / "state")}
    queue = root / ".modelambda" / "event-queue" / "slowq"
    # GIVEN a running up with ten events accepted (202), one of them failing
    first, url = start(root, env)
    try:
        accepted = [send_event(url, {"instances": [i]}) for i in range(9)]
        accepted.append(send_event(url, {"instances": ["fail"]}))
        wait_until(first, lambda: bool(delivered(first.seen)), 60)
        # WHEN it is killed with SIGKILL while most are still queued
        first.process.send_signal(signal.SIGKILL)
        first.kill()
    finally:
        first.kill()
    before = delivered(first.seen) | on_failure(root)
    left = pending(queue)
    assert left >= len(accepted) - len(before) > 0
    # THEN the next up says how many it replays, and runs every one
    second, _ = start(root, env)
    try:
        assert any(f"replaying {left} queued Event invoke(s)" in line for line in second.seen)
        wait_until(second, lambda: set(accepted) <= (
            delivered(first.seen) | delivered(second.seen) | on_failure(root))
            and not pending(queue), 120)  # each marked done
    finally:
        assert second.interrupt() == 0, "\n".join(second.seen)
    failed = on_failure(root)
    assert failed == {accepted[-1]}  # the failing one, once, with its own condition


def pending(queue: Path) -> int:
    """Events still pending in a queue's journal, as the next ``up`` will read them."""
    return len(read_journal(queue / "journal.jsonl")[0])


def test_a_damaged_journal_is_kept_aside_with_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "fn"
    lines: list[str] = []
    queue = EventQueue(directory, lines.append, "fn")
    queue.open()
    done = QueuedEvent("id-0", b"{}", "$LATEST")
    queue.add(done)
    queue.add(QueuedEvent("id-1", b'{"a": 1}', "$LATEST", "arn:fn"))
    queue.remove(done)
    queue.close()
    journal = directory / "journal.jsonl"
    # GIVEN a journal with a damaged line in the middle and an append cut short at its end
    damaged = journal.read_bytes().replace(b'{"done"', b'{"do', 1) + b'{"add": {"request'
    journal.write_bytes(damaged)
    # WHEN the queue is opened again
    again = EventQueue(directory, lines.append, "fn")
    events = again.open()
    again.close()
    # THEN the events that parsed come back whole (id-0 too: its "done" was the damaged line,
    # so it runs again, at least once), the cut-short append is dropped (never answered 202),
    # and the journal as it was is kept aside with one line saying where
    assert [(e.request_id, e.payload) for e in events] == [("id-0", b"{}"),
                                                           ("id-1", b'{"a": 1}')]
    (kept,) = (tmp_path / "fn-corrupt").iterdir()
    assert kept.read_bytes() == damaged
    (line,) = lines
    assert str(journal) in line and "line 3: not JSON" in line and str(kept) in line
