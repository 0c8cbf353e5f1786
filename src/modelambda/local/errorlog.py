"""Errors the emulator survives are said, never swallowed: on stderr, with their traceback."""

from __future__ import annotations

import sys
import traceback


def log_exception(what: str, exc: BaseException) -> None:
    """Say on stderr that ``what`` failed, why, and where (the traceback)."""
    trace = "".join(traceback.format_exception(exc)).rstrip()
    print(f"modelambda: {what} failed: {type(exc).__name__}: {exc}\n{trace}", file=sys.stderr,
          flush=True)
