"""SnapStart, locally: environments forked from a pre-initialised template process.

Lambda's SnapStart initialises a function once, runs its before-snapshot hooks, snapshots the
memory, and starts new environments by restoring that snapshot, then runs the after-restore
hooks. Here the snapshot is a live process: the *template* is an environment that runs init
and the before-snapshot hooks (awslambdaric does both when AWS_LAMBDA_INITIALIZATION_TYPE is
``snap-start``) and, where awslambdaric asks the Runtime API for ``/restore/next``, becomes a
fork server instead (``snapstart_boot.py``, run from the runtime directory). Each restore is a
``fork()`` of it: the child gets its own Runtime API address and its own stdout/stderr (passed
over a Unix socket), returns from ``restore_next``, and awslambdaric runs the after-restore
hooks and starts polling for invocations.

Known difference from Lambda: the restored environments share the template's sandbox, so
their ``/tmp`` is one tmpfs (on Lambda each restore gets its own copy of the snapshot's).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

from modelambda.local import errortypes
from modelambda.local.environment import Environment, InitFailed
from modelambda.local.processes import PolledProcess, SpawnedProcess
from modelambda.local.sandbox import build_command, sandbox_mode
from modelambda.local.settings import FunctionSettings

SOCKET_DIR_IN_ENV = "/var/snapshot"


def host_pid(namespace_pid: int, root_pid: int) -> int | None:
    """The host PID of the process that is ``namespace_pid`` inside root_pid's PID namespace."""
    from modelambda.local.procfs import descendants

    for pid in descendants(root_pid):
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("NSpid:"):
                        ids = [int(x) for x in line.split()[1:]]
                        if ids[-1] == namespace_pid:
                            return pid
        except (FileNotFoundError, ProcessLookupError):
            continue
    return None


class Template(Environment):
    """The pre-initialised environment that restored environments are forked from."""

    def __init__(self, settings: FunctionSettings, sink: Callable[[str], None],
                 tmp_root: str) -> None:
        super().__init__(settings, 0, sink, tmp_root)
        self.id = f"{settings.name}-snapshot"
        self.socket_dir = tempfile.mkdtemp(prefix="snap-", dir=tmp_root or None)
        self.socket_path = os.path.join(self.socket_dir, "control.sock")
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()
        self.snapshot_ms: float | None = None

    async def _launch(self, stdout: int, stderr: int, initialization: str
                      ) -> SpawnedProcess | PolledProcess:
        bwrap = sandbox_mode(self.settings.use_bwrap) == "bwrap"
        env_socket = (f"{SOCKET_DIR_IN_ENV}/control.sock" if bwrap else self.socket_path)
        spec = self.sandbox_spec("snap-start", {"MODELAMBDA_SNAPSHOT_SOCKET": env_socket})
        spec.entry = "snapstart_boot.py"
        argv, env, cwd = build_command(spec, self.settings.python_version, self.settings.use_bwrap)
        if argv[0].endswith("bwrap"):
            at = argv.index("--proc")
            argv[at:at] = ["--bind", self.socket_dir, SOCKET_DIR_IN_ENV]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
            cwd=cwd, start_new_session=True)
        return SpawnedProcess(process)

    async def snapshot(self, timeout: float) -> None:
        """Run init and the before-snapshot hooks; wait until the template can fork."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        server.listen(1)
        server.setblocking(False)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        await self.start("snap-start")
        assert self._ready is not None
        accept = asyncio.ensure_future(loop.sock_accept(server))
        waiters: set[asyncio.Future[Any]] = {accept, self._ready}
        done, _ = await asyncio.wait(waiters, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if accept not in done:
            accept.cancel()
            server.close()
            if self._ready in done and self._ready.exception() is not None:
                raise self._ready.exception()  # type: ignore[misc]
            raise TimeoutError("the snapshot was not ready in time")
        self._control, _ = accept.result()
        server.close()
        self._control.setblocking(False)
        await self._read_line()  # {"snapshot": "ready"}
        self.snapshot_ms = (time.monotonic() - started) * 1000
        self.state = "snapshot"
        self._log(f"SNAPSHOT created in {self.snapshot_ms:.2f} ms (init and before-snapshot "
                  "hooks)")

    def polices_memory(self) -> bool:
        """During init only: once it is a snapshot, its forked children are environments
        measured on their own, and counting them here too would kill them all through the
        template."""
        return self.state != "snapshot"

    async def _read_line(self) -> bytes:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        data = b""
        while not data.endswith(b"\n"):
            chunk = await loop.sock_recv(self._control, 4096)
            if not chunk:
                raise InitFailed({"errorType": errortypes.SNAPSHOT_LOST,
                                  "errorMessage": "the SnapStart template exited"})
            data += chunk
        return data

    async def fork(self, runtime_api: str, stdout: int, stderr: int) -> int:
        """Restore one environment: returns its host PID."""
        assert self._control is not None and self.proc is not None
        async with self._lock:
            message = json.dumps({"runtime_api": runtime_api}).encode()
            socket.send_fds(self._control, [message], [stdout, stderr])  # small: never blocks
            reply = json.loads(await self._read_line())
        pid = host_pid(int(reply["pid"]), self.proc.pid)
        if pid is None:
            raise InitFailed({"errorType": errortypes.RESTORE_ERROR,
                              "errorMessage": "the restored environment vanished at start"})
        return pid

    async def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        await super().close()


class RestoredEnvironment(Environment):
    """An environment forked from a Template; its REPORT shows Restore Duration."""

    def __init__(self, template: Template, index: int, sink: Callable[[str], None],
                 tmp_root: str) -> None:
        super().__init__(template.settings, index, sink, tmp_root)
        self.template = template
        self.restored = True

    async def _launch(self, stdout: int, stderr: int, initialization: str
                      ) -> SpawnedProcess | PolledProcess:
        pid = await self.template.fork(f"127.0.0.1:{self.api.port}", stdout, stderr)
        return PolledProcess(pid)
