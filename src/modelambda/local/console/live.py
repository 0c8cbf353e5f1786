"""Live updates for connected browsers: server-sent events, pushed, coalesced.

Nothing runs while no browser is connected: the invocation log's ``on_append`` is unset, so
an invocation costs the console one append. With clients, an append only sets an event; one
pusher task wakes at most ``MIN_INTERVAL_S`` apart (a burst of 1,000 invocations is one
message), or every ``HEARTBEAT_S`` (memory, ages and states change without invocations),
builds one message and writes it to every client. A client that stops reading (its socket
buffer past ``MAX_BUFFERED``) is dropped; its EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from modelambda.local.console.store import InvocationLog
from modelambda.local.errorlog import log_exception

MIN_INTERVAL_S = 0.5
HEARTBEAT_S = 1.0
MAX_BUFFERED = 4 * 1024 * 1024
RETRY_MS = 2000  # EventSource's reconnection delay


def event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Live:
    """``snapshot(after)`` makes one update: the state, and the invocations after ``after``
    (returns it and the last sequence number it covers)."""

    def __init__(self, log: InvocationLog,
                 snapshot: Callable[[int], tuple[dict[str, Any], int]]) -> None:
        self.log = log
        self.snapshot = snapshot
        self.clients: dict[asyncio.StreamWriter, asyncio.Future[None]] = {}
        self._dirty = asyncio.Event()
        self._pusher: asyncio.Task[None] | None = None
        self._closed = False

    def _wake(self) -> None:
        self._dirty.set()

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        """Serve one EventSource connection until it goes away or the console closes."""
        if self._closed:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.clients[writer] = done  # registered first: nothing is missed after the state
        self.log.on_append = self._wake
        state, last = self.snapshot(0)
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self._push(last))
        writer.write(f"retry: {RETRY_MS}\n\n".encode() + event("update", state))
        try:
            await writer.drain()
            await done
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.clients.pop(writer, None)
            if not self.clients:
                self.log.on_append = None  # no browser: back to a bare append

    async def _push(self, last: int) -> None:
        loop = asyncio.get_running_loop()
        while self.clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), HEARTBEAT_S)
            self._dirty.clear()
            if not self.clients:
                break
            started = loop.time()
            try:
                state, last = self.snapshot(last)
            except Exception as exc:  # a bug of ours must not end every browser's updates
                log_exception("the console's live update", exc)
                await asyncio.sleep(HEARTBEAT_S)
                continue
            message = event("update", state)
            for writer, done in list(self.clients.items()):
                transport = writer.transport
                if writer.is_closing() or transport.get_write_buffer_size() > MAX_BUFFERED:
                    if not done.done():
                        done.set_result(None)
                    continue
                writer.write(message)
            await asyncio.sleep(max(0.0, MIN_INTERVAL_S - (loop.time() - started)))

    def close(self) -> None:
        """End every stream (the emulator is stopping)."""
        self._closed = True
        for done in self.clients.values():
            if not done.done():
                done.set_result(None)
        if self._pusher is not None:
            self._pusher.cancel()
