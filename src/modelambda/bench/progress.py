"""A one-line progress display on a terminal; nothing at all when stderr is not one."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(1, total)
        self.done = 0
        self.started = time.monotonic()
        self._width = 0

    def step(self, label: str, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self.show(label)

    def show(self, label: str) -> None:
        if not self.enabled:
            return
        share = self.done / self.total
        bar = "#" * int(share * 24)
        elapsed = time.monotonic() - self.started
        line = f"\r[{bar:<24}] {share * 100:3.0f}% {elapsed:5.0f}s  {label}"
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write(line + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
