"""The emulator: functions, their environments and the front doors on one asyncio loop.

``Emulator`` is async (``up`` runs it on the main thread's loop with signal handlers);
``EmulatorThread`` runs one on a background thread for tests, benchmarks and embedding.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from modelambda import limits
from modelambda.local import cgroups, httpproto
from modelambda.local.console import Console, Service
from modelambda.local.errorlog import log_exception
from modelambda.local.eventloop import new_event_loop, running_kind
from modelambda.local.front import Front, too_large_response
from modelambda.local.function import Function
from modelambda.local.httpserver import HttpServer
from modelambda.local.sandbox import sandbox_mode
from modelambda.local.settings import FunctionSettings


def print_sink(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class Emulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_environments: int = 8,
                 idle_timeout_s: float = 300.0, sink: Callable[[str], None] = print_sink,
                 tmp_root: str | None = None, cgroups: bool | None = None,
                 http: str | None = None) -> None:
        self.host = host
        # "streams" or "protocol" (httpproto.py): None, $MODELAMBDA_HTTP or the default
        self.http_requested = http
        self.http = ""  # the path its HTTP servers run on, once started
        # a control group per environment: None when available, False off, True required
        # (a function's own setting wins; MODELAMBDA_CGROUPS=off switches them off)
        self.use_cgroups = cgroups
        self.max_environments = max_environments
        self.idle_timeout_s = idle_timeout_s
        self.sink = sink
        self._tmp = tempfile.TemporaryDirectory(prefix="modelambda-envs-") if tmp_root is None \
            else None
        self.tmp_root = tmp_root or (self._tmp.name if self._tmp else "")
        self.functions: dict[str, Function] = {}
        self.models: dict[str, str] = {}  # model name -> function name, for the v2 paths
        self.console = Console(self)  # the page at / and its JSON API (local/console/)
        self.front = Front(self)
        self.event_loop = ""  # "uvloop" or "asyncio", once started
        # A body just over 6 MB must reach the front to get the Invoke API's own 413.
        self.server = HttpServer(self.front.handle, host, port,
                                 max_body=limits.SYNC_PAYLOAD_BYTES,
                                 too_large=too_large_response())

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.event_loop = running_kind(loop)  # for /health
        self.http = httpproto.choose_for_loop(loop, self.http_requested)
        await self.server.start()

    def add_function(self, settings: FunctionSettings, models: Iterable[str] = (),
                     service: Service | None = None) -> Function:
        """Run a function (``service``: the spec it was built from and its model store, for
        the console)."""
        if settings.name in self.functions:
            raise ValueError(f"a function named {settings.name!r} is already running")
        function = Function(settings, self.sink, self.tmp_root, self.max_environments,
                            self.idle_timeout_s, self.use_cgroups)
        function.observer = self.console.log  # its invocations, for the console
        if service is not None:
            self.console.add_service(settings.name, service)
        function.start()
        self.functions[settings.name] = function
        for model in models:
            self.models[model] = settings.name
        return function

    async def remove_function(self, name: str, drain_s: float = 0.0) -> None:
        function = self.functions.pop(name)
        self.models = {m: f for m, f in self.models.items() if f != name}
        await function.stop(drain_s)

    def by_model(self, name: str) -> Function | None:
        return self.functions.get(self.models.get(name, name))

    def describe(self) -> dict[str, Any]:
        """What /health shows. ``sandbox`` is how the functions' environments really run
        ("bwrap" or "plain"; "mixed" if they differ; with no function, how one would run by
        default); each function says its own. ``cgroups`` likewise: "v1", "v2" or "off"
        (``cgroups_detail`` says where the groups are, or why there are none)."""
        functions = [f.describe() for f in self.functions.values()]
        modes = {f["sandbox"] for f in functions} or {sandbox_mode(None)}
        groups = {f["cgroups"] for f in functions} or {self.default_cgroup_mode()}
        return {"status": "ok", "url": self.url,
                "event_loop": self.event_loop, "http": self.http,
                "sandbox": modes.pop() if len(modes) == 1 else "mixed",
                "cgroups": groups.pop() if len(groups) == 1 else "mixed",
                "cgroups_detail": cgroups.detection().detail, "functions": functions}

    def default_cgroup_mode(self) -> str:
        """The control-group mode a function without a setting of its own gets."""
        return cgroups.mode_for(self.use_cgroups)

    def isolation_line(self) -> str:
        """One line for ``up``'s banner: how environments are isolated."""
        functions = list(self.functions.values())
        sandbox = {sandbox_mode(f.settings.use_bwrap) for f in functions} or \
            {sandbox_mode(None)}
        groups = {f.cgroup_mode for f in functions} or {self.default_cgroup_mode()}
        mode = groups.pop() if len(groups) == 1 else "mixed"
        return (f"modelambda: environments: sandbox "
                f"{sandbox.pop() if len(sandbox) == 1 else 'mixed'}; "
                + (cgroups.describe_mode(mode) if mode != "mixed" else
                   "cgroups mixed: " + ", ".join(f"{f.settings.name} {f.cgroup_mode}"
                                                 for f in functions)))

    async def stop(self, drain_s: float = 10.0) -> None:
        """Stop taking requests, drain in-flight work, stop every environment."""
        self.console.close()  # its live streams would hold the server open
        try:
            await self.server.stop(drain_s)  # requests in flight get their answers
        except Exception as exc:  # the functions are stopped all the same
            log_exception("stopping the front door", exc)
        functions = list(self.functions.values())
        results = await asyncio.gather(*(f.stop(drain_s) for f in functions),
                                       return_exceptions=True)
        for function, result in zip(functions, results, strict=True):
            if isinstance(result, BaseException):
                log_exception(f"stopping function {function.settings.name}", result)
        if self._tmp is not None:
            try:
                self._tmp.cleanup()
            except OSError as exc:
                log_exception(f"removing {self._tmp.name}", exc)


