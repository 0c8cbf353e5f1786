"""One execution environment: a sandboxed runtime process and the Runtime API it polls.

Lifecycle, as on Lambda: ``start`` spawns the process, which runs its init phase (imports the
handler) and then polls ``/next``: that first poll ends init. ``invoke`` hands one event to
the waiting poll and waits for ``/response`` or ``/error``, at most the function's timeout;
past it, or past the memory size, the environment is killed and the invocation fails the way
Lambda fails it. One invocation at a time; a dead environment is never reused.

With control groups (``cgroups.py``) each environment has its own: a CPU quota by memory
size, a hard memory limit (going over it is ``Runtime.OutOfMemory`` the moment the kernel
kills, read from the group's OOM counter when the process exits), Max Memory Used from the
group's peak. The process is attached before it runs anything (``sandbox.held_command``).
Between invocations the environment is frozen, as on Lambda, so its background threads make
no progress: once the runtime is back in ``/next`` and nothing came for ``FREEZE_AFTER_S``
(a freeze or a thaw write costs ~0.1-0.2 ms here, so back-to-back invocations skip both),
and thawed before the next event is handed over. Killing thaws first (a frozen v1 task cannot
die). Without control groups the memory is polled (RSS) and nothing is frozen.

External extensions (executables in ``/opt/extensions``, started with the runtime) use the
Extensions API on the same address: they register during init (init ends when the runtime
and every extension wait for their next event), get INVOKE events with the runtime's, and the
invocation ends when all of them are back in ``/event/next`` (their time is in its Duration,
as Lambda bills it); an environment stopped while idle sends SHUTDOWN and gives them 2 s.

Its Runtime API serves only its own processes (``_own_process``: another local process gets
403), as Lambda's is reachable only from inside its environment. A REPORT line of a failed
invocation says how it failed (``Status: error``/``timeout``, ``Error Type``), as Lambda's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

from modelambda import limits
from modelambda.local import cgroups, errortypes, procfs
from modelambda.local.httpserver import HttpRequest, HttpResponse, HttpServer
from modelambda.local.processes import PolledProcess, SpawnedProcess
from modelambda.local.results import Invocation, InvocationResult
from modelambda.local.sandbox import SandboxSpec, build_command, extension_files, held_command
from modelambda.local.settings import LATEST, FunctionSettings

MB = 1024 * 1024
API = "/2018-06-01/runtime"
EXTENSION_API = "/2020-01-01/extension"
_INVOCATION_PATH = re.compile(rf"^{API}/invocation/([^/]+)/(response|error)$")
EXTENSION_EVENTS = ("INVOKE", "SHUTDOWN")
# Lambda gives external extensions 2 s to finish after SHUTDOWN (docs: runtimes-extensions-api)
SHUTDOWN_S = 2.0
# Memory is sampled this often while an invocation runs (and 5x less often when idle).
MEMORY_POLL_S = 0.02
TREE_RESCAN_S = 1.0  # new processes in an environment are found within a second
# An idle environment (the runtime waiting in /next) is frozen after this long without an
# invocation; None: never frozen (benchmarks/freeze.py compares both).
FREEZE_AFTER_S: float | None = 0.01

STARTING, IDLE, BUSY, DEAD = "starting", "idle", "busy", "dead"


class InitFailed(Exception):
    """The init phase failed: the runtime reported an error, or exited, or ran out of time."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "init failed"))
        self.payload = payload

    @property
    def error_type(self) -> str:
        return str(self.payload.get("errorType", errortypes.UNKNOWN))


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


class Extension:
    """An external extension registered with this environment's Extensions API."""

    def __init__(self, name: str, events: list[str], pid: int | None) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.events = set(events)
        self.pid = pid  # its process (found from its connection), for the shutdown
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.waiting = False  # in /event/next
        self.busy: asyncio.Future[None] | None = None  # an INVOKE it has not finished


def _trace_id(invocation: Invocation) -> str:
    return (f"Root=1-{int(invocation.received_wall):08x}-"
            f"{invocation.request_id.replace('-', '')[:24]};Sampled=0")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _executable(program: str, env: dict[str, str]) -> bool:
    if os.sep in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    return shutil.which(program, path=os.pathsep.join(os.get_exec_path(env))) is not None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


