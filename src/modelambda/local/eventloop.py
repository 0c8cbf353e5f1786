"""The emulator's event loop: uvloop when it is installed, else asyncio's own.

Both of the emulator's HTTP surfaces (the front door and each environment's Runtime API) and
every environment's pipes and processes run on one loop, so the loop's own cost is paid
several times per invocation. uvloop (libuv under asyncio's API, the loop uvicorn uses)
took 5-10 % off the emulator's CPU per invocation (benchmarks/README.md, "levers tried").
It is an optional dependency (``pip install 'modelambda[fast]'``): without it, or with
``MODELAMBDA_LOOP=asyncio``, the same code runs on asyncio's loop, and the tests run both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

ASYNCIO, UVLOOP = "asyncio", "uvloop"
ENV_VAR = "MODELAMBDA_LOOP"


def loop_kind(requested: str | None = None) -> str:
    """The loop to use: ``requested`` (or ``$MODELAMBDA_LOOP``), else uvloop when it
    imports, else asyncio. ValueError for an unknown name or an uvloop that is missing."""
    kind = requested or os.environ.get(ENV_VAR, "") or None
    if kind not in (None, ASYNCIO, UVLOOP):
        raise ValueError(f"{ENV_VAR}={kind!r}: use {ASYNCIO!r} or {UVLOOP!r}")
    if kind == ASYNCIO:
        return ASYNCIO
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if kind == UVLOOP:
            raise ValueError(f"{ENV_VAR}=uvloop but uvloop is not installed: "
                             "pip install 'modelambda[fast]'") from None
        return ASYNCIO
    return UVLOOP


def loop_factory(requested: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable making a new loop of the chosen kind (for ``asyncio.run(loop_factory=)``)."""
    if loop_kind(requested) == UVLOOP:
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def new_event_loop(requested: str | None = None) -> asyncio.AbstractEventLoop:
    return loop_factory(requested)()


def running_kind(loop: asyncio.AbstractEventLoop) -> str:
    """Which kind ``loop`` is (for /health and the benchmarks)."""
    return UVLOOP if type(loop).__module__.startswith("uvloop") else ASYNCIO
