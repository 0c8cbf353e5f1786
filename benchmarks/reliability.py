"""Reliability under load and faults (issue 14): a real ``modelambda up``, a table of figures.

    .venv/bin/python benchmarks/reliability.py [--quick] [--only load,faults,hostile]
                                               [--json FILE]   # default results/reliability.json

Every part drives the console script ``modelambda up`` on loopback (ports 9300-9399), each
service copied into a scratch directory with its own ``TMPDIR`` (so the emulator's temporary
directories can be counted) and its own state directory. Sections:

- **load**: 16 client threads for 60 s (20 s with ``--quick``) on iris and on MiniLM through
  the Invoke API, after a warm-up that is not counted; errors (a 429 is by design when the 16
  clients outnumber the 8 environments; a throttled client waits 50 ms, as a retrying SDK
  would), p50/p99 per 10 s window, and the memory (RSS) of the emulator and of every
  environment at the start and end of the measured run, and from the end of its first 10 s
  window to its end (warm-up apart; benchmarks/README.md). Then 1000 sequential cold starts (100
  with ``--quick``) of a do-nothing service run with ``--idle-timeout 0.02``, so that the
  emulator's own reaper retires each environment before the next invoke (the driver waits for
  ``/health`` to show none); afterwards the emulator must have no environment processes, the
  same number of file descriptors as after the first cold starts, no groups left in its own
  base cgroup ``modelambda-<pid>-<start>``, no new mounts and nothing left in its ``TMPDIR``.
- **faults**: each fault and its outcome (see ``FAULTS``); the S3 and the endpoint are put
  behind ``FaultProxy``, an HTTP proxy on loopback that passes, closes connections without an
  answer, delays, answers 500 or flips bytes in response bodies.
- **hostile**: the rows of ``benchmarks/reliability_hostile.py`` (``run(quick)``) when that
  module is present.

No figure here is a pass/fail timing: the table says what happened and the JSON keeps every
number. The machine's load (``uptime``) is printed with the table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "modelambda"
RESULTS = Path(__file__).resolve().parent / "results"
PORTS = range(9300, 9400)
BWRAP = shutil.which("bwrap") or "bwrap"
READY = re.compile(r"modelambda: ready on (http://\S+)")
IRIS_BODY = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
MINILM_BODY = {"instances": ["a short sentence to embed"]}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- ports, processes, /proc ---------------------------------------------------------------

_next_port = iter(PORTS)


def port() -> int:
    """The next free port of this suite's range."""
    for candidate in _next_port:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise SystemExit("no free port left in the range (--ports)")


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc's parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it waits only for whoever reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def base_groups(pid: int) -> dict[str, list[str]]:
    """The environments' groups in this emulator's own base cgroup, per v1 hierarchy (its
    base is ``modelambda-<pid>-<start>`` under the emulator's group: cgroups.py)."""
    from modelambda.local.cgroups import base_name

    name = base_name(pid)
    found: dict[str, list[str]] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in ("memory", "cpu", "freezer"):
            if controller in controllers.split(","):
                base = Path("/sys/fs/cgroup") / controllers / path.lstrip("/") / str(name)
                if base.is_dir():
                    found[controller] = sorted(p.name for p in base.iterdir() if p.is_dir())
    return found


def base_groups_of(pid: int) -> dict[str, list[str]]:
    """The groups left in the base cgroup of an emulator that is gone (``modelambda-<pid>-*``
    anywhere in the v1 hierarchies), by controller."""
    found: dict[str, list[str]] = {}
    for controller in ("memory", "cpu", "freezer"):
        root = Path("/sys/fs/cgroup") / controller
        for base in root.glob(f"**/modelambda-{pid}-*"):
            found[controller] = sorted(p.name for p in base.iterdir() if p.is_dir())
    return found


def mounts() -> int:
    return len(Path("/proc/self/mounts").read_text().splitlines())


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- services --------------------------------------------------------------------------------

FAULTY_MODEL = '''
import os, time

class Model:
    """Does what each instance says: a number is echoed; "sleep:S" sleeps S seconds; "fill"
    writes /tmp full and says how far it got; "oom" allocates until the memory limit."""

    def load(self, path):
        pass

    def predict(self, batch):
        out = []
        for item in batch:
            if isinstance(item, str) and item.startswith("sleep:"):
                time.sleep(float(item[6:]))
            elif item == "fail":
                raise ValueError("this instance always fails")
            elif item == "fill":
                written, chunk = 0, b"x" * (1 << 20)
                try:
                    with open("/tmp/fill", "wb") as handle:
                        while True:
                            handle.write(chunk)
                            handle.flush()
                            written += len(chunk)
                except OSError as exc:
                    item = f"{written >> 20} MB then {exc.strerror}"
                finally:
                    if os.path.exists("/tmp/fill"):
                        os.remove("/tmp/fill")
            elif item == "oom":
                hog = []
                while True:
                    hog.append(bytearray(16 << 20))
            out.append(item)
        return out
'''


