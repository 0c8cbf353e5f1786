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

With control groups, the template and each restored environment have a group of their own.
The template is frozen once its snapshot is taken (a snapshot does not run) and thawed only
while it forks. A forked child waits (on a pipe passed with its stdout/stderr) until the
emulator has moved it into its own group, then runs the after-restore hooks. The memory it
shares with the template (copy-on-write, and the page cache) stays charged to the template's
group, so a restored environment counts the template's usage at the snapshot as its own: its
Max Memory Used is that plus its group's peak, and its group's limit is the memory size less
that.

Known difference from Lambda: external extensions (/opt/extensions) are not started for
SnapStart functions (on Lambda they are in the snapshot too).

Each restored environment gets its own ``/tmp``, a copy of the snapshot's (Lambda's snapshot
holds the disk as well as the memory): in the sandbox, the child enters a user and mount
namespace of its own and mounts a fresh tmpfs of the ephemeral size over ``/tmp``, filled
with what the template's held; without bwrap, it gets a directory of its own as ``TMPDIR``.
Where the kernel refuses a namespace, the child says so in its log and keeps the shared one.
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

from modelambda.local import cgroups, errortypes
from modelambda.local.environment import MB, Environment, InitFailed
from modelambda.local.processes import PolledProcess, SpawnedProcess
from modelambda.local.sandbox import build_command, sandbox_mode
from modelambda.local.settings import PUBLISHED, FunctionSettings

SOCKET_DIR_IN_ENV = "/var/snapshot"
# a restored environment's group never gets less than this, whatever the snapshot holds
MIN_RESTORED_LIMIT_MB = 16


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
    """The pre-initialised environment that restored environments are forked from: the
    snapshot of a published version (Lambda has no SnapStart for $LATEST)."""

    def __init__(self, settings: FunctionSettings, sink: Callable[[str], None],
                 tmp_root: str, cgroup_mode: str | None = None,
                 version: str = PUBLISHED) -> None:
        super().__init__(settings, 0, sink, tmp_root, cgroup_mode, version)
        self.id = f"{settings.name}-snapshot"
        if self.expected_extensions:
            sink(f"[{self.id}] external extensions are not started with SnapStart here "
                 "(a restored environment is a fork of the runtime alone)")
            self.expected_extensions = 0
        self.socket_dir = tempfile.mkdtemp(prefix="snap-", dir=tmp_root or None)
        self.socket_path = os.path.join(self.socket_dir, "control.sock")
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()
        self.snapshot_ms: float | None = None
        self.snapshot_bytes = 0  # its group's memory once the snapshot is taken

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
        return await self._spawn(argv, env, cwd, stdout, stderr)

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
        if self.cgroup is not None:
            self._update_peak()
            self.snapshot_bytes = self.cgroup.usage()
        self._freeze_snapshot()
        self._log(f"SNAPSHOT created in {self.snapshot_ms:.2f} ms (init and before-snapshot "
                  "hooks)")

    def _freeze_snapshot(self) -> None:
        """A snapshot does not run: frozen, but for the forks."""
        if self.cgroup is not None and not self.cgroup.removed and not self.cgroup.frozen \
                and self.state == "snapshot":
            self.cgroup.freeze()

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

    def tmp_for(self, env_id: str) -> dict[str, Any]:
        """How a restored environment gets its own /tmp (see snapstart_boot.own_tmp)."""
        if sandbox_mode(self.settings.use_bwrap) == "bwrap":
            return {"tmpfs_bytes": self.settings.ephemeral_mb * MB}
        return {"dir": os.path.join(self.tmp_root, env_id),
                "from": os.path.join(self.tmp_root, self.id)}

    async def fork(self, runtime_api: str, stdout: int, stderr: int,
                   attach: Callable[[int], None] | None = None,
                   tmp: dict[str, Any] | None = None) -> int:
        """Restore one environment: returns its host PID. With ``attach``, the child waits
        until ``attach(pid)`` has put it in its control group; ``tmp`` says how it gets its
        own /tmp (``tmp_for``)."""
        assert self._control is not None and self.proc is not None
        async with self._lock:
            fds = [stdout, stderr]
            gate_r, gate_w = os.pipe() if attach is not None else (-1, -1)
            if attach is not None:
                fds.append(gate_r)
            try:
                self._wake()  # thawed while it forks
                message = json.dumps({"runtime_api": runtime_api, "tmp": tmp}).encode()
                socket.send_fds(self._control, [message], fds)  # small: never blocks
                if attach is not None:
                    os.close(gate_r)
                    gate_r = -1
                reply = json.loads(await self._read_line())
                pid = host_pid(int(reply["pid"]), self.proc.pid)
                if pid is None:
                    raise InitFailed({"errorType": errortypes.RESTORE_ERROR,
                                      "errorMessage": "the restored environment vanished at "
                                                      "start"})
                if attach is not None:
                    attach(pid)  # out of the template's group before the template freezes
                    os.write(gate_w, b"\n")
            finally:
                for fd in (gate_r, gate_w):
                    if fd >= 0:
                        os.close(fd)  # the child, left waiting, exits at EOF
                self._freeze_snapshot()
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
        super().__init__(template.settings, index, sink, tmp_root, template.cgroup_mode,
                         template.version)
        self.template = template
        self.restored = True
        self.expected_extensions = 0  # the template started none
        self.baseline_bytes = template.snapshot_bytes

    def _make_cgroup(self) -> cgroups.Group:
        memory_mb = self.settings.memory_mb
        limit = max(memory_mb * MB - self.baseline_bytes, MIN_RESTORED_LIMIT_MB * MB)
        return cgroups.hierarchy().create(
            self.id, limit, cgroups.cpu_quota_us(memory_mb, cgroups.machine_cores()))

    async def _launch(self, stdout: int, stderr: int, initialization: str
                      ) -> SpawnedProcess | PolledProcess:
        attach = self.cgroup.attach if self.cgroup is not None else None
        pid = await self.template.fork(f"127.0.0.1:{self.api.port}", stdout, stderr, attach,
                                       self.template.tmp_for(self.id))
        return PolledProcess(pid)
