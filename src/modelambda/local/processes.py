"""Process handles the environments use: one they spawned, or one a SnapStart template forked.

Both offer ``pid`` (on the host), ``returncode``, ``wait()`` and ``kill()``, so an environment
does not care how its process came to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


class SpawnedProcess:
    """A process group started by the emulator (bwrap or the runtime itself)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        return await self._process.wait()

    def kill(self) -> None:
        if self._process.returncode is None:
            # start_new_session made the process a group leader: kill the whole group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


class PolledProcess:
    """A process that is not our child (forked by a SnapStart template): exit is polled."""

    POLL_S = 0.02

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def _gone(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        return state in (b"Z", b"X")

    async def wait(self) -> int:
        while self.returncode is None:
            if self._gone():
                # The template reaps it; the exit status is not ours to read.
                self.returncode = -signal.SIGKILL if getattr(self, "_killed", False) else 1
                break
            await asyncio.sleep(self.POLL_S)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None or self._gone():
            return  # reaped already: the pid may belong to another process by now
        self._killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)