def python_service(work: Path, name: str, extra: str = "", memory_mb: int = 512,
                   timeout_s: int = 3) -> Path:
    """A service whose model is ``FAULTY_MODEL`` (framework "python")."""
    root = work / name
    root.mkdir(parents=True)
    (root / "w.txt").write_text("")
    (root / "faulty.py").write_text(FAULTY_MODEL)
    (root / "modelambda.toml").write_text(
        f'[service]\nname = "{name}"\nruntime = "python3.12"\nmemory_mb = {memory_mb}\n'
        f'timeout_s = {timeout_s}\n{extra}\n'
        '[model]\npath = "w.txt"\nframework = "python"\nclass = "faulty:Model"\n\n'
        '[strategy]\nkind = "bundle"\n')
    return root


def example_service(work: Path, example: str, strategy_toml: str = "") -> Path:
    source = ROOT / "examples" / example
    target = work / example
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
    if example == "minilm-embeddings":
        path = source / "get_model.py"
        spec = importlib.util.spec_from_file_location("minilm_get_model", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.install(target / "model")
    if strategy_toml:
        spec_file = target / "modelambda.toml"
        text = spec_file.read_text()
        start = text.index("[strategy]")
        end = text.find("\n[", start + 1)
        spec_file.write_text(text[:start] + strategy_toml + ("" if end < 0 else text[end:]))
    return target


class Up:
    """``modelambda up`` as a user runs it: the console script, its own port, TMPDIR and
    state directory; its output lines are kept."""

    def __init__(self, work: Path, services: list[Path], *args: str,
                 env: dict[str, str] | None = None, timeout: float = 900) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="tmp-", dir=work))
        self.env = {**os.environ, "TMPDIR": str(self.tmpdir),
                    "MODELAMBDA_STATE_DIR": str(work / "state"), **(env or {})}
        self.port = port()
        self.process = subprocess.Popen(
            [str(CLI), "up", *map(str, services), "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise SystemExit("modelambda up did not get ready:\n" + self.text[-4000:])
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY.search(line):
                self._ready.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def health(self) -> dict[str, Any]:
        status, body, _ = request(self.port, "GET", "/health")
        assert status == 200, body
        return json.loads(body)  # type: ignore[no-any-return]

    def environments(self, function: str) -> list[dict[str, Any]]:
        for described in self.health()["functions"]:
            if described["name"] == function:
                return described["environments"]  # type: ignore[no-any-return]
        return []

    def env_processes(self, env_id: str | None = None) -> list[int]:
        """The bwrap (or plain) process of each environment, or of one (by its tmp dir)."""
        found = []
        for pid in children(self.pid):
            try:
                leader = os.getpgid(pid) == pid and cmdline(pid).startswith(BWRAP)
                groups = Path(f"/proc/{pid}/cgroup").read_text()
            except OSError:
                continue
            # an environment's control group is named "<environment id>-<n>" (cgroups.py)
            if leader and (env_id is None or re.search(rf"/{re.escape(env_id)}-\d+$", groups,
                                                       re.MULTILINE)):
                found.append(pid)
        return found

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL, 10)


@contextlib.contextmanager
def running(work: Path, services: list[Path], *args: str, env: dict[str, str] | None = None
            ) -> Iterator[Up]:
    up = Up(work, services, *args, env=env)
    try:
        yield up
    finally:
        up.stop()


def request(port_: int, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None, timeout: float = 120
            ) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port_, timeout=timeout)
    try:
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        conn.request(method, path, data, headers or {})
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in
                                                   response.getheaders()}
    finally:
        conn.close()


def invoke(up: Up, function: str, body: Any, event: bool = False, tail: bool = False
           ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
    headers = {"X-Amz-Invocation-Type": "Event"} if event else {}
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    status, data, got = request(up.port, "POST", f"/2015-03-31/functions/{function}/invocations",
                                body, headers)
    try:
        payload = json.loads(data) if data else None
    except ValueError:
        payload = {"raw": data[:200].decode("utf-8", "replace")}
    return status, payload, got


def outcome_of(status: int, payload: Any, headers: dict[str, str]) -> str:
    """"ok", or what failed: the HTTP status and the error type."""
    if status == 200 and "x-amz-function-error" not in headers:
        return "ok"
    kind = payload.get("errorType") or payload.get("Type") or payload.get("__type") \
        if isinstance(payload, dict) else None
    return f"{status} {kind or ''}".strip()


# --- load ------------------------------------------------------------------------------------

def drive(up: Up, function: str, body: Any, clients: int, seconds: float
          ) -> list[tuple[float, float, str]]:
    """``clients`` threads, each over one keep-alive connection, for ``seconds``:
    (start offset s, latency ms, outcome) per request."""
    samples: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    data = json.dumps(body).encode()
    t0 = time.monotonic()
    stop_at = t0 + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=120)
        mine = []
        while (start := time.monotonic()) < stop_at:
            try:
                conn.request("POST", f"/2015-03-31/functions/{function}/invocations", data)
                response = conn.getresponse()
                payload = response.read()
                if response.status == 200 and not response.getheader("X-Amz-Function-Error"):
                    outcome = "ok"
                elif response.status == 429:
                    outcome = "429"
                else:
                    outcome = f"{response.status} {payload[:120]!r}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"connection: {exc!r}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=120)
            mine.append((start - t0, (time.monotonic() - start) * 1000, outcome))
            if outcome == "429":
                time.sleep(0.05)
        conn.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def memory(up: Up, function: str) -> dict[str, Any]:
    envs = up.environments(function)
    return {"emulator_mb": round(rss_mb(up.pid), 1),
            "environments_mb": {e["id"]: e["rss_mb"] for e in envs},
            "invocations": {e["id"]: e["invocations"] for e in envs}}


