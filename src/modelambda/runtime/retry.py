"""One retry loop for the runtime's network calls (the S3 client, the inference endpoint).

Exponential backoff with full jitter, as AWS advises: before retry ``n`` (1, 2, ...) it sleeps
a random time in ``[0, min(cap, base * 2 ** (n - 1))]``, so that many environments retrying
at once spread out instead of hitting the service again in step. The caller decides which
errors are worth another attempt; anything else is raised at once. After the last attempt the
last error is raised as it is, so the caller can say "gave up" in its own words. ``sleep`` and
``rand`` are parameters so that tests never wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BASE_S = 0.1
CAP_S = 2.0


def delay(retry: int, base: float = BASE_S, cap: float = CAP_S,
          rand: Callable[[], float] = random.random) -> float:
    """How long to wait before retry number ``retry`` (1 for the second attempt)."""
    return rand() * min(cap, base * 2.0 ** (retry - 1))


def retry(call: Callable[[], T], *, attempts: int,
          retryable: Callable[[Exception], bool],
          base: float = BASE_S, cap: float = CAP_S,
          sleep: Callable[[float], object] = time.sleep,
          rand: Callable[[], float] = random.random) -> T:
    """Return ``call()``, calling it up to ``attempts`` times while it raises an error for
    which ``retryable(error)`` is true; raise the first other error at once, and the last
    error when the attempts run out."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(attempts):
        if attempt:
            sleep(delay(attempt, base, cap, rand))
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not retryable(exc):
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
