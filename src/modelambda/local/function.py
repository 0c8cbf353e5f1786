"""A function's environments: warm reuse, scale-out up to its concurrency, then throttling.

Like Lambda: an invocation takes the most recently used idle environment (warm), or starts a
new one (cold) while fewer than the concurrency limit are active, or is throttled (429).
Environments idle for longer than ``idle_timeout_s`` are reaped. Asynchronous (Event)
invocations are queued, retried on a function error (``event_retries``: 0 to 2, Lambda's
MaximumRetryAttempts, default 2), then written to the on-failure destination, a JSONL file;
an event older than ``event_max_age_s`` (MaximumEventAgeInSeconds, 60 s to 6 hours) when its
turn comes is written there too, with the condition "EventAgeExceeded". Lambda waits about a
minute, then two, between attempts; here 1 s, then 2 s (``event_retry_delays_s``), so a
failing event is done in seconds. An environment that dies mid-invoke is a function error
like any other, so its event is retried, not lost. Accepted events are on disk before the 202
(``settings.event_queue``, see ``eventqueue.py``): those not done when the emulator stops or
dies are run again by the next one that starts the function (at least once, as Lambda).

Versions, as ``up`` publishes them: ``$LATEST``, version 1 (the same code and settings),
and an alias (``settings.alias``, ``live`` unless ``[deploy] alias`` names another) that
points at 1. Environments belong to one version and serve only it (they count together
toward the concurrency limit); SnapStart applies to the published version only: ``$LATEST``
of a SnapStart function initialises on demand, as on Lambda.

Each environment (and a SnapStart template) gets its own control group when the machine
allows it (``cgroups.py``): which mode a function's environments run in is decided once, when
the function is added, and shown by ``describe`` (``/health``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from modelambda.local import cgroups, errortypes, procfs
from modelambda.local.environment import BUSY, DEAD, IDLE, STARTING, Environment, InitFailed
from modelambda.local.errorlog import log_exception
from modelambda.local.eventqueue import EventQueue, QueueBusy, QueuedEvent
from modelambda.local.results import Invocation, InvocationResult
from modelambda.local.sandbox import sandbox_mode
from modelambda.local.settings import LATEST, PUBLISHED, FunctionSettings
from modelambda.local.snapstart import RestoredEnvironment, Template

THROTTLE_RETRY_S = 0.5


class Observer(Protocol):
    """Told of what a function did (the console's record implements it)."""

    def invoked(self, function: Function, invocation: Invocation, result: InvocationResult,
                cold: bool) -> None: ...

    def retired(self, function: Function, env: Environment) -> None: ...


def _start_error(exc: Exception) -> dict[str, Any]:
    return {"errorType": errortypes.START_ERROR,
            "errorMessage": f"the environment could not start: {type(exc).__name__}: {exc}"}


class Throttled(Exception):
    def __init__(self, reason: str, limit: int) -> None:
        super().__init__(f"Rate Exceeded. ({reason}: {limit} concurrent executions)")
        self.reason = reason


class Function:
    def __init__(self, settings: FunctionSettings, sink: Callable[[str], None], tmp_root: str,
                 max_environments: int = 8, idle_timeout_s: float = 300.0,
                 use_cgroups: bool | None = None) -> None:
        self.settings = settings
        # the function's setting wins over the emulator's (``use_cgroups``)
        self.cgroup_mode = cgroups.mode_for(settings.cgroups, use_cgroups)
        self.sink = sink
        self.tmp_root = tmp_root
        self.idle_timeout_s = idle_timeout_s
        reserved = settings.reserved_concurrency
        self.limit = reserved if reserved is not None else max_environments
        self.reason = ("ReservedFunctionConcurrentInvocationLimitExceeded" if reserved is not None
                       else "ConcurrentInvocationLimitExceeded")
        self.environments: list[Environment] = []
        self._created = 0
        self._in_flight = 0
        self._events: set[asyncio.Task[None]] = set()
        self._pending_events: dict[str, QueuedEvent] = {}
        self._queue: EventQueue | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self.template: Template | None = None
        self._template_ready: asyncio.Task[Template] | None = None
        self.versions = (LATEST, PUBLISHED)
        self.aliases = {settings.alias: PUBLISHED}
        # who is told of each finished invocation and each retired environment (the
        # console's record: an append to a bounded deque); None: nobody
        self.observer: Observer | None = None

    def version_for(self, qualifier: str | None) -> str | None:
        """The version a qualifier names: none (or $LATEST), a version, or an alias; None
        when there is no such version or alias."""
        if not qualifier:
            return LATEST
        if qualifier in self.versions:
            return qualifier
        return self.aliases.get(qualifier)

    def _snapstarts(self, version: str) -> bool:
        """SnapStart restores this version's environments (published versions only)."""
        return self.settings.snapstart and version != LATEST

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())
        self._replay_events()
        if self.settings.snapstart:
            # Lambda snapshots when a version is published: here, when the function starts.
            self._template_ready = asyncio.create_task(self._snapshot())

    async def _snapshot(self) -> Template:
        template = Template(self.settings, self.sink, self.tmp_root, self.cgroup_mode)
        try:
            await template.snapshot(self.settings.snapshot_init_timeout_s)
        except BaseException:
            await template.close()
            raise
        self.template = template
        return template

    async def _restore_source(self) -> Template | None:
        """The template to restore from (made again if it died), or None without SnapStart."""
        if not self.settings.snapstart:
            return None
        if self._template_ready is None or (
                self._template_ready.done() and (
                    self._template_ready.cancelled() or self._template_ready.exception()
                    or self._template_ready.result().state == DEAD)):
            if self.template is not None:
                await self.template.close()
                self.template = None
            self._template_ready = asyncio.create_task(self._snapshot())
        return await asyncio.shield(self._template_ready)

    # --- synchronous invocations --------------------------------------------------------

    def active(self) -> int:
        return sum(1 for env in self.environments
                   if env.state != DEAD and (env.reserved or env.state in (STARTING, BUSY)))

    def _take_idle(self, version: str) -> Environment | None:
        idle = [env for env in self.environments
                if env.state == IDLE and not env.reserved and env.version == version]
        if not idle:
            return None
        env = max(idle, key=lambda e: e.last_used)  # most recently used: warmest caches
        env.reserved = True
        return env

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run one invocation on ``invocation.version`` ($LATEST unless the caller named a
        version or an alias)."""
        invocation.function_arn = invocation.function_arn or self.settings.arn
        env = self._take_idle(invocation.version)
        while env is not None and env.frozen and env.proc is not None and \
                procfs.sigkill_pending(procfs.descendants(env.proc.pid)):
            # killed while frozen: it would die the moment it is thawed, failing a request
            # it never ran; Lambda never hands an event to a dead environment
            self.sink(f"[{env.id}] was killed while frozen: retired, not used")
            env.reserved = False
            await self._retire(env)
            env = self._take_idle(invocation.version)
        cold = env is None
        if env is None:
            if self.active() >= self.limit:
                raise Throttled(self.reason, self.limit)
            env, failure = await self._cold_start(invocation)
            if failure is not None:
                if self.observer is not None:
                    self.observer.invoked(self, invocation, failure, True)
                return failure
            assert env is not None
        self._in_flight += 1
        try:
            result = await env.invoke(invocation)
        finally:
            self._in_flight -= 1
            env.reserved = False
            if env.state == DEAD:
                await self._retire(env)
        if cold:
            result.logs = [*env.init_logs(), *result.logs]
        if self.observer is not None:
            self.observer.invoked(self, invocation, result, cold)
        return result

    def _new_environment(self, template: Template | None = None,
                         version: str = LATEST) -> Environment:
        self._created += 1
        env: Environment = (
            Environment(self.settings, self._created, self.sink, self.tmp_root, self.cgroup_mode,
                        version)
            if template is None
            else RestoredEnvironment(template, self._created, self.sink, self.tmp_root))
        env.reserved = True
        self.environments.append(env)
        return env

    async def _cold_start(self, invocation: Invocation
                          ) -> tuple[Environment | None, InvocationResult | None]:
        """A new environment through its init phase: (ready environment, None), or
        (None, the invocation's failure) with the environment retired and its slot free."""
        if self._snapstarts(invocation.version):
            return await self._restore(invocation)
        env, failure = await self._start(invocation, self.settings.init_timeout_s)
        if failure is not None or env is not None:
            return env, failure
        # Lambda: an init phase over 10 s is retried inside the invocation, under the
        # function's timeout; that init is the invocation's time (its Duration, no Init
        # Duration in its REPORT).
        self.sink(f"INIT_REPORT Init Duration: {self.settings.init_timeout_s * 1000:.2f} ms\t"
                  "Phase: init\tStatus: timeout")
        return await self._start(invocation, self.settings.timeout_s, {
            "errorType": errortypes.TIMED_OUT,
            "errorMessage": f"RequestId: {invocation.request_id} Error: Task timed out "
                            f"after {self.settings.timeout_s:.2f} seconds"}, in_invoke=True)

    async def _start(self, invocation: Invocation, timeout: float,
                     on_timeout: dict[str, Any] | None = None, in_invoke: bool = False
                     ) -> tuple[Environment | None, InvocationResult | None]:
        """One attempt: (env, None) when ready; (None, failure) when init failed, or ran out
        of time with ``on_timeout`` given; (None, None) when it ran out of time without.
        A failed environment is always retired, so its concurrency slot is free again."""
        env = self._new_environment(version=invocation.version)
        env.init_in_invoke = in_invoke
        try:
            await env.start()
            await env.wait_ready(timeout)
            return env, None
        except TimeoutError:
            env.ended(f"{errortypes.INIT_TIMEOUT}: init ran past {timeout:.0f} s")
            await self._retire(env)
            return None, (None if on_timeout is None
                          else self._failure(invocation, env, on_timeout))
        except InitFailed as exc:
            env.ended(f"init failed: {exc.error_type}")
            await self._retire(env)
            return None, self._failure(invocation, env, exc.payload)
        except Exception as exc:  # could not even start: no slot may stay taken
            env.ended(f"could not start: {type(exc).__name__}")
            await self._retire(env)
            return None, self._failure(invocation, env, _start_error(exc))

    async def _restore(self, invocation: Invocation
                       ) -> tuple[Environment | None, InvocationResult | None]:
        # holds the concurrency slot while we wait
        placeholder = self._new_environment(version=invocation.version)
        try:
            template = await self._restore_source()
        except InitFailed as exc:
            await self._retire(placeholder)
            return None, self._failure(invocation, placeholder, exc.payload)
        except TimeoutError:
            await self._retire(placeholder)
            return None, self._failure(invocation, placeholder, {
                "errorType": errortypes.INIT_TIMEOUT,
                "errorMessage": "the SnapStart snapshot's init phase timed out"})
        except Exception as exc:
            await self._retire(placeholder)
            return None, self._failure(invocation, placeholder, _start_error(exc))
        assert template is not None
        self.environments.remove(placeholder)  # a stand-in, not an environment that ended
        env = self._new_environment(template)
        try:
            await env.start()
            # Lambda gives the after-restore hooks 10 s.
            await env.wait_ready(self.settings.init_timeout_s)
            return env, None
        except (InitFailed, TimeoutError) as exc:
            await self._retire(env)
            payload = exc.payload if isinstance(exc, InitFailed) else {
                "errorType": errortypes.RESTORE_TIMEOUT,
                "errorMessage": "the after-restore hooks did not finish in 10 s"}
            return None, self._failure(invocation, env, payload)
        except Exception as exc:
            await self._retire(env)
            return None, self._failure(invocation, env, _start_error(exc))

    def _failure(self, invocation: Invocation, env: Environment,
                 payload: dict[str, Any]) -> InvocationResult:
        init_ms = (time.monotonic() - env.created) * 1000
        error_type = str(payload.get("errorType", errortypes.UNKNOWN))
        body = {"errorMessage": payload.get("errorMessage", ""), "errorType": error_type,
                "requestId": "", "stackTrace": payload.get("stackTrace", [])}
        result = InvocationResult(
            request_id=invocation.request_id, payload=json.dumps(body).encode(),
            function_error=True, error_type=error_type, duration_ms=0.0, init_ms=init_ms,
            memory_mb=self.settings.memory_mb,
            max_memory_mb=max(1, round(env.peak_rss / (1024 * 1024))), environment=env.id,
            version=env.version)
        lines = [*env.init_logs(),
                 f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\t"
                 f"Error Type: {error_type}",
                 f"START RequestId: {invocation.request_id} Version: {env.version}",
                 f"END RequestId: {invocation.request_id}", result.report_line()]
        for line in lines[len(env.init_logs()):]:
            self.sink(f"[{env.id}] {line}")
        result.logs = lines
        return result

    async def _retire(self, env: Environment) -> None:
        if env in self.environments:
            self.environments.remove(env)
            if self.observer is not None:
                self.observer.retired(self, env)
        # on a task of its own, so that a cancelled caller (the reaper, at stop) does not
        # leave it half closed: stop() waits for it
        closing = asyncio.ensure_future(env.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        await asyncio.shield(closing)

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout_s / 2))
            now = time.monotonic()
            for env in list(self.environments):
                if env.reserved:
                    continue
                if env.state == DEAD:  # died between invocations
                    await self._retire(env)
                elif env.state == IDLE and now - env.last_used > self.idle_timeout_s:
                    self.sink(f"[{env.id}] reaped after {self.idle_timeout_s:.0f} s idle")
                    env.ended(f"reaped after {self.idle_timeout_s:.0f} s idle")
                    await self._retire(env)

    # --- asynchronous (Event) invocations -----------------------------------------------

    def _replay_events(self) -> None:
        """Take the function's event queue and run what an earlier emulator left in it."""
        if self.settings.event_queue is None:
            return
        # one directory per function name: a function added again under another name
        # (benchmarks do) neither shares nor replays this one's events
        queue = EventQueue(self.settings.event_queue / self.settings.name, self.sink,
                           self.settings.name)
        try:
            left = queue.open()
        except QueueBusy as exc:
            self.sink(f"[{self.settings.name}] event queue {exc}: this emulator keeps its "
                      "Event invokes in memory only (stop the other one to have them on disk)")
            return
        self._queue = queue
        if left:
            self.sink(f"[{self.settings.name}] replaying {len(left)} queued Event invoke(s) "
                      f"from {queue.directory} (left by an emulator that stopped or died; "
                      "one that was running then runs again)")
        for event in left:
            self._schedule(event)

    async def submit_event(self, payload: bytes, request_id: str, version: str = LATEST,
                           function_arn: str = "") -> None:
        """Accept an Event invoke: on disk (flushed) when this returns, then run. The write
        (one fdatasync, a few ms on a disk) runs on a thread: other requests go on meanwhile."""
        event = QueuedEvent(request_id, payload, version, function_arn, time.time())
        if self._queue is not None:
            await asyncio.to_thread(self._queue.add, event)
        self._schedule(event)

    def _schedule(self, event: QueuedEvent) -> None:
        self._pending_events[event.request_id] = event
        task = asyncio.create_task(self._run_event(event))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    async def _run_event(self, event: QueuedEvent) -> None:
        payload, request_id, version = event.payload, event.request_id, event.version
        result: InvocationResult | None = None
        while True:
            if time.time() - event.received > self.settings.event_max_age_s:
                self._write_failure(payload, request_id, result, event.attempts,
                                    "EventAgeExceeded", version)
                break
            try:
                result = await self.invoke(Invocation(payload, request_id=request_id,
                                                      version=version,
                                                      function_arn=event.function_arn))
            except Throttled:
                await asyncio.sleep(THROTTLE_RETRY_S)  # throttles are retried, not counted
                continue
            event.attempts += 1
            if not result.function_error:
                break
            if event.attempts > self.settings.event_retries:
                self._write_failure(payload, request_id, result, event.attempts,
                                    "RetriesExhausted", version)
                break
            if self._queue is not None:  # flushed too: on a thread, not on the loop
                await asyncio.to_thread(self._queue.update, event)
            delays = self.settings.event_retry_delays_s
            await asyncio.sleep(delays[min(event.attempts - 1, len(delays) - 1)]
                                if delays else 0)
        self._pending_events.pop(request_id, None)
        if self._queue is not None:
            self._queue.remove(event)

    def _write_failure(self, payload: bytes, request_id: str, result: InvocationResult | None,
                       attempts: int, condition: str, version: str = LATEST) -> None:
        """Append Lambda's on-failure destination record to the JSONL file (durably)."""
        def parse(data: bytes) -> Any:
            try:
                return json.loads(data)
            except ValueError:
                return data.decode("utf-8", "replace")

        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {"requestId": request_id,
                               "functionArn": f"{self.settings.arn}:{version}",
                               "condition": condition, "approximateInvokeCount": attempts},
            "requestPayload": parse(payload),
            "responseContext": {"statusCode": 200, "executedVersion": version,
                                "functionError": "Unhandled"} if result else {},
            "responsePayload": parse(result.payload) if result else None,
        }
        target = self.settings.on_failure
        if target is None:
            self.sink(f"[{self.settings.name}] event {request_id} failed ({condition}) and "
                      "no on-failure destination is set: " + json.dumps(record))
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.sink(f"[{self.settings.name}] event {request_id} -> on-failure {target}")

    def _leave_events(self) -> None:
        """At stop: events not done stay in the queue on disk for the next start; without a
        queue they go to the on-failure file ("EmulatorShutdown"), never dropped silently."""
        if self._queue is not None:
            if self._pending_events:
                self.sink(f"[{self.settings.name}] {len(self._pending_events)} Event "
                          f"invoke(s) stay queued in {self._queue.directory}: the next start "
                          "of this function runs them")
            self._queue.close()
            self._queue = None
        else:
            for event in list(self._pending_events.values()):
                self._write_failure(event.payload, event.request_id, None, event.attempts,
                                    "EmulatorShutdown", event.version)
        self._pending_events.clear()

    # --- state and shutdown -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        described = {"name": self.settings.name, "arn": self.settings.arn,
                     "runtime": self.settings.runtime, "memory_mb": self.settings.memory_mb,
                     "sandbox": sandbox_mode(self.settings.use_bwrap),
                     "cgroups": self.cgroup_mode,
                     "timeout_s": self.settings.timeout_s, "concurrency_limit": self.limit,
                     "versions": list(self.versions), "aliases": dict(self.aliases),
                     "active": self.active(), "queued_events": len(self._pending_events),
                     "environments": [env.describe() for env in self.environments]}
        if self.settings.snapstart:
            described["snapshot"] = None if self.template is None else {
                "state": self.template.state, "snapshot_ms": self.template.snapshot_ms,
                "rss_mb": self.template.describe()["rss_mb"], "frozen": self.template.frozen}
        return described

    async def stop(self, drain_s: float = 10.0) -> None:
        """Let in-flight work finish (up to ``drain_s``), then stop every environment.

        Events still queued after the drain stay in the event queue on disk for the next
        start; without one they are written to the on-failure file with the condition
        "EmulatorShutdown", so none is dropped silently."""
        if self._reaper is not None:
            self._reaper.cancel()
        for closing in list(self._closing):  # environments the reaper was retiring
            try:
                await closing
            except Exception as exc:
                log_exception("stopping an environment", exc)
        deadline = time.monotonic() + drain_s
        while (self._in_flight or self._events) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._events):
            task.cancel()
        self._leave_events()
        for env in list(self.environments):
            try:
                await self._retire(env)
            except Exception as exc:  # the others are still stopped
                log_exception(f"stopping environment {env.id}", exc)
        if self._template_ready is not None and not self._template_ready.done():
            self._template_ready.cancel()
        if self.template is not None:
            try:
                await self.template.close()
            except Exception as exc:
                log_exception(f"stopping the SnapStart template {self.template.id}", exc)