# Growth is also reported from the end of the first 10 s window of the measured run: what
# grows only until then is warm-up (allocator arenas, the console's ring filling), what keeps
# growing after it is not. benchmarks/README.md ("Memory under load") says what was found.
WARMUP_S = 10  # the first of the 10 s windows the sampler below wakes at


def growth(start: float, end: float) -> float:
    return round((end / start - 1) * 100, 2) if start else float("nan")


def load_one(work: Path, service: Path, function: str, body: Any, seconds: float
             ) -> dict[str, Any]:
    with running(work, [service], "--no-warmup") as up:
        log(f"load: {function}: warm-up (16 clients, not counted)")
        drive(up, function, body, 16, min(8.0, seconds / 3))
        start = memory(up, function)
        log(f"load: {function}: 16 clients for {seconds:.0f} s")
        emulator_rss: list[float] = []
        warm: dict[str, Any] = {}
        done = threading.Event()

        def sample() -> None:  # the emulator's RSS at the end of each 10 s window
            while not done.wait(WARMUP_S):
                emulator_rss.append(round(rss_mb(up.pid), 1))
                if not warm:
                    warm.update(memory(up, function))  # the end of the warm-up window

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        samples = drive(up, function, body, 16, seconds)
        done.set()
        sampler.join()
        end = memory(up, function)
    windows = []
    for lo in range(0, int(seconds), 10):
        ok = [ms for t, ms, o in samples if lo <= t < lo + 10 and o == "ok"]
        windows.append({"window_s": f"{lo}-{lo + 10}", "ok": len(ok),
                        "p50_ms": round(percentile(ok, 0.5), 1),
                        "p99_ms": round(percentile(ok, 0.99), 1)})
    errors = [o for _, _, o in samples if o not in ("ok", "429")]
    envs = sorted(set(start["environments_mb"]) & set(end["environments_mb"]))
    env_growth = {e: growth(start["environments_mb"][e], end["environments_mb"][e])
                  for e in envs}
    warm_envs = [e for e in envs if e in warm.get("environments_mb", {})]
    env_growth_warm = {e: growth(warm["environments_mb"][e], end["environments_mb"][e])
                       for e in warm_envs}
    # /health gives RSS to 0.1 MB, so the slope is known to within 0.1 MB / invocations:
    # meaningful over a few thousand invocations (a full run), rough over a few hundred
    env_bytes_per_invocation = {
        e: {"bytes": round((end["environments_mb"][e] - warm["environments_mb"][e]) * 2**20
                           / calls),
            "invocations": calls, "within_bytes": round(0.1 * 2**20 / calls)}
        for e in warm_envs
        if (calls := end["invocations"][e] - warm["invocations"][e]) > 0}
    emulator_growth_warm = growth(warm["emulator_mb"], end["emulator_mb"]) if warm else None
    return {
        "function": function, "seconds": seconds, "requests": len(samples),
        "ok": sum(1 for s in samples if s[2] == "ok"),
        "throttled_429": sum(1 for s in samples if s[2] == "429"),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5],
        "windows": windows, "memory_start": start, "memory_end": end,
        "emulator_growth_pct": growth(start["emulator_mb"], end["emulator_mb"]),
        # the console keeps the last 10,000 invocations (console/store.py): the emulator
        # grows until that ring is full, then stays flat; this is its last 30 s
        "emulator_rss_per_window_mb": emulator_rss,
        "emulator_growth_last_30s_pct": growth(emulator_rss[-4], emulator_rss[-1])
        if len(emulator_rss) >= 4 else None,
        "environment_growth_pct": env_growth,
        "max_growth_pct": max([growth(start["emulator_mb"], end["emulator_mb"]),
                               *env_growth.values()]),
        "warmup_s": WARMUP_S, "memory_after_warmup": warm or None,
        "emulator_growth_after_warmup_pct": emulator_growth_warm,
        "environment_growth_after_warmup_pct": env_growth_warm,
        "environment_bytes_per_invocation_after_warmup": env_bytes_per_invocation,
        "max_growth_after_warmup_pct": max([g for g in (emulator_growth_warm,
                                                        *env_growth_warm.values())
                                            if g is not None], default=None),
        "up_tracebacks": up.text.count("Traceback"),
    }


def snapshot(up: Up) -> dict[str, Any]:
    return {"processes": len(children(up.pid)), "fds": fd_count(up.pid),
            "cgroups": {k: len(v) for k, v in base_groups(up.pid).items()},
            "mounts": mounts(),
            "tmp_entries": sum(1 for _ in up.tmpdir.rglob("*"))}