class Environment:
    def __init__(self, settings: FunctionSettings, index: int, sink: Callable[[str], None],
                 tmp_root: str, cgroup_mode: str | None = None, version: str = LATEST) -> None:
        self.settings = settings
        self.version = version  # of the function: $LATEST or a published one
        # "v1", "v2" or "off" (None: as the function's setting and the machine allow)
        self.cgroup_mode = cgroup_mode or cgroups.mode_for(settings.cgroups)
        self.cgroup: cgroups.Group | None = None
        # memory this environment shares with a SnapStart template (counted as its own)
        self.baseline_bytes = 0
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._parked = False  # the runtime is waiting in /next
        self.id = f"{settings.name}-{index}"
        self.sink = sink
        self.tmp_root = tmp_root
        self.state = STARTING
        self.reserved = False  # claimed by an invocation (cold start or warm reuse)
        self.invocations = 0
        self.rss = 0
        self.peak_rss = 0
        self.created = time.monotonic()
        self.last_used = self.created
        self.init_ms: float | None = None
        self.exit_code: int | None = None
        # why it ended, once it has (timed out, out of memory, exited, reaped, ...): the
        # console keeps a retired environment visible with it
        self.end_reason: str | None = None
        self.proc: SpawnedProcess | PolledProcess | None = None
        self.restored = False  # started from a SnapStart snapshot instead of a fresh init
        self._queue: asyncio.Queue[Invocation | None] = asyncio.Queue()
        self._current: Invocation | None = None
        self._delivered_at = 0.0
        self._cold_pending = True  # the next invocation reports Init Duration
        # Lambda's "suppressed init": an init retried inside the first invocation (after the
        # first attempt ran past the init limit) is that invocation's time, not Init Duration
        self.init_in_invoke = False
        self._retire_after = False  # the runtime will exit (e.g. after a 413): not reused
        self._budget_s = settings.timeout_s  # the running invocation's time limit
        self._oom = False
        self._init_error: dict[str, Any] | None = None
        self._init_logs: list[str] = []
        self._current_logs: list[str] = []
        self._partial: dict[int, bytes] = {}
        self._fds: list[int] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._ready: asyncio.Future[None] | None = None
        # external extensions (/opt/extensions): started with the runtime; init ends when
        # the runtime and every one of them wait for their next event
        self.expected_extensions = len(extension_files(settings.opt_dir))
        self.extensions: dict[str, Extension] = {}
        self._runtime_waiting = False
        self._peer_pids: dict[tuple[str, int], int] = {}
        # no read timeout: the runtime's connection sits idle while its environment is frozen
        self.api = HttpServer(self._runtime_api, max_body=64 * MB, admit=self._own_process,
                              refused=HttpResponse(403, _json_bytes(_error(
                                  "AccessDenied", "this Runtime API serves only its own "
                                                  "execution environment"))),
                              read_timeout_s=None)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, initialization: str = "on-demand") -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        # an init failure nobody waits for any more (e.g. at shutdown) is not an error to log
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._started_at = time.monotonic()
        await self.api.start()
        if self.cgroup_mode != cgroups.OFF:
            try:
                self.cgroup = self._make_cgroup()
            except BaseException:
                self.state = DEAD
                await self.api.stop()
                raise
            shared = (f" (+{self.baseline_bytes // MB} MB shared with the snapshot)"
                      if self.baseline_bytes else "")
            self.sink(f"[{self.id}] {self.cgroup.describe(self._quota_us)}{shared}")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = await self._launch(out_w, err_w, initialization)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            self.state = DEAD
            await self._release_cgroup()
            await self.api.stop()
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        for fd in (out_r, err_r):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
            loop.add_reader(fd, self._read_output, fd)
            self._fds.append(fd)
        self._tasks = [asyncio.create_task(self._watch_exit())]
        if self.cgroup is None or not self.cgroup.has_peak:
            self._tasks.append(asyncio.create_task(self._watch_memory()))

    @property
    def _quota_us(self) -> int:
        """Lambda's CPU share for the memory size, as a CFS quota."""
        return cgroups.cpu_quota_us(self.settings.memory_mb, cgroups.machine_cores())

    def _make_cgroup(self) -> cgroups.Group:
        """This environment's group: the memory, and the init phase's burst CPU (the memory
        size's share from the end of init)."""
        memory_mb = self.settings.memory_mb
        return cgroups.hierarchy().create(
            self.id, memory_mb * MB, cgroups.init_quota_us(memory_mb, cgroups.machine_cores()))

    def _end_init_burst(self) -> None:
        if self.cgroup is not None and not self.cgroup.removed \
                and self.cgroup.quota_us != self._quota_us:
            try:
                self.cgroup.set_cpu(self._quota_us)
            except OSError as exc:
                self.sink(f"[{self.id}] cannot set the CPU quota of {self.cgroup.name}: {exc}")

    async def _release_cgroup(self) -> None:
        """Kill whatever is left in the group and remove it (kept for the sweep, and said,
        if its processes will not go)."""
        group = self.cgroup
        if group is None or group.removed:
            return
        self._update_peak()
        deadline = time.monotonic() + 5.0
        while True:
            group.kill_all()
            try:
                if group.remove():
                    return
            except OSError as exc:
                self.sink(f"[{self.id}] cannot remove control group {group.name}: {exc}")
                return
            if time.monotonic() > deadline:
                self.sink(f"[{self.id}] control group {group.name} still has processes "
                          f"{group.pids()}: left for the next emulator's sweep")
                return
            await asyncio.sleep(0.01)

    async def _spawn(self, argv: list[str], env: dict[str, str], cwd: str, stdout: int,
                     stderr: int) -> SpawnedProcess:
        """Start ``argv`` in a new session; with a control group, attached to it before it
        runs anything (it waits at the gate of ``held_command`` until then)."""
        if self.cgroup is None:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                env=env, cwd=cwd, start_new_session=True)
            return SpawnedProcess(process)
        if not _executable(argv[0], env):  # fail here, as a direct spawn would, not in sh
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        gate_r, gate_w = os.pipe()
        try:
            try:
                process = await asyncio.create_subprocess_exec(
                    *held_command(argv), stdin=gate_r, stdout=stdout, stderr=stderr, env=env,
                    cwd=cwd, start_new_session=True)
            finally:
                os.close(gate_r)
            try:
                self.cgroup.attach(process.pid)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise
            os.write(gate_w, b"\n")
        finally:
            os.close(gate_w)
        return SpawnedProcess(process)

    def sandbox_spec(self, initialization: str, extra_env: dict[str, str] | None = None
                     ) -> SandboxSpec:
        s = self.settings
        spec = SandboxSpec(
            python=s.python, handler=s.handler, task_dir=os.path.abspath(s.task_dir),
            runtime_dir=os.path.abspath(s.runtime_dir),
            tmp_dir=os.path.join(self.tmp_root, self.id),
            opt_dir=os.path.abspath(s.opt_dir) if s.opt_dir else None,
            ephemeral_mb=s.ephemeral_mb,
            mounts={path: os.path.abspath(host) for path, host in s.mounts.items()},
            runtime_client=s.runtime_client, extensions=self.expected_extensions > 0,
            env={**s.lambda_environment(f"127.0.0.1:{self.api.port}", initialization,
                                        self.version),
                 **(extra_env or {})},
        )
        return spec

    async def _launch(self, stdout: int, stderr: int, initialization: str
                      ) -> SpawnedProcess | PolledProcess:
        """Start this environment's process with ``stdout``/``stderr`` as its output."""
        spec = self.sandbox_spec(initialization)
        argv, env, cwd = build_command(spec, self.settings.python_version,
                                       self.settings.use_bwrap)
        return await self._spawn(argv, env, cwd, stdout, stderr)

    async def wait_ready(self, timeout: float) -> None:
        """Wait for the end of init; InitFailed on an init error, TimeoutError past ``timeout``."""
        assert self._ready is not None
        await asyncio.wait_for(asyncio.shield(self._ready), timeout)

    def ended(self, reason: str) -> None:
        """Say why this environment ends (the first reason given stays)."""
        if self.end_reason is None:
            self.end_reason = reason

    def kill(self) -> None:
        self._cancel_freeze()
        for extension in self.extensions.values():
            if extension.busy is not None and not extension.busy.done():
                extension.busy.set_result(None)  # nobody waits for a dead environment's
            extension.queue.put_nowait(None)
        if self.proc is not None:
            self.proc.kill()
        if self.cgroup is not None:
            self.cgroup.kill_all()  # thawed first; and what left the session dies too
        if self.state != DEAD:
            self.state = DEAD
            self._queue.put_nowait(None)  # wake a waiting /next so its handler ends

    async def close(self) -> None:
        """Kill the process and release everything; safe to call twice. An idle
        environment's extensions get their SHUTDOWN event first, as on Lambda."""
        if self.state == IDLE and any("SHUTDOWN" in e.events for e in self.extensions.values()):
            await self._shutdown_extensions()
        self.ended("stopped")
        self.kill()
        if self.proc is not None:
            try:
                with contextlib.suppress(ProcessLookupError):
                    await self.proc.wait()
            except asyncio.CancelledError:
                if self.cgroup is not None:  # no group left behind if it can be helped
                    self.cgroup.kill_all()
                    with contextlib.suppress(OSError):
                        self.cgroup.remove()
                raise
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            self._drain(fd)
            loop.remove_reader(fd)
            os.close(fd)
        self._fds = []
        for task in self._tasks:
            task.cancel()
        await self._release_cgroup()
        await self.api.stop()

    # --- freezing ---------------------------------------------------------------------------

    def _arm_freeze(self) -> None:
        """Freeze once idle for FREEZE_AFTER_S with the runtime waiting in /next."""
        delay = FREEZE_AFTER_S
        if (self.cgroup is None or delay is None or self.state != IDLE or not self._parked
                or self.cgroup.frozen or self._freeze_timer is not None):
            return
        self._freeze_timer = asyncio.get_running_loop().call_later(delay, self._freeze)

    def _freeze(self) -> None:
        self._freeze_timer = None
        group = self.cgroup
        if group is None or group.removed or group.frozen or self.state != IDLE \
                or not self._parked:
            return
        try:
            group.freeze()
        except OSError as exc:
            self.sink(f"[{self.id}] cannot freeze control group {group.name}: {exc}")

    def _cancel_freeze(self) -> None:
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None

    def _wake(self) -> None:
        """Thaw before handing over an event (nothing to do when not frozen)."""
        self._cancel_freeze()
        if self.cgroup is not None and self.cgroup.frozen:
            self.cgroup.thaw()

    @property
    def frozen(self) -> bool:
        return self.cgroup is not None and self.cgroup.frozen

    # --- invoking ---------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        assert self.state == IDLE, f"environment {self.id} is {self.state}"
        loop = asyncio.get_running_loop()
        self.state = BUSY
        self.invocations += 1
        invocation.future = loop.create_future()
        self._current, self._current_logs = invocation, []
        self._log(f"START RequestId: {invocation.request_id} Version: {self.version}")
        self._wake()
        queued_at = time.monotonic()
        self._delivered_at = queued_at
        suppressed_ms = self.init_ms if self._cold_pending and self.init_in_invoke else None
        self._budget_s = self.settings.timeout_s - (suppressed_ms or 0.0) / 1000
        self._queue.put_nowait(invocation)
        extensions = self._dispatch_invoke(invocation) if self.extensions else []
        try:
            async with asyncio.timeout(max(self._budget_s, 0.001)):  # cheaper than wait_for
                payload, error_type = await invocation.future
                if extensions and self.state != DEAD:
                    # the invoke phase ends when every extension is back in /event/next:
                    # their time is the invocation's, as on Lambda
                    await asyncio.gather(*extensions)
        except TimeoutError:
            self.ended(f"{errortypes.TIMED_OUT}: timed out after {self.settings.timeout_s:.2f} s")
            self.kill()
            timeout = f"{self.settings.timeout_s:.2f}"
            payload = _json_bytes(_error(
                errortypes.TIMED_OUT, f"RequestId: {invocation.request_id} Error: Task timed "
                                      f"out after {timeout} seconds"))
            error_type = errortypes.TIMED_OUT
            self._log(f"{self._timestamp()} {invocation.request_id} Task timed out after "
                      f"{timeout} seconds")
        duration = (time.monotonic() - self._delivered_at) * 1000 + (suppressed_ms or 0.0)
        for fd in self._fds:
            self._drain(fd)  # what the function printed before answering belongs to it
        self.last_used = time.monotonic()
        self._update_peak(usage=False)
        result = InvocationResult(
            request_id=invocation.request_id, payload=payload,
            function_error=error_type is not None, error_type=error_type,
            duration_ms=duration,
            init_ms=(self.init_ms if self._cold_pending and not self.restored
                     and suppressed_ms is None else None),
            restore_ms=self.init_ms if self._cold_pending and self.restored else None,
            memory_mb=self.settings.memory_mb,
            max_memory_mb=max(1, round(self.peak_rss / MB)), environment=self.id,
            version=self.version)
        self._cold_pending = False
        self._log(f"END RequestId: {invocation.request_id}")
        self._log(result.report_line())
        result.logs = self._current_logs
        self._current = None
        if self._retire_after:  # its runtime is on its way out: never handed another event
            self.ended(f"{errortypes.RESPONSE_SIZE_TOO_LARGE}: its runtime exits")
            self.kill()
        if self.state == BUSY:
            self.state = IDLE
            self._arm_freeze()
        return result

    def _finish(self, payload: bytes, error_type: str | None) -> None:
        current = self._current
        if current is not None and current.future is not None and not current.future.done():
            current.future.set_result((payload, error_type))

    # --- the Runtime API --------------------------------------------------------------------

    def _processes(self) -> list[int]:
        """This environment's processes: its control group's, else its process tree."""
        if self.cgroup is not None and not self.cgroup.removed:
            return self.cgroup.pids()
        return procfs.descendants(self.proc.pid) if self.proc is not None else []

    async def _own_process(self, peer: tuple[str, int]) -> bool:
        """Whether a connection comes from this environment's own processes: the server
        asks the kernel which socket the peer's is (``procfs.tcp_socket_inode``) and checks
        that one of them holds it, so no other local process (another function's
        environment included) can take its events or post its results. Once per
        connection (~1 ms, at the first /next): runtime clients keep theirs open."""
        inode = procfs.tcp_socket_inode(peer, ("127.0.0.1", self.api.port))
        if inode is None:
            return False
        for _ in range(100):  # the process may connect before its spawn has returned
            holder = procfs.socket_holder(self._processes(), inode)
            if holder is not None:
                self._peer_pids[peer] = holder  # who is on the line (an extension's pid)
                return True
            if self.proc is not None or self.state == DEAD:
                return False
            await asyncio.sleep(0.01)
        return False

    async def _runtime_api(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path == f"{API}/invocation/next" and request.method == "GET":
            return await self._next()
        match = _INVOCATION_PATH.match(path)
        if match and request.method == "POST":
            return self._post_result(match.group(1), match.group(2), request)
        if path in (f"{API}/init/error", f"{API}/restore/error") and request.method == "POST":
            self._init_error = self._parse_error(request, errortypes.UNKNOWN)
            return HttpResponse(202, b'{"status":"OK"}')
        if path.startswith(EXTENSION_API + "/"):
            return await self._extension_api(path[len(EXTENSION_API):], request)
        return HttpResponse(404, _json_bytes(_error("NotFound", f"no route {path}")))

    # --- the Extensions API -------------------------------------------------------------------

    async def _extension_api(self, path: str, request: HttpRequest) -> HttpResponse:
        if path == "/register" and request.method == "POST":
            return self._register(request)
        extension = self.extensions.get(request.headers.get("lambda-extension-identifier", ""))
        if extension is None:
            return HttpResponse(403, _json_bytes(_error(
                "Extension.UnknownExtensionIdentifier",
                "missing or unknown Lambda-Extension-Identifier")))
        if path == "/event/next" and request.method == "GET":
            return await self._extension_next(extension)
        if path in ("/init/error", "/exit/error") and request.method == "POST":
            error = self._parse_error(request, "Extension.Error")
            error["errorType"] = request.headers.get("lambda-extension-function-error-type",
                                                     error["errorType"])
            self._log(f"EXTENSION {extension.name} {path[1:]}: {error['errorType']}: "
                      f"{error['errorMessage']}")
            if path == "/init/error" and self._ready is not None and not self._ready.done():
                self._init_error = error  # an extension's failed init fails the init
                self.ended(f"init failed: extension {extension.name}: {error['errorType']}")
                self._ready.set_exception(InitFailed(error))
                self.kill()
            return HttpResponse(202, b'{"status":"OK"}')
        return HttpResponse(404, _json_bytes(_error("NotFound", f"no route {path}")))

    def _register(self, request: HttpRequest) -> HttpResponse:
        name = request.headers.get("lambda-extension-name", "")
        try:
            events = json.loads(request.body or b"{}").get("events", [])
        except (ValueError, AttributeError):
            events = None
        if not name or not isinstance(events, list) or any(
                e not in EXTENSION_EVENTS for e in events):
            return HttpResponse(400, _json_bytes(_error(
                "InvalidRequest", "register takes a Lambda-Extension-Name header and "
                                  f"{{\"events\": [...]}} of {', '.join(EXTENSION_EVENTS)}")))
        if self._ready is None or self._ready.done():
            return HttpResponse(403, _json_bytes(_error(
                "Extension.RegistrationNotAllowed", "extensions register during init")))
        pid = self._peer_pids.get(request.peer) if request.peer else None
        extension = Extension(name, events, pid)
        self.extensions[extension.id] = extension
        s = self.settings
        body = {"functionName": s.name, "functionVersion": self.version,
                "handler": s.handler, "accountId": s.account}
        return HttpResponse(200, _json_bytes(body), [
            ("Content-Type", "application/json"),
            ("Lambda-Extension-Identifier", extension.id)])

    async def _extension_next(self, extension: Extension) -> HttpResponse:
        if extension.busy is not None and not extension.busy.done():
            extension.busy.set_result(None)  # done with the invocation
        extension.waiting = True
        self._init_step()
        try:
            event = await extension.queue.get()
        finally:
            extension.waiting = False
        if event is None:
            return HttpResponse(500, b'{"errorMessage":"environment shutting down"}')
        return HttpResponse(200, _json_bytes(event), [
            ("Content-Type", "application/json"),
            ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))])

    def _dispatch_invoke(self, invocation: Invocation) -> list[asyncio.Future[None]]:
        """Hand the INVOKE event to the extensions that asked for it; their futures resolve
        when each is back in /event/next."""
        loop = asyncio.get_running_loop()
        event = {"eventType": "INVOKE",
                 "deadlineMs": int((time.time() + self._budget_s) * 1000),
                 "requestId": invocation.request_id,
                 "invokedFunctionArn": invocation.function_arn,
                 "tracing": {"type": "X-Amzn-Trace-Id", "value": _trace_id(invocation)}}
        waits = []
        for extension in self.extensions.values():
            if "INVOKE" in extension.events:
                extension.busy = loop.create_future()
                extension.queue.put_nowait(event)
                waits.append(extension.busy)
        return waits

    async def _shutdown_extensions(self) -> None:
        """SHUTDOWN to the extensions that asked for it; wait (at most 2 s) for them to exit."""
        self._wake()
        deadline = time.time() + SHUTDOWN_S
        event = {"eventType": "SHUTDOWN", "shutdownReason": "spindown",
                 "deadlineMs": int(deadline * 1000)}
        pids = []
        for extension in self.extensions.values():
            if "SHUTDOWN" in extension.events:
                extension.queue.put_nowait(event)
                if extension.pid is not None:
                    pids.append(extension.pid)
        while pids and time.time() < deadline:
            pids = [pid for pid in pids if os.path.exists(f"/proc/{pid}")
                    and not _zombie(pid)]
            await asyncio.sleep(0.01)

    def _init_step(self) -> None:
        """End init once the runtime and every extension wait for their next event (the
        extensions' init is in the Init Duration, as on Lambda)."""
        if self._ready is None or self._ready.done() or not self._runtime_waiting:
            return
        if len(self.extensions) < self.expected_extensions or \
                not all(e.waiting for e in self.extensions.values()):
            return
        self.init_ms = (time.monotonic() - self._started_at) * 1000
        self._end_init_burst()
        self.state = IDLE
        self._ready.set_result(None)

    async def _next(self) -> HttpResponse:
        self._runtime_waiting = True
        self._init_step()
        self._parked = True
        self._arm_freeze()
        try:
            invocation = await self._queue.get()
        finally:
            self._parked = False
        if invocation is None:  # the environment is being killed
            return HttpResponse(500, b'{"errorMessage":"environment shutting down"}')
        self._delivered_at = time.monotonic()
        deadline_ms = int((time.time() + self._budget_s) * 1000)
        headers = [
            ("Content-Type", "application/json"),  # awslambdaric hangs without it
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn),
            ("Lambda-Runtime-Trace-Id", _trace_id(invocation)),
        ]
        if invocation.client_context:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        return HttpResponse(200, invocation.payload, headers)

    def _post_result(self, request_id: str, kind: str, request: HttpRequest) -> HttpResponse:
        current = self._current
        if current is None:
            return HttpResponse(403, _json_bytes(_error(
                "InvalidStateTransition", "no invocation is in progress")))
        if request_id != current.request_id:
            return HttpResponse(400, _json_bytes(_error(
                "InvalidRequestID", f"unknown request id {request_id}")))
        if kind == "error":
            error = self._parse_error(request, errortypes.UNKNOWN)
            self._finish(_json_bytes(error), str(error["errorType"]))
            return HttpResponse(202, b'{"status":"OK"}')
        if len(request.body) > limits.SYNC_RESPONSE_BYTES:
            # awslambdaric exits on the 413: this environment is not handed another event
            # (it went back to idle and failed the next request with Runtime.ExitError)
            self._retire_after = True
            self._finish(_json_bytes(_error(
                errortypes.RESPONSE_SIZE_TOO_LARGE,
                f"Response payload size ({len(request.body)} bytes) exceeded maximum allowed "
                f"payload size ({limits.SYNC_RESPONSE_BYTES} bytes).")),
                errortypes.RESPONSE_SIZE_TOO_LARGE)
            return HttpResponse(413, _json_bytes(_error(
                "RequestEntityTooLarge", "response too large")))
        self._finish(request.body, None)
        return HttpResponse(202, b'{"status":"OK"}')

    @staticmethod
    def _parse_error(request: HttpRequest, default_type: str) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {"errorMessage": request.body.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"errorMessage": str(body)}
        body.setdefault("errorType", request.headers.get(
            "lambda-runtime-function-error-type", default_type))
        body.setdefault("errorMessage", "")
        return body

    # --- watching ---------------------------------------------------------------------------

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        self.exit_code = code
        self._cancel_freeze()
        if self.cgroup is not None and not self.cgroup.removed and not self._oom:
            self._check_oom(code)
        self.state = DEAD
        self._queue.put_nowait(None)
        if self._oom:
            failure = _error(errortypes.OUT_OF_MEMORY,
                             "Runtime exited with error: signal: killed (out of memory: "
                             f"over {self.settings.memory_mb} MB)")
        elif code < 0:
            failure = _error(errortypes.EXIT_ERROR,
                             f"Runtime exited with error: signal: {signal.Signals(-code).name}")
        else:
            failure = _error(errortypes.EXIT_ERROR,
                             f"Runtime exited with error: exit status {code}")
        self.ended(f"{failure['errorType']}: {failure['errorMessage']}")
        if self._ready is not None and not self._ready.done():
            for fd in self._fds:
                self._drain(fd)
            self._ready.set_exception(InitFailed(self._init_error or failure))
        if self._current is not None:  # in flight (kill() may have marked us dead already)
            request_id = self._current.request_id
            failure["errorMessage"] = f"RequestId: {request_id} Error: {failure['errorMessage']}"
            self._finish(_json_bytes(failure), failure["errorType"])

    def _check_oom(self, code: int) -> None:
        """Whether the kernel killed the process at the group's limit: the OOM counter, or
        (where there is none) a SIGKILL with the peak at the limit."""
        assert self.cgroup is not None
        self._update_peak()
        kills = self.cgroup.oom_kills()
        if kills is None:
            oom = cgroups.looks_oom(code, self.cgroup.peak(), self.cgroup.memory_bytes)
        else:
            oom = kills > 0
        if not oom:
            return
        self._oom = True
        shmem = self.cgroup.shmem() // MB
        tmp = (f", of which /tmp {shmem} MB (on Lambda /tmp does not count toward memory)"
               if shmem else "")
        self._log(f"{errortypes.OUT_OF_MEMORY}: killed by the kernel at the memory size, "
                  f"{self.settings.memory_mb} MB{tmp}")

    def _update_peak(self, usage: bool = True) -> None:
        """Peak (and, with ``usage``, current) memory from the control group, plus what a
        restored environment shares with its snapshot. The peak alone, where the kernel
        keeps it, at the end of each invocation (one read, ~15 us)."""
        group = self.cgroup
        if group is None or group.removed:
            return
        peak = group.peak()
        if usage or peak is None:
            self.rss = self.baseline_bytes + group.usage()
        self.peak_rss = max(self.peak_rss, self.rss,
                            self.baseline_bytes + (self.rss if peak is None else peak))

    def polices_memory(self) -> bool:
        """Whether this environment's memory is still measured and capped."""
        return True

    async def _watch_memory(self) -> None:
        assert self.proc is not None
        limit = self.settings.memory_mb * MB
        tree: list[int] = []
        rescan_at = 0.0
        while self.proc.returncode is None and self.cgroup is not None:
            # a kernel without memory.peak: the group's usage, sampled (the limit is the
            # kernel's)
            self._update_peak()
            await asyncio.sleep(MEMORY_POLL_S if self.state in (BUSY, STARTING)
                                else MEMORY_POLL_S * 5)
        while self.proc.returncode is None and self.polices_memory():
            now = time.monotonic()
            # walking the tree costs ~10x reading the pids' statm: each poll while the
            # environment starts (processes appear), then once a second
            if now >= rescan_at or self.state == STARTING:
                tree, rescan_at = procfs.descendants(self.proc.pid), now + TREE_RESCAN_S
            self.rss = procfs.rss_bytes(tree)
            self.peak_rss = max(self.peak_rss, self.rss)
            if self.rss > limit and not self._oom:
                self._oom = True
                self._log(f"{errortypes.OUT_OF_MEMORY}: {self.rss // MB} MB used, memory size "
                          f"{self.settings.memory_mb} MB")
                self.kill()
            await asyncio.sleep(MEMORY_POLL_S if self.state in (BUSY, STARTING)
                                else MEMORY_POLL_S * 5)

    # --- logs -------------------------------------------------------------------------------

    @staticmethod
    def _timestamp() -> str:
        now = time.time()
        millis = int(now * 1000) % 1000
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}Z"

    def _log(self, line: str) -> None:
        (self._current_logs if self._current is not None else self._init_logs).append(line)
        self.sink(f"[{self.id}] {line}")

    def _read_output(self, fd: int) -> None:
        self._drain(fd)

    def _drain(self, fd: int) -> None:
        """Read everything the process has written so far to ``fd`` (non-blocking)."""
        chunks = [self._partial.pop(fd, b"")]
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(ValueError, OSError):
                    asyncio.get_running_loop().remove_reader(fd)
                break
            chunks.append(data)
        buffer = b"".join(chunks)
        *lines, rest = buffer.split(b"\n")
        if rest:
            self._partial[fd] = rest
        for raw in lines:
            self._log(raw.decode("utf-8", "replace"))

    def init_logs(self) -> list[str]:
        return list(self._init_logs)

    def describe(self) -> dict[str, Any]:
        self._update_peak()
        return {"id": self.id, "version": self.version, "state": self.state,
                "invocations": self.invocations,
                "cold": self.invocations == 0, "rss_mb": round(self.rss / MB, 1),
                "max_rss_mb": round(self.peak_rss / MB, 1),
                "init_ms": None if self.init_ms is None else round(self.init_ms, 2),
                "idle_s": round(time.monotonic() - self.last_used, 1),
                "frozen": self.frozen, "restored": self.restored,
                "age_s": round(time.monotonic() - self.created, 1),
                "end_reason": self.end_reason,
                "extensions": sorted(e.name for e in self.extensions.values())}