class EmulatorThread:
    """An Emulator on its own event loop thread: ``with EmulatorThread() as emu: ...``."""

    def __init__(self, loop: str | None = None, **options: Any) -> None:
        # uvloop when installed (eventloop.py), unless ``loop`` or $MODELAMBDA_LOOP says asyncio
        self.loop = new_event_loop(loop)
        self._thread = threading.Thread(target=self.loop.run_forever, name="modelambda-emulator",
                                        daemon=True)
        self._thread.start()
        self.emulator: Emulator = self.call(self._make(options))

    @staticmethod
    async def _make(options: dict[str, Any]) -> Emulator:
        emulator = Emulator(**options)
        await emulator.start()
        return emulator

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    @property
    def url(self) -> str:
        return self.emulator.url

    def add_function(self, settings: FunctionSettings, models: Iterable[str] = (),
                     service: Service | None = None) -> Function:
        async def add() -> Function:
            return self.emulator.add_function(settings, models, service)

        result: Function = self.call(add())
        return result

    def remove_function(self, name: str) -> None:
        self.call(self.emulator.remove_function(name))

    def function(self, name: str) -> Function:
        return self.emulator.functions[name]

    def describe(self) -> dict[str, Any]:
        async def describe() -> dict[str, Any]:
            return self.emulator.describe()

        result: dict[str, Any] = self.call(describe())
        return result

    def stop(self, drain_s: float = 10.0) -> None:
        if not self.loop.is_running():
            return
        try:
            self.call(self.emulator.stop(drain_s), timeout=drain_s + 30)
        except Exception as exc:  # the loop is still stopped and closed
            log_exception("stopping the emulator", exc)
        try:
            self.call(self._cancel_rest(), timeout=10)
        except Exception as exc:
            log_exception("cancelling the emulator's remaining tasks", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    @staticmethod
    async def _cancel_rest() -> None:
        """Cancel what is still pending (e.g. long polls of killed runtimes) before the loop
        closes, so nothing is destroyed mid-await."""
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
