"""The small typed messages between the front doors, functions and environments."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass, field

from modelambda.local.errortypes import TIMED_OUT, UNKNOWN


@dataclass
class Invocation:
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_context: str | None = None  # JSON text, as the Runtime API forwards it
    function_arn: str = ""
    version: str = "$LATEST"  # the version that runs it ($LATEST or a published one)
    received: float = field(default_factory=time.monotonic)
    received_wall: float = field(default_factory=time.time)  # for its trace id
    # set by the environment that runs it: resolves to (payload, error type or None)
    future: asyncio.Future[tuple[bytes, str | None]] | None = None


@dataclass
class InvocationResult:
    request_id: str
    payload: bytes
    function_error: bool = False  # X-Amz-Function-Error: Unhandled
    error_type: str | None = None  # the failure's errorType (Sandbox.Timedout: a timeout)
    duration_ms: float = 0.0
    init_ms: float | None = None  # cold starts only
    restore_ms: float | None = None  # SnapStart restores only
    memory_mb: int = 0
    max_memory_mb: int = 0
    logs: list[str] = field(default_factory=list)
    environment: str = ""
    version: str = "$LATEST"  # X-Amz-Executed-Version

    @property
    def billed_ms(self) -> int:
        # Billed per 1 ms, rounded up; since August 2025 the init phase is billed too.
        return math.ceil(self.duration_ms + (self.init_ms or 0.0) + (self.restore_ms or 0.0))

    def report_line(self) -> str:
        line = (f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
                f"Billed Duration: {self.billed_ms} ms\tMemory Size: {self.memory_mb} MB\t"
                f"Max Memory Used: {self.max_memory_mb} MB")
        if self.init_ms is not None:
            line += f"\tInit Duration: {self.init_ms:.2f} ms"
        if self.restore_ms is not None:
            line += f"\tRestore Duration: {self.restore_ms:.2f} ms"
        # a failed invocation's REPORT says how it failed, as Lambda's does
        if self.error_type == TIMED_OUT:
            line += "\tStatus: timeout"
        elif self.function_error:
            line += f"\tStatus: error\tError Type: {self.error_type or UNKNOWN}"
        return line

    def tail(self, limit: int = 4096) -> str:
        """The last 4 KB of this invocation's log, as X-Amz-Log-Result carries it."""
        text = "".join(line if line.endswith("\n") else line + "\n" for line in self.logs)
        data = text.encode("utf-8", "replace")[-limit:]
        return data.decode("utf-8", "ignore")
