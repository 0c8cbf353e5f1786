"""What the console remembers: the last invocations (a bounded ring buffer) and the
environments that ended (with their reason).

Recording is on every invocation's path, so it only appends references: the request and
response bytes and the log lines the emulator already made are kept as they are (no copy, no
JSON encoding); views encode them when someone looks. Bounded twice: at most ``limit``
invocations, and at most ``max_bytes`` of payloads and logs (a few 6 MB payloads would
otherwise pin hundreds of MB): the oldest go first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelambda.local.environment import Environment
    from modelambda.local.function import Function
    from modelambda.local.results import Invocation, InvocationResult

MAX_INVOCATIONS = 10_000
MAX_BYTES = 64 * 1024 * 1024
RETIRED_PER_FUNCTION = 20  # ended environments kept visible, per function


class Record:
    """One finished invocation, as the emulator handed it over."""

    __slots__ = ("cold", "finished", "function", "invocation", "result", "seq", "size")

    def __init__(self, seq: int, function: str, invocation: Invocation,
                 result: InvocationResult, cold: bool, size: int) -> None:
        self.seq = seq
        self.function = function
        self.invocation = invocation
        self.result = result
        self.cold = cold
        self.finished = time.time()
        self.size = size


@dataclass
class InvocationLog:
    """The ring buffer; ``on_append`` (set while a browser is connected) is called after
    each append, to wake the live updates."""

    limit: int = MAX_INVOCATIONS
    max_bytes: int = MAX_BYTES
    records: deque[Record] = field(default_factory=deque)
    seq: int = 0
    bytes: int = 0
    on_append: Callable[[], None] | None = None
    ended: dict[str, deque[Environment]] = field(default_factory=dict)  # by function

    # --- the emulator's hooks (Function.observer): O(1), no copies ---------------------------

    def invoked(self, function: Function, invocation: Invocation, result: InvocationResult,
                cold: bool) -> None:
        self.seq += 1
        size = len(invocation.payload) + len(result.payload) + sum(map(len, result.logs))
        self.records.append(Record(self.seq, function.settings.name, invocation, result,
                                   cold, size))
        self.bytes += size
        while len(self.records) > self.limit or (self.bytes > self.max_bytes
                                                 and len(self.records) > 1):
            self.bytes -= self.records.popleft().size
        if self.on_append is not None:
            self.on_append()

    def retired(self, function: Function, env: Environment) -> None:
        kept = self.ended.get(function.settings.name)
        if kept is None:
            kept = self.ended[function.settings.name] = deque(maxlen=RETIRED_PER_FUNCTION)
        kept.append(env)
        if self.on_append is not None:
            self.on_append()

    # --- reading -----------------------------------------------------------------------------

    def newest(self, function: str | None = None, after: int = 0) -> Iterator[Record]:
        """Records newest first (of one function; with a sequence number above ``after``)."""
        for record in reversed(self.records):
            if record.seq <= after:
                return
            if function is None or record.function == function:
                yield record

    def get(self, seq: int) -> Record | None:
        if not self.records:
            return None
        index = seq - self.records[0].seq  # sequence numbers are consecutive
        if 0 <= index < len(self.records):
            return self.records[index]
        return None