def cold_starts(work: Path, restores: int, full: int) -> dict[str, Any]:
    """Sequential new environments, each retired by the emulator's reaper before the next
    invoke: ``restores`` SnapStart restores (version 1, through the alias: a new process
    forked from the template, its own control group and /tmp; the cheap way to make many)
    and ``full`` full cold starts ($LATEST: bwrap, a fresh interpreter, init)."""
    service = python_service(work, "coldstart", "snapstart = true\n", memory_mb=2048)
    with running(work, [service], "--no-warmup", "--idle-timeout", "0.02") as up:
        def one(name: str) -> tuple[float, bool, str]:
            start = time.monotonic()
            status, payload, headers = invoke(up, name, {"instances": [1]}, tail=True)
            elapsed = (time.monotonic() - start) * 1000
            tail = base64.b64decode(headers.get("x-amz-log-result", "")).decode()
            deadline = time.monotonic() + 30
            while any(e["state"] != "dead" for e in up.environments("coldstart")) \
                    and time.monotonic() < deadline:
                time.sleep(0.01)  # the reaper retires it
            new = "Init Duration" in tail or "Restore Duration" in tail
            return elapsed, new, outcome_of(status, payload, headers)

        for name in ("coldstart:live", "coldstart") * 3:  # what stays open is opened here
            one(name)
        before = snapshot(up)
        figures: dict[str, Any] = {}
        for name, count, kind in (("coldstart:live", restores, "restores"),
                                  ("coldstart", full, "full")):
            log(f"cold starts: {count} sequential {kind}, each environment retired by the "
                "reaper")
            latencies, new, failures = [], 0, []
            started = time.monotonic()
            for i in range(count):
                ms, was_new, outcome = one(name)
                latencies.append(ms)
                new += was_new
                if outcome != "ok":
                    failures.append(outcome)
                if (i + 1) % 100 == 0:
                    log(f"  {i + 1}/{count}")
            figures[kind] = {"count": count, "new_environment": new,
                             "failures": len(failures),
                             "failure_examples": sorted(set(failures))[:5],
                             "wall_s": round(time.monotonic() - started, 1),
                             "p50_ms": round(percentile(latencies, 0.5), 1),
                             "p99_ms": round(percentile(latencies, 0.99), 1)}
        time.sleep(0.5)
        after = snapshot(up)
        processes = children(up.pid)  # the SnapStart template's among them
    time.sleep(0.5)
    leaks = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    return {**figures, "before": before, "after": after, "leaks": leaks,
            "processes_after_stop": len([p for p in processes if alive(p)]),
            "cgroup_base_after_stop": base_groups_of(up.pid),
            "tmpdir_after_stop": sorted(str(p.relative_to(up.tmpdir))
                                        for p in up.tmpdir.rglob("*"))}


def section_load(work: Path, quick: bool) -> dict[str, Any]:
    seconds = 20.0 if quick else 60.0
    iris = example_service(work, "iris")
    minilm = example_service(work, "minilm-embeddings")
    return {"iris": load_one(work, iris, "iris", IRIS_BODY, seconds),
            "minilm": load_one(work, minilm, "minilm-embeddings", MINILM_BODY, seconds),
            "cold_starts": cold_starts(work, 100 if quick else 1000, 20 if quick else 50)}


# --- faults ------------------------------------------------------------------------------------

class FaultProxy:
    """An HTTP proxy on loopback in front of one upstream (the S3, an endpoint), with a mode:
    "pass"; "down" (the connection is closed without an answer); "slow" (each answer waits
    ``delay_s``); "500" (an S3-style InternalError); "corrupt" (the body's bytes are flipped,
    headers and length kept, so only a checksum can tell)."""

    def __init__(self, upstream_port: int, delay_s: float = 2.0) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.mode = "pass"
        self.requests = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                mode = proxy.mode
                if mode == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "slow":
                    time.sleep(proxy.delay_s)
                if mode == "500":
                    data = (b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>"
                            b"We encountered an internal error. Please try again.</Message>"
                            b"</Error>")
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body, headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                # large bodies only: the alias and manifest pass, the model's bytes do not
                if mode == "corrupt" and self.command == "GET" and len(data) > 1024:
                    data = bytes(b ^ 0x5A for b in data)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                           "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client gave up
                    super().handle_error(request, client_address)

        self.port = port()
        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def row(area: str, fault: str, expected: str, observed: str, passed: bool,
        **details: Any) -> dict[str, Any]:
    return {"area": area, "fault": fault, "expected": expected, "observed": observed,
            "passed": passed, **details}


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # reported in the row
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def busy_env(up: Up, function: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for env in up.environments(function):
            if env["state"] == "busy":
                return str(env["id"])
        time.sleep(0.02)
    raise RuntimeError("no environment became busy")


def call(up: Up, function: str, instance: Any) -> str:
    return outcome_of(*invoke(up, function, {"instances": [instance]}))


def environment_faults(work: Path) -> list[dict[str, Any]]:
    """kill -9 mid-invoke, SIGSTOP past the timeout, /tmp full, memory exceeded."""
    rows = []
    # 1024 MB: /tmp's 512 MB fit beside the interpreter; /tmp is charged to the memory
    # limit here, unlike Lambda (README: "/tmp outside the memory limit" is not reproduced)
    # an 8 s timeout: filling 1 GB takes seconds at 0.58 vCPU on a loaded machine
    service = python_service(work, "faulty", 'reserved_concurrency = 2\n', memory_mb=1024,
                             timeout_s=8)
    with running(work, [service], "--no-warmup") as up:
        concurrently(lambda: call(up, "faulty", "sleep:0.3"), lambda: call(up, "faulty", 1))

        # kill -9 an environment mid-invoke: only its request fails
        def kill_busy() -> str:
            env_id = busy_env(up, "faulty")
            for pid in up.env_processes(env_id):
                os.killpg(pid, signal.SIGKILL)
            return env_id

        victim, other, _ = concurrently(lambda: call(up, "faulty", "sleep:2"),
                                             lambda: (time.sleep(0.2),
                                                      call(up, "faulty", "sleep:1"))[1],
                                             lambda: (time.sleep(0.1), kill_busy())[1])
        after = call(up, "faulty", 2)
        rows.append(row("environment", "kill -9 mid-invoke",
                        "that request fails; the concurrent and the next are served",
                        f"killed request: {victim}; concurrent: {other}; next: {after}",
                        victim != "ok" and other == "ok" and after == "ok"))

        # SIGSTOP an environment's runtime past the function's timeout (3 s)
        def stop_busy() -> None:
            env_id = busy_env(up, "faulty")
            for bwrap in up.env_processes(env_id):
                for pid in children(bwrap):
                    if "awslambdaric" in cmdline(pid) or "bootstrap" in cmdline(pid):
                        os.kill(pid, signal.SIGSTOP)

        started = time.monotonic()
        stopped, _ = concurrently(lambda: call(up, "faulty", "sleep:1"),
                                  lambda: (time.sleep(0.3), stop_busy())[1])
        took = time.monotonic() - started
        after = call(up, "faulty", 3)
        rows.append(row("environment", "SIGSTOP past its timeout (8 s)",
                        "Task timed out at the timeout; the next is served",
                        f"{stopped} after {took:.1f} s; next: {after}",
                        "TimedOut" in stopped or "timed out" in stopped.lower()
                        or stopped.startswith("200 Sandbox"), seconds=round(took, 2)))

        # fill /tmp (512 MB)
        status, payload, headers = invoke(up, "faulty", {"instances": ["fill"]})
        got = payload.get("predictions") if isinstance(payload, dict) else payload
        after = call(up, "faulty", 4)
        rows.append(row("environment", "fill /tmp (512 MB)",
                        "the function sees ENOSPC near 512 MB; the environment keeps serving",
                        f"{outcome_of(status, payload, headers)}: {json.dumps(got)[:90]}; "
                        f"next: {after}",
                        outcome_of(status, payload, headers) == "ok"
                        and "No space left" in json.dumps(got) and after == "ok"))

        # exceed memory (cgroup limit 1024 MB)
        oom = call(up, "faulty", "oom")
        after = call(up, "faulty", 5)
        rows.append(row("environment", "exceed memory (1024 MB)",
                        "Runtime.OutOfMemory for that request; the next is served",
                        f"{oom}; next: {after}", "OutOfMemory" in oom and after == "ok"))
        leftover = children(up.pid)
    time.sleep(0.5)
    stranded = [p for p in leftover if alive(p)]
    groups = base_groups_of(up.pid)
    rows.append(row("environment", "after those faults, at stop",
                    "no process or cgroup left",
                    f"{len(stranded)} process(es), {sum(map(len, groups.values()))} group(s) "
                    "left", not stranded and not groups))
    return rows


def event_faults(work: Path, quick: bool) -> list[dict[str, Any]]:
    """Event invokes queued when the emulator is stopped by SIGTERM, then by SIGKILL."""
    from modelambda.local.eventqueue import read_journal

    rows = []
    service = python_service(work, "events", 'reserved_concurrency = 1\n\n[service.events]\n'
                             'maximum_retry_attempts = 0\n', timeout_s=5)
    on_failure = service / ".modelambda" / "on-failure.jsonl"
    queue = service / ".modelambda" / "event-queue" / "events"
    delivered: dict[str, int] = {}

    def count(up: Up) -> None:
        for line in up.lines:
            match = re.search(r"REPORT RequestId: (\S+)", line)
            if match and "Status:" not in line:
                delivered[match.group(1)] = delivered.get(match.group(1), 0) + 1

    def failed() -> set[str]:
        if not on_failure.exists():
            return set()
        return {json.loads(line)["requestContext"]["requestId"]
                for line in on_failure.read_text().splitlines()}

    accepted: list[str] = []
    accept_ms: list[float] = []
    n = 10 if quick else 30
    for sig in (signal.SIGTERM, signal.SIGKILL):
        up = Up(work, [service], "--no-warmup")
        try:
            ids = []
            for i in range(n):
                began = time.monotonic()
                # more work than up's 10 s drain at SIGTERM, so some stay queued
                instance = "fail" if i % 10 == 9 else f"sleep:{15 / n:.2f}"
                status, _, headers = invoke(up, "events", {"instances": [instance]}, event=True)
                assert status == 202, status
                accept_ms.append((time.monotonic() - began) * 1000)
                ids.append(headers["x-amzn-requestid"])
            accepted.extend(ids)
            time.sleep(1.2)
            environments = up.env_processes()
        finally:
            up.stop(sig, timeout=30)
        count(up)
        time.sleep(0.5)
        # what a killed emulator leaves (frozen environments ignore their death signal until
        # thawed): the next emulator's start sweeps it (cgroups.py)
        stranded = [p for p in environments if alive(p)]
        groups = sum(len(g) for g in base_groups_of(up.pid).values())
        left = len(read_journal(queue / "journal.jsonl")[0])
        again = Up(work, [service], "--no-warmup")
        try:
            replay = next((line for line in again.lines if "replaying" in line), "")
            swept = (not [p for p in environments if alive(p)]
                     and not base_groups_of(up.pid))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and read_journal(queue / "journal.jsonl")[0]:
                time.sleep(0.2)
        finally:
            again.stop()
        count(again)
        lost = [i for i in ids if i not in delivered and i not in failed()]
        twice = [i for i in ids if delivered.get(i, 0) > 1]
        name = signal.Signals(sig).name
        rows.append(row("emulator", f"{name} with {n} Event invokes queued",
                        "each delivered or in on-failure after the next up; none lost",
                        f"{left} left queued, replayed ({'yes' if replay else 'no line'}); "
                        f"lost {len(lost)}; run twice {len(twice)} (at least once)",
                        not lost and bool(replay or not left), lost=len(lost),
                        redelivered=len(twice), accepted=n))
        rows.append(row("emulator", f"{name}: what the stopped up left",
                        "nothing, or swept by the next up",
                        f"{len(stranded)} environment process(es), {groups} cgroup(s) left; "
                        f"{'swept' if swept else 'NOT swept'} by the next up",
                        swept, stranded=len(stranded), groups=groups))
    rows.append(row("emulator", "the 202 of an Event invoke (fsynced first)",
                    "answered", f"p50 {percentile(accept_ms, 0.5):.1f} ms, p99 "
                    f"{percentile(accept_ms, 0.99):.1f} ms over {len(accept_ms)} (a new "
                    f"connection each); the queue's durable write alone: p50 "
                    f"{durable_write_ms(work):.2f} ms", True))
    return rows


def durable_write_ms(work: Path, count: int = 200) -> float:
    """What ``EventQueue.add`` (an append to the journal and its fdatasync) costs here."""
    from modelambda.local.eventqueue import EventQueue, QueuedEvent

    queue = EventQueue(work / "queue-timing", lambda line: None)
    queue.open()
    times = []
    for i in range(count):
        event = QueuedEvent(f"id-{i}", json.dumps(IRIS_BODY).encode(), "$LATEST")
        began = time.perf_counter()
        queue.add(event)
        times.append((time.perf_counter() - began) * 1000)
        queue.remove(event)
    queue.close()
    return percentile(times, 0.5)


def endpoint_faults(work: Path) -> list[dict[str, Any]]:
    """The endpoint strategy's server down, slow, answering 5xx."""
    rows = []
    iris = example_service(work, "iris")
    host_port = port()
    host = subprocess.Popen([str(CLI), "endpoint", "serve", str(iris), "--port", str(host_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if request(host_port, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                    break
            time.sleep(0.3)
        proxy = FaultProxy(host_port, delay_s=1.0)
        try:
            with running(work, [iris], "--strategy", "endpoint", "--endpoint-url", proxy.url,
                         "--no-warmup") as up:
                baseline = call(up, "iris", [5.1, 3.5, 1.4, 0.2])
                for mode, expected in (("down", "a clear error naming the endpoint"),
                                       ("slow", "served, slower (1 s per answer)"),
                                       ("500", "a clear error with the endpoint's status")):
                    proxy.mode = mode
                    started = time.monotonic()
                    status, payload, headers = invoke(up, "iris", IRIS_BODY)
                    took = time.monotonic() - started
                    got = outcome_of(status, payload, headers)
                    proxy.mode = "pass"
                    after = call(up, "iris", [5.1, 3.5, 1.4, 0.2])
                    message = payload.get("errorMessage", "") if isinstance(payload, dict) \
                        else ""
                    ok = (got == "ok") if mode == "slow" else (got != "ok" and bool(message))
                    rows.append(row("endpoint", f"endpoint {mode}", expected + "; then served",
                                    f"{got} in {took:.1f} s {message[:70]!r}; after: {after}",
                                    ok and after == "ok" and baseline == "ok"))
        finally:
            proxy.stop()
    finally:
        host.send_signal(signal.SIGINT)
        try:
            host.wait(30)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait(10)
        if host.stdout is not None:
            host.stdout.close()
    return rows


def s3_faults(work: Path) -> list[dict[str, Any]]:
    """The S3 strategy's store down, slow, answering 500 or serving corrupted bytes, at a
    cold start and during a refresh."""
    from modelambda.local.s3server import CREDENTIALS, REGION, EmbeddedS3

    rows = []
    iris = example_service(work, "iris", '[strategy]\nkind = "s3"\nbucket = "faults"\n'
                           'prefix = "models"\nrefresh_s = 1\n\n')
    s3 = EmbeddedS3().start()
    proxy = FaultProxy(s3.port, delay_s=2.0)
    env = {"AWS_ENDPOINT_URL_S3": proxy.url, "AWS_REGION": REGION, **CREDENTIALS}
    env.pop("AWS_ENDPOINT_URL", None)
    try:
        s3.ensure_bucket("faults")
        with running(work, [iris], env=env) as up:
            baseline = call(up, "iris:live", [5.1, 3.5, 1.4, 0.2])
            for mode in ("down", "slow", "500", "corrupt"):
                # at a cold start: the warm environment is killed, the next one starts now
                for pid in up.env_processes():
                    os.killpg(pid, signal.SIGKILL)
                time.sleep(0.3)
                proxy.mode = mode
                started = time.monotonic()
                status, payload, headers = invoke(up, "iris:live", IRIS_BODY)
                took = time.monotonic() - started
                got = outcome_of(status, payload, headers)
                message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
                proxy.mode = "pass"
                after = call(up, "iris:live", [5.1, 3.5, 1.4, 0.2])
                ok = got == "ok" if mode == "slow" else (got != "ok" and bool(message))
                rows.append(row("s3", f"S3 {mode} at cold start",
                                "served (slow) or a clear init error; served once S3 is back",
                                f"{got} in {took:.1f} s {message[:70]!r}; after: {after}",
                                ok and after == "ok" and baseline == "ok"))
            for mode in ("down", "slow", "500", "corrupt"):
                # during refresh: the warm environment polls the alias every second; a new
                # version is published and made "live" (straight to the S3, not through the
                # proxy) while the proxy is faulty, then the proxy passes again
                version = f"r-{mode}"
                publish = subprocess.run(
                    [str(CLI), "models", "publish", str(iris), "--model",
                     str(iris / "model.onnx"), "--version", version, "--alias", "live"],
                    capture_output=True, text=True, env={**up.env, **env,
                                                         "AWS_ENDPOINT_URL_S3": s3.url})
                proxy.mode = mode
                if publish.returncode != 0:
                    raise RuntimeError(f"models publish: {publish.stderr[-300:]}")
                outcomes, versions = [], []
                for _ in range(5):
                    status, payload, headers = invoke(up, "iris:live", IRIS_BODY)
                    outcomes.append(outcome_of(status, payload, headers))
                    versions.append(payload.get("model_version")
                                    if isinstance(payload, dict) else None)
                    time.sleep(0.5)
                proxy.mode = "pass"
                switched_s = None
                started = time.monotonic()
                while time.monotonic() - started < 15:
                    status, payload, headers = invoke(up, "iris:live", IRIS_BODY)
                    if isinstance(payload, dict) and payload.get("model_version") == version:
                        switched_s = time.monotonic() - started
                        break
                    time.sleep(0.25)
                served = outcomes.count("ok")
                rows.append(row("s3", f"S3 {mode} during refresh",
                                "the warm environment keeps serving; the new version once S3 "
                                "is back",
                                f"{served}/{len(outcomes)} served (versions "
                                f"{sorted(set(map(str, versions)))}); new version after "
                                + ("never" if switched_s is None else f"{switched_s:.1f} s"),
                                served == len(outcomes) and switched_s is not None))
    finally:
        proxy.stop()
        s3.stop()
    return rows


FAULTS: list[tuple[str, Callable[[Path, bool], list[dict[str, Any]]]]] = [
    ("environment", lambda work, quick: environment_faults(work)),
    ("events", event_faults),
    ("endpoint", lambda work, quick: endpoint_faults(work)),
    ("s3", lambda work, quick: s3_faults(work)),
]


def section_faults(work: Path, quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, run in FAULTS:
        area = work / name
        area.mkdir(parents=True)
        log(f"faults: {name}")
        try:
            rows.extend(run(area, quick))
        except Exception as exc:  # the other areas still run; the row says what broke
            rows.append(row(name, "(the area's driver)", "runs", f"crashed: {exc!r}", False))
    return rows


# --- hostile input (the security helper's module) ----------------------------------------------

def section_hostile(quick: bool) -> list[dict[str, Any]] | str:
    path = Path(__file__).resolve().parent / "reliability_hostile.py"
    if not path.exists():
        return "not run: benchmarks/reliability_hostile.py is not there"
    spec = importlib.util.spec_from_file_location("reliability_hostile", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        rows: list[dict[str, Any]] = module.run(quick)
    except Exception as exc:  # the load and fault figures are still written
        return f"failed: {exc!r}"
    return rows


# --- table ---------------------------------------------------------------------------------------

def print_table(results: dict[str, Any]) -> None:
    print(f"\nreliability ({'quick' if results['quick'] else 'full'}), wall "
          f"{results['wall_s']:.0f} s; {results['uptime']}")
    load = results.get("load")
    if load:
        print("\n== load: 16 clients through the Invoke API ==")
        for key in ("iris", "minilm"):
            r = load[key]
            print(f"{r['function']}: {r['requests']} requests in {r['seconds']:.0f} s: "
                  f"{r['ok']} ok, {r['throttled_429']} throttled (429, by design), "
                  f"{r['errors']} errors {r['error_examples'] or ''}")
            print("  window    ok     p50 ms   p99 ms")
            for w in r["windows"]:
                print(f"  {w['window_s']:>7}  {w['ok']:>5}  {w['p50_ms']:>8}  {w['p99_ms']:>7}")
            start, end = r["memory_start"], r["memory_end"]
            print(f"  memory (RSS MB) emulator {start['emulator_mb']} -> {end['emulator_mb']} "
                  f"({r['emulator_growth_pct']:+.1f} %); per window "
                  f"{r['emulator_rss_per_window_mb']}, last 30 s "
                  + (f"{r['emulator_growth_last_30s_pct']:+.1f} %"
                     if r['emulator_growth_last_30s_pct'] is not None else "n/a")
                  + " (the console's ring of 10,000 invocations fills first)")
            warm_s = r["warmup_s"]
            after = r["emulator_growth_after_warmup_pct"]
            print(f"  after the first {warm_s} s: emulator "
                  + ("n/a" if after is None else f"{after:+.1f} %"))
            for env, pct in r["environment_growth_pct"].items():
                warm = r["environment_growth_after_warmup_pct"].get(env)
                per = r["environment_bytes_per_invocation_after_warmup"].get(env)
                print(f"    {env}: {start['environments_mb'][env]} -> "
                      f"{end['environments_mb'][env]} ({pct:+.1f} %); after {warm_s} s "
                      + ("n/a" if warm is None or per is None else
                         f"{warm:+.1f} %, {per['bytes']} B per invocation (\u00b1"
                         f"{per['within_bytes']} B, {per['invocations']} invocations)"))
            most = r["max_growth_after_warmup_pct"]
            print(f"  largest growth {r['max_growth_pct']:+.1f} % start to end, "
                  + ("n/a" if most is None else f"{most:+.1f} %")
                  + f" after the first {warm_s} s (goal < 5 %)")
        c = load["cold_starts"]
        print("\n== sequential new environments, each retired by the reaper ==")
        for kind in ("restores", "full"):
            f = c[kind]
            print(f"  {kind:<8} {f['count']:>5}: new environment {f['new_environment']}, "
                  f"failures {f['failures']} {f['failure_examples'] or ''}; p50 {f['p50_ms']} "
                  f"ms, p99 {f['p99_ms']} ms; {f['wall_s']} s")
        print(f"  before: {c['before']}\n  after:  {c['after']}")
        print(f"  leaked: {c['leaks'] or 'nothing'}; after stop: "
              f"{c['processes_after_stop']} processes, cgroup base "
              f"{c['cgroup_base_after_stop'] or 'gone'}, TMPDIR "
              f"{c['tmpdir_after_stop'] or 'empty'}")
    faults = results.get("faults")
    if faults:
        print("\n== faults ==")
        print(f"  {'fault':<40} {'pass':<5} observed")
        for r in faults:
            print(f"  {r['fault']:<40} {'yes' if r['passed'] else 'NO':<5} {r['observed']}")
    hostile = results.get("hostile")
    if hostile is not None:
        print("\n== hostile input ==")
        if isinstance(hostile, str):
            print(f"  {hostile}")
        else:
            print(f"  {'area':<60} {'cases':>7} {'crashes':>8} {'5xx':>5} {'non-JSON':>9} "
                  "outcome")
            for r in hostile:
                print(f"  {r['area'][:60]:<60} {r['cases']:>7} {r['crashes']:>8} "
                      f"{r['unexpected_5xx']:>5} {r['non_json_errors']:>9} "
                      f"{str(r['outcome'])[:100]}")  # the JSON has all of it
            print(f"  {'all':<60} {sum(r['cases'] for r in hostile):>7}")


# --- main --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer cold starts")
    parser.add_argument("--only", default="load,faults,hostile",
                        help="comma-separated sections: load, faults, hostile")
    parser.add_argument("--json", type=Path, default=RESULTS / "reliability.json")
    parser.add_argument("--ports", default=f"{PORTS[0]}-{PORTS[-1]}",
                        help="the port range for the emulators it starts, LOW-HIGH")
    args = parser.parse_args()
    try:
        low, high = (int(p) for p in args.ports.split("-"))
    except ValueError:
        parser.error(f"--ports: {args.ports!r} is not LOW-HIGH, e.g. 9300-9399")
    global _next_port
    _next_port = iter(range(low, high + 1))
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - {"load", "faults", "hostile"}
    if unknown:
        parser.error(f"--only: unknown section(s) {sorted(unknown)}; use load, faults, hostile")
    results: dict[str, Any] = {"quick": args.quick, "load_before": os.getloadavg()}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelambda-reliability-") as scratch:
        work = Path(scratch)
        if "load" in sections:
            results["load"] = section_load(work / "load", args.quick)
        if "faults" in sections:
            results["faults"] = section_faults(work / "faults", args.quick)
        if "hostile" in sections:
            results["hostile"] = section_hostile(args.quick)
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["load_after"] = os.getloadavg()
    results["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
