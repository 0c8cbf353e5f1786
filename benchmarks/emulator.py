"""The local emulator against in-process calls, hand-written cold starts and MLServer, in one run.

Three measurements, each compared with a baseline measured in the same run (the machine is
shared and noisy: only the ratios and differences mean something):

1. warm invoke latency: ``POST /2015-03-31/functions/iris/invocations`` over one keep-alive
   ``http.client`` connection, and through boto3's ``lambda`` client, against calling the same
   handler in-process (``App.handle``). Blocks of each kind alternate, so noise hits all alike.
   Diagnostic lines: a do-nothing handler through the emulator (the floor of emulator +
   awslambdaric), iris with onnxruntime limited to one thread, and the environment-side
   ``Duration`` of the REPORT lines (from handing the event to ``/next`` until ``/response``).
2. cold start: invoke-to-answer for a fresh environment (each sample adds the function under a
   new name), for iris and MiniLM, against the hand-written handler of ``cold_start.py`` run as
   a fresh ``python3.12 -S`` process with the same staged dependencies on ``PYTHONPATH``,
   reading the model file the build ships from the function's own unpacked task root (ONNX
   offline-optimised at build time; that gain is reported on its own line: session creation
   from the raw file against the shipped one, in one process). Diagnostic columns:
   modelambda's handler in such a bare process, and the emulator with the staged task
   directory byte-compiled for 3.12 beforehand.
3. throughput: iris through the Function URL front (``POST /fn/iris/``) with ``wrk`` at
   concurrency 1, 4 and 16, beside MLServer 1.7.1 serving the same ONNX file as the function
   ships, with the function's onnxruntime session settings (``benchmarks/mlserver_iris``, a
   small onnxruntime runtime) at ``POST /v2/models/iris/infer``. When MLServer cannot be set
   up, started or does not answer correctly, its columns say "failed" and the reason (with its
   log's tail) is printed.

Usage: python benchmarks/emulator.py [--quick] [--json FILE] [--no-mlserver]
       [--skip warm,cold,throughput,ready]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import cold_start  # noqa: E402  (also puts ROOT/src on sys.path)

from modelambda.local.emulator import EmulatorThread  # noqa: E402
from modelambda.local.interpreters import find_python  # noqa: E402
from modelambda.local.sandbox import python_path  # noqa: E402
from modelambda.local.services import function_for  # noqa: E402
from modelambda.local.settings import FunctionSettings  # noqa: E402

IRIS_DIR = ROOT / "examples" / "iris"
IRIS_EVENT = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
IRIS_V2 = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                       "data": [5.1, 3.5, 1.4, 0.2]}]}
MINILM_FILES = ("model.onnx", "tokenizer.json", "sentence_bert_config.json")
INVOKE = "/2015-03-31/functions/{}/invocations"
JSON_HEADERS = {"Content-Type": "application/json"}

MLSERVER_VENV = Path(os.environ.get("MODELAMBDA_MLSERVER_VENV")
                     or Path.home() / ".cache" / "modelambda" / "mlserver-venv")
MLSERVER_PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0",
                     "onnxruntime")
MLSERVER_DIR = BENCH / "mlserver_iris"
WRK_SCRIPT = BENCH / "wrk_post.lua"
CONCURRENCY = (1, 4, 16)

NOOP_HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 50), 4),
            "p99_ms": round(percentile(samples, 99), 4),
            "mean_ms": round(statistics.fmean(samples), 4)}


# --- services ---------------------------------------------------------------------------


def copy_service(source: Path, target: Path, extra_toml: str = "", name: str | None = None
                 ) -> Path:
    """A private copy of an example (so staging writes under the temp dir, not examples/)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
    spec = target / "modelambda.toml"
    text = spec.read_text()
    if name is not None:
        text = re.sub(r'(?m)^name = "[^"]*"', f'name = "{name}"', text, count=1)
    spec.write_text(text + ("\n" + extra_toml if extra_toml else ""))
    return target


def minilm_service(target: Path) -> Path:
    service = copy_service(cold_start.MINILM_EXAMPLE, target)
    cold_start.install_minilm(service / "model")
    missing = [name for name in MINILM_FILES if not (service / "model" / name).is_file()]
    if missing:
        raise SystemExit(f"get_model.install() left out {', '.join(missing)}")
    return service


def compiled_copy(task_dir: Path, target: Path, python: str) -> Path:
    """The staged task directory (hard links) with .pyc files compiled by ``python``."""
    shutil.copytree(task_dir, target, copy_function=os.link)
    subprocess.run([python, "-m", "compileall", "-q", str(target)], check=True, timeout=300)
    return target


def noop_function(base: FunctionSettings, directory: Path) -> FunctionSettings:
    directory.mkdir(parents=True)
    (directory / "noop.py").write_text(NOOP_HANDLER)
    return dataclasses.replace(base, name="noop", handler="noop.handler", task_dir=directory)


class ReportSink:
    """The emulator's log sink: keeps the REPORT Duration of each function, drops the rest."""

    _DURATION = re.compile(r"^\[(.+)-\d+\] REPORT RequestId: \S+\tDuration: ([\d.]+) ms")

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = {}
        self.recording = False

    def __call__(self, line: str) -> None:
        if self.recording and "REPORT" in line:
            match = self._DURATION.match(line)
            if match:
                self.durations.setdefault(match.group(1), []).append(float(match.group(2)))


def http_post(port: int, path: str, body: bytes, timeout: float = 120.0
              ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, JSON_HEADERS)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def check_answer(status: int, headers: dict[str, str], data: bytes, what: str) -> None:
    if status != 200 or "X-Amz-Function-Error" in headers or b"predictions" not in data:
        raise RuntimeError(f"{what}: unexpected answer {status} {headers} {data[:300]!r}")


# --- 1. warm invoke latency --------------------------------------------------------------


FULL_CPU_MB = 3538  # 2 x 1769 MB: Lambda's CPU share for two vCPUs, this machine's cores


def full_cpu(settings: FunctionSettings) -> FunctionSettings:
    """``settings`` with the memory size whose CPU share is the whole machine (with control
    groups on, a 512 MB function gets 0.29 of a core, which the in-process baseline and
    MLServer do not have to live with)."""
    memory = max(settings.memory_mb,
                 round(FULL_CPU_MB / 2 * (os.cpu_count() or 2)))
    return dataclasses.replace(settings, memory_mb=memory)


def thread_cpu_ns(native_id: int) -> int:
    """Time on CPU (ns) of one of this process's threads (the kernel's schedstat)."""
    with open(f"/proc/self/task/{native_id}/schedstat", "rb") as handle:
        return int(handle.read().split()[0])


def process_cpu_ns(pids: list[int]) -> int:
    """Time on CPU (ns, clock-tick resolution) of processes, their ended threads included."""
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * tick  # utime, stime
    return total


class CpuProbe:
    """CPU used by an emulator's loop thread and by one function's environments."""

    def __init__(self, emu: EmulatorThread, function: str) -> None:
        self.emu = emu
        self.function = function
        self.loop_thread = emu._thread.native_id

    def read(self) -> tuple[int, int]:
        function = self.emu.emulator.functions.get(self.function)
        pids = [pid for env in (function.environments if function else [])
                for pid in env._processes()]
        return thread_cpu_ns(self.loop_thread or 0), process_cpu_ns(pids)


def warm_calls(emulators: dict[str, EmulatorThread], iris: FunctionSettings
               ) -> tuple[dict[str, Callable[[], None]], Callable[[], None]]:
    """The ways to answer the iris request (and the diagnostic do-nothing ones), each a call
    that raises on a wrong answer; and a function that closes their connections. The
    in-process app runs the function's own modelambda.json on the model file it ships (its
    task root). ``emulators``: "main" (uvloop when installed) and, when that is uvloop,
    "asyncio" (the same functions on asyncio's loop, for the lever's effect); when "main"
    serves HTTP with httptools (httpproto.py), "streams" (the same loop, asyncio streams and
    the pure-Python parser, for that lever's effect)."""
    import boto3
    from botocore.config import Config

    from modelambda.runtime.app import App
    from modelambda.runtime.config import load_config
    from modelambda.runtime.paths import Paths

    paths = Paths(task_root=str(iris.task_dir))
    config = load_config(paths, environ={})
    # hooks (iris has none) would come from the example; the task root's packages are built
    # for the function's interpreter, not this one, so it must not go on sys.path
    config.code_root = str(IRIS_DIR)
    app = App(config, paths, log=lambda _: None)
    body = json.dumps(IRIS_EVENT).encode()
    conns = {key: http.client.HTTPConnection("127.0.0.1", emu.emulator.port, timeout=30)
             for key, emu in emulators.items()}
    client = boto3.client(
        "lambda", endpoint_url=emulators["main"].url, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}, read_timeout=30, connect_timeout=5))

    def direct() -> None:
        out = app.handle(IRIS_EVENT, None)
        assert "predictions" in out, out

    def via_http(name: str, emulator: str = "main", kind: str = "RequestResponse"
                 ) -> Callable[[], None]:
        path = INVOKE.format(name)
        conn = conns[emulator]
        headers = {**JSON_HEADERS, "X-Amz-Invocation-Type": kind}
        expected = 204 if kind == "DryRun" else 200

        def call() -> None:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != expected or response.getheader("X-Amz-Function-Error"):
                raise RuntimeError(f"{name}: {response.status} {data[:200]!r}")
        return call

    def via_boto3() -> None:
        out = client.invoke(FunctionName="iris", Payload=body)
        data = out["Payload"].read()
        if out["StatusCode"] != 200 or "FunctionError" in out or b"predictions" not in data:
            raise RuntimeError(f"boto3: {out} {data[:200]!r}")

    def close() -> None:
        for conn in conns.values():
            conn.close()
        client.close()

    calls = {"in_process": direct, "emulator_http": via_http("iris"),
             "emulator_boto3": via_boto3, "noop_http": via_http("noop"),
             "front_dryrun": via_http("noop", kind="DryRun"),
             "noop_pyric_http": via_http("noop-pyric"),
             "iris_512mb_http": via_http("iris-512mb"),
             "iris_1thread_http": via_http("iris-1thread")}
    for other in SIDE_EMULATORS:
        if other in emulators:
            calls[f"emulator_http_{other}"] = via_http("iris", other)
            calls[f"noop_http_{other}"] = via_http("noop", other)
    # the same calls while a browser watches the console (its live stream; last, so the
    # block after it is the in-process one, untouched by a stream still closing)
    calls[CONSOLE_KIND] = via_http("iris")
    if UNOBSERVED in emulators["main"].emulator.functions:
        # the same function with the console's record switched off: as before the console
        calls[UNOBSERVED_KIND] = via_http(UNOBSERVED)
    return calls, close


# emulators beside "main" that serve iris and noop one lever back (see warm_calls)
SIDE_EMULATORS = ("asyncio", "streams")
CONSOLE_KIND = "emulator_http_console"
UNOBSERVED_KIND = "emulator_http_no_console_hook"
UNOBSERVED = "iris-unobserved"


class ConsoleClient:
    """What a browser on the console costs the emulator: a separate process reading the live
    stream (server-sent events), as a browser would, until it is killed. ``connect`` and
    ``disconnect`` return once the console has seen the client come and go, so the blocks
    around them run with and without a browser as they claim."""

    READER = ("import sys, urllib.request\n"
              "with urllib.request.urlopen(sys.argv[1], timeout=60) as stream:\n"
              "    for line in stream:\n"
              "        pass\n")

    def __init__(self, emu: EmulatorThread) -> None:
        self.emu = emu
        self.connections = 0
        self._process: subprocess.Popen[bytes] | None = None

    def _connected(self) -> bool:
        console = getattr(self.emu.emulator, "console", None)
        if console is None:
            raise RuntimeError("this emulator has no console")
        return console.log.on_append is not None

    def _wait(self, connected: bool) -> None:
        deadline = time.monotonic() + 10
        while self._connected() != connected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"console stream: still {'dis' if connected else ''}"
                                   "connected after 10 s")
            time.sleep(0.01)

    def connect(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", self.READER, f"{self.emu.url}/console/api/live"],
            stdout=subprocess.DEVNULL)
        self._wait(True)
        self.connections += 1

    def disconnect(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
            self._wait(False)


# the kinds whose overhead over the in-process call is reported
OVERHEAD_KINDS = ("emulator_http", "emulator_boto3", "noop_http", "front_dryrun",
                  "noop_pyric_http", "iris_512mb_http", "iris_1thread_http",
                  "emulator_http_asyncio", "noop_http_asyncio", "emulator_http_streams",
                  "noop_http_streams", "emulator_http_console",
                  "emulator_http_no_console_hook")


def alternate(kinds: dict[str, Callable[[], None]], sinks: list[ReportSink],
              requests: int, probes: dict[str, CpuProbe] | None = None, block: int = 50,
              console: ConsoleClient | None = None
              ) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Time every call kind in alternating blocks (noise hits every kind alike), after a
    warm-up block of each (cold starts included) that is not counted; ms per call. With
    ``probes``, also the CPU (ns) that each probed kind's blocks took in the emulator's loop
    thread and in the function's environments: [loop, environments] summed over blocks."""
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[int]] = {kind: [0, 0] for kind in probes or {}}
    for call in kinds.values():
        for _ in range(block):
            call()
    for sink in sinks:
        sink.recording = True
    deadline = time.monotonic() + 150  # bounded whatever the machine does
    for _ in range(max(1, requests // block)):
        for kind, call in kinds.items():
            probe = (probes or {}).get(kind)
            if kind == CONSOLE_KIND and console is not None:
                console.connect()
            before = probe.read() if probe else (0, 0)
            for _ in range(block):
                start = time.perf_counter()
                call()
                samples[kind].append((time.perf_counter() - start) * 1000)
            if kind == CONSOLE_KIND and console is not None:
                console.disconnect()
            if probe:
                after = probe.read()
                cpu[kind][0] += after[0] - before[0]
                cpu[kind][1] += after[1] - before[1]
        if time.monotonic() > deadline:
            log("warm latency: time bound reached, stopping early")
            break
    for sink in sinks:
        sink.recording = False
    return samples, cpu


def cpu_probes(emulators: dict[str, EmulatorThread], kinds: dict[str, Callable[[], None]]
               ) -> dict[str, CpuProbe]:
    """A CPU probe per call kind whose CPU per request is reported."""
    probes = {"emulator_http": CpuProbe(emulators["main"], "iris"),
              "noop_http": CpuProbe(emulators["main"], "noop"),
              "noop_pyric_http": CpuProbe(emulators["main"], "noop-pyric"),
              "front_dryrun": CpuProbe(emulators["main"], "noop")}
    for other in SIDE_EMULATORS:
        if other in emulators:
            probes[f"emulator_http_{other}"] = CpuProbe(emulators[other], "iris")
            probes[f"noop_http_{other}"] = CpuProbe(emulators[other], "noop")
    probes[CONSOLE_KIND] = CpuProbe(emulators["main"], "iris")
    if UNOBSERVED_KIND in kinds:
        probes[UNOBSERVED_KIND] = CpuProbe(emulators["main"], UNOBSERVED)
    return probes


def warm_latency(emulators: dict[str, EmulatorThread], sinks: dict[str, ReportSink],
                 functions: dict[str, FunctionSettings], requests: int) -> dict[str, Any]:
    for key, emu in emulators.items():
        for name, settings in functions.items():
            if key == "main" or name in ("iris", "noop"):
                emu.add_function(settings)
    unobserved = emulators["main"].add_function(
        dataclasses.replace(functions["iris"], name=UNOBSERVED))
    if hasattr(unobserved, "observer"):
        unobserved.observer = None  # no console record: the invoke path before the console
    else:
        emulators["main"].remove_function(UNOBSERVED)
    kinds, close = warm_calls(emulators, functions["iris"])
    probes = cpu_probes(emulators, kinds)
    console: ConsoleClient | None = ConsoleClient(emulators["main"])
    try:
        console.connect()
        console.disconnect()
    except (RuntimeError, OSError, http.client.HTTPException):  # an emulator without one
        console = None
        del kinds[CONSOLE_KIND], probes[CONSOLE_KIND]
    try:
        samples, cpu = alternate(kinds, list(sinks.values()), requests, probes,
                                 console=console)
    finally:
        close()

    result: dict[str, Any] = {kind: summary(values) for kind, values in samples.items()}
    if console is not None:
        result[CONSOLE_KIND]["browser_connections"] = console.connections
    base = result["in_process"]
    for kind in OVERHEAD_KINDS:
        if kind in result:
            result[kind]["overhead_p50_ms"] = round(result[kind]["p50_ms"] - base["p50_ms"], 4)
            result[kind]["overhead_p99_ms"] = round(result[kind]["p99_ms"] - base["p99_ms"], 4)
    main = sinks["main"].durations
    result["environment_duration"] = {
        name: summary(main.get(name, [0.0])) for name in ("iris", "noop", "noop-pyric")}
    for other, label in (("asyncio", "noop (asyncio loop)"), ("streams", "noop (asyncio streams)")):
        if other in sinks:
            result["environment_duration"][label] = summary(
                sinks[other].durations.get("noop", [0.0]))
    # CPU per request (us): robust where the machine's load makes latency noisy
    result["cpu_us_per_request"] = {
        kind: {"emulator_loop": round(loop / 1000 / len(samples[kind]), 1),
               "environment": round(envs / 1000 / len(samples[kind]), 1)}
        for kind, (loop, envs) in cpu.items() if samples[kind]}
    result["event_loop"] = getattr(emulators["main"].emulator, "event_loop", "asyncio")
    result["http"] = getattr(emulators["main"].emulator, "http", "streams")
    result["memory_mb"] = functions["iris"].memory_mb
    result["floor"] = floor_split(result)
    result["goal_p50_overhead_ms"] = 0.5
    return result


def floor_split(warm: dict[str, Any]) -> dict[str, float]:
    """The do-nothing handler's round trip (p50s, ms), split into its parts:
    front HTTP = a DryRun invoke (client, front door, name resolution, JSON check, answer);
    Runtime API + minimal client = the REPORT Duration of the do-nothing handler under
    modelambda's pure-Python client (pyric.py: one keep-alive connection, no thread);
    awslambdaric's per-invoke work = its REPORT Duration minus that;
    queueing/handoff = the rest (function and environment bookkeeping, the loop's wake-ups,
    the event handed to the waiting /next)."""
    env = warm["environment_duration"]
    total = warm["noop_http"]["p50_ms"]
    front = warm["front_dryrun"]["p50_ms"]
    runtime_api = env["noop-pyric"]["p50_ms"]
    ric = env["noop"]["p50_ms"] - runtime_api
    return {"round_trip": round(total, 4), "front_http": round(front, 4),
            "runtime_api_http_and_minimal_client": round(runtime_api, 4),
            "awslambdaric_per_invoke": round(ric, 4),
            "queueing_handoff": round(total - front - env["noop"]["p50_ms"], 4),
            "handler_in_process": 0.0}


def warm_summary(warm: dict[str, Any]) -> dict[str, Any]:
    value = warm["emulator_http"]["overhead_p50_ms"]
    floor = warm["floor"]
    return {"warm_overhead_ms": {
        "value": value, "unit": "ms", "goal": warm["goal_p50_overhead_ms"],
        "met": value < warm["goal_p50_overhead_ms"],
        "detail": (f"p50 {warm['emulator_http']['p50_ms']:.3f} ms vs in-process "
                   f"{warm['in_process']['p50_ms']:.3f} ms; boto3 +"
                   f"{warm['emulator_boto3']['overhead_p50_ms']:.3f} ms; do-nothing round trip "
                   f"{floor['round_trip']:.3f} ms = front {floor['front_http']:.3f} + handoff "
                   f"{floor['queueing_handoff']:.3f} + Runtime API "
                   f"{floor['runtime_api_http_and_minimal_client']:.3f}"
                   f" + awslambdaric {floor['awslambdaric_per_invoke']:.3f}; loop "
                   f"{warm['event_loop']}, {warm['memory_mb']} MB")}}


# --- 2. cold start ------------------------------------------------------------------------


def run_process(python: str, code: str, event: dict[str, Any], task_root: Path,
                pythonpath: str, exits: list[float]) -> float:
    """A fresh process from start to its printed answer (ms), the moment the emulator's
    client gets its answer too; the time to the process's exit (interpreter teardown
    included, as cold_start.py times it) is appended to ``exits``."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(task_root), "PYTHONPATH": pythonpath,
           "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("MODELAMBDA_TASK_ROOT", "MODELAMBDA_OPT_DIR", "MODELAMBDA_TMP_DIR",
                 "VIRTUAL_ENV"):
        env.pop(name, None)
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-u", "-S", "-c", code, json.dumps(event), str(task_root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=task_root, stdin=subprocess.DEVNULL)
    killer = threading.Timer(120, proc.kill)  # bounded, whatever the process does
    killer.start()
    try:
        assert proc.stdout is not None
        seen = []
        answered = None
        for line in proc.stdout:
            seen.append(line)
            if answered is None and '"predictions"' in line:
                answered = (time.perf_counter() - start) * 1000
        code_ = proc.wait()
        exits.append((time.perf_counter() - start) * 1000)
    finally:
        killer.cancel()
    if code_ != 0 or answered is None:
        raise RuntimeError(f"a baseline sample failed ({code_}):\n{''.join(seen)[-3000:]}")
    return answered


class ColdEmulator:
    """Cold invokes through one emulator: each sample is the function under a new name."""

    def __init__(self, emu: EmulatorThread) -> None:
        self.emu = emu
        self.count = 0

    def sample(self, settings: FunctionSettings, event: dict[str, Any]) -> float:
        self.count += 1
        name = f"{settings.name}-cold{self.count}"
        self.emu.add_function(dataclasses.replace(settings, name=name))
        body = json.dumps(event).encode()
        try:
            start = time.perf_counter()
            status, headers, data = http_post(self.emu.emulator.port, INVOKE.format(name), body)
            elapsed = (time.perf_counter() - start) * 1000
            check_answer(status, headers, data, f"cold {name}")
        finally:
            drop_function(self.emu, name)
        return elapsed



def sandbox_pythonpath(settings: FunctionSettings) -> str:
    """The environment's module search path (task root, layers, Lambda's runtime packages)
    with host paths: the same staged dependencies, whether the build put them in the task
    root (a bundle) or in /opt (layers)."""
    return python_path(settings.python_version, str(settings.task_dir),
                       str(settings.opt_dir) if settings.opt_dir else None,
                       str(settings.runtime_dir))


def has_target_bytecode(task_dir: Path, python_version: str) -> bool:
    tag = "cpython-" + python_version.replace(".", "")
    return any((task_dir / "modelambda" / "runtime" / "__pycache__").glob(f"app.{tag}*.pyc"))


def cold_starts(emu: EmulatorThread, cases: dict[str, dict[str, Any]], runs: int,
                python312: str) -> dict[str, Any]:
    cold = ColdEmulator(emu)
    results: dict[str, Any] = {}
    for model, case in cases.items():
        settings: FunctionSettings = case["settings"]
        event = case["event"]
        path = sandbox_pythonpath(settings)
        task = Path(settings.task_dir)
        exits: dict[str, list[float]] = {"modelambda_bare_process": [], "hand_written": []}
        columns: dict[str, Callable[[], float]] = {
            "emulator": partial(cold.sample, settings, event),
            # modelambda's handler from the very task root the emulator runs, minus the
            # emulator (bwrap, awslambdaric, the Runtime API, the front)
            "modelambda_bare_process": partial(run_process, python312, cold_start.OURS, event,
                                               task, path, exits["modelambda_bare_process"]),
            # the hand-written handler reads the model file the build shipped, from the
            # function's unpacked task root
            "hand_written": partial(run_process, python312, case["hand"], event, task, path,
                                    exits["hand_written"]),
        }
        if case.get("precompiled") is not None:
            columns["emulator_precompiled"] = partial(cold.sample, case["precompiled"], event)
        samples: dict[str, list[float]] = {column: [] for column in columns}
        for fn in columns.values():  # page cache, not measured
            fn()
        for _ in range(runs):  # alternate, so noise hits every column alike
            for column, fn in columns.items():
                samples[column].append(fn())
        medians = {column: statistics.median(values) for column, values in samples.items()}
        hand = medians["hand_written"]
        results[model] = {
            "runs": runs,
            **{f"{column}_ms": round(value, 1) for column, value in medians.items()},
            "ratio_emulator_vs_hand_written": round(medians["emulator"] / hand, 3),
            "ratio_bare_vs_hand_written": round(medians["modelambda_bare_process"] / hand, 3),
            "task_has_target_bytecode": case.get("precompiled") is None,
            # to the process's exit, teardown included (how cold_start.py times a sample)
            **{f"{column}_to_exit_ms": round(statistics.median(values[1:]), 1)
               for column, values in exits.items()},
            "samples_ms": {column: [round(v, 1) for v in values]
                           for column, values in samples.items()},
        }
        if "emulator_precompiled" in medians:
            results[model]["ratio_precompiled_vs_hand_written"] = round(
                medians["emulator_precompiled"] / hand, 3)
        log(f"cold {model}: " + ", ".join(f"{c} {v:.0f} ms" for c, v in medians.items()))
        gain = cold_start.session_gain(python312, *cold_start.onnx_pair(case["service"], task),
                                       runs, path)
        results[model]["build_optimisation"] = gain
        log(cold_start.gain_line(model, gain))
    results["python"] = python312
    results["goal_ratio_minilm"] = 1.0
    return results


# --- 3. throughput ------------------------------------------------------------------------


def wrk_run(url: str, body: dict[str, Any], connections: int, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "WRK_BODY": json.dumps(body)}
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "5s",
            "-s", str(WRK_SCRIPT), url]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 60)
    match = re.search(r"^WRK_RESULT (.*)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    raw = {key: float(value) for key, value in
           (item.split("=") for item in match.group(1).split())}
    errors = int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"])
    return {"concurrency": connections, "seconds": seconds,
            "requests": int(raw["requests"]),
            "req_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "p50_ms": round(raw["p50_us"] / 1000, 3), "p90_ms": round(raw["p90_us"] / 1000, 3),
            "p99_ms": round(raw["p99_us"] / 1000, 3), "non_2xx": int(raw["status"]),
            "socket_errors": errors}


def env_invocations(emu: EmulatorThread, name: str) -> dict[str, int]:
    described = emu.describe()
    for function in described["functions"]:
        if function["name"] == name:
            return {env["id"]: env["invocations"] for env in function["environments"]}
    return {}


def prewarm(port: int, path: str, body: bytes, count: int, attempts: int = 3) -> None:
    """``count`` concurrent requests: with no idle environment, each one starts its own.
    On a loaded machine some of 16 simultaneous cold starts can run past the init limit:
    the round is sent again (the environments that started are reused, the rest start)."""
    for attempt in range(1, attempts + 1):
        try:
            return _prewarm_round(port, path, body, count)
        except RuntimeError as exc:
            if attempt == attempts:
                raise
            log(f"prewarm round {attempt} of {count}: {str(exc)[:200]}; sending it again")


def _prewarm_round(port: int, path: str, body: bytes, count: int) -> None:
    errors: list[str] = []

    def one() -> None:
        try:
            status, headers, data = http_post(port, path, body, timeout=120)
            check_answer(status, headers, data, "prewarm")
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    if errors:
        raise RuntimeError(f"prewarm failed: {errors[:3]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MLSERVER_CHECK = """
import importlib.metadata as meta
import mlserver, numpy, onnxruntime, uvloop
print(meta.version("mlserver"), meta.version("uvloop"), onnxruntime.__version__)
"""


def venv_problem(venv: Path) -> str | None:
    """Why ``venv`` cannot serve this benchmark's MLServer, or None when it can: it must
    import mlserver 1.7.1, uvloop 0.21.0 (MLServer 1.7.1's workers fail with uvloop 0.22:
    SeldonIO/MLServer#2286), numpy and onnxruntime (the runtime in mlserver_iris)."""
    python = venv / "bin" / "python"
    if not python.exists():
        return "no venv" if not venv.exists() else f"no interpreter at {python}"
    try:
        done = subprocess.run([str(python), "-c", MLSERVER_CHECK], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"its interpreter does not run: {exc}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"the import check exited {done.returncode}"
    mlserver_version, uvloop_version, _ = done.stdout.split()
    if mlserver_version != "1.7.1" or uvloop_version != "0.21.0":
        return f"mlserver {mlserver_version} and uvloop {uvloop_version}, wanted 1.7.1 and 0.21.0"
    if not (venv / "bin" / "mlserver").is_file():
        return "no mlserver command"
    return None


def install_mlserver(venv: Path, fresh: bool) -> None:
    """pip install MLSERVER_PACKAGES into ``venv`` (made anew first when ``fresh``)."""
    if fresh:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300,
                       capture_output=True)
    python = str(venv / "bin" / "python")
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode:
        subprocess.run([python, "-m", "ensurepip"], check=True, timeout=300,
                       capture_output=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *MLSERVER_PACKAGES], check=True,
                   timeout=900, capture_output=True)


def mlserver_venv() -> tuple[Path | None, str]:
    """(the venv with MLServer, "") after checking it, repairing or recreating it if needed;
    (None, why) when that is impossible."""
    problem = venv_problem(MLSERVER_VENV)
    if problem is None:
        return MLSERVER_VENV, ""
    errors = []
    # a venv whose interpreter runs is repaired in place (e.g. one made without onnxruntime);
    # otherwise, or if that did not help, it is made anew
    attempts = [False, True] if (MLSERVER_VENV / "bin" / "python").exists() else [True]
    for fresh in attempts:
        log(f"MLServer venv {MLSERVER_VENV}: {problem}; "
            f"{'creating it' if fresh else 'repairing it'} (pip install "
            f"{' '.join(MLSERVER_PACKAGES)}; a minute or two)")
        try:
            install_mlserver(MLSERVER_VENV, fresh)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
            errors.append(f"{exc}: {text.strip()[-800:]}")
        problem = venv_problem(MLSERVER_VENV)
        if problem is None:
            return MLSERVER_VENV, ""
    why = " | ".join(errors) or "pip succeeded but the check still fails"
    return None, (f"the MLServer venv {MLSERVER_VENV} is unusable ({problem}) and could not "
                  f"be repaired or made: {why}")


def session_options(settings: FunctionSettings) -> dict[str, Any]:
    """The onnxruntime session settings the function's ONNX backend uses (its
    ``[model.options]``, else one thread per Lambda vCPU for its memory, and no spinning), for
    MLServer's runtime: with onnxruntime's defaults (a thread per core, spinning) it is
    several times slower here, which is not a fair comparison."""
    from modelambda.limits import MEMORY_MB_PER_VCPU
    from modelambda.runtime.config import load_config
    from modelambda.runtime.paths import Paths

    options = load_config(Paths(task_root=str(settings.task_dir)), environ={}).model.options
    vcpus = max(1, min(os.cpu_count() or 1, settings.memory_mb // MEMORY_MB_PER_VCPU))
    return {"intra_op_threads": int(options.get("intra_op_threads") or vcpus),
            "allow_spinning": bool(options.get("allow_spinning", False))}


def right_v2_answer(status: int, data: bytes) -> bool:
    """Whether a v2 inference answer is iris's right one (class 0, three probabilities)."""
    try:
        answer = json.loads(data) if status == 200 else {}
    except ValueError:
        return False
    outputs = {o.get("name"): o.get("data") for o in answer.get("outputs", [])
               if isinstance(o, dict)} if isinstance(answer, dict) else {}
    return outputs.get("label") == [0] and len(outputs.get("probabilities") or []) == 3


class MLServer:
    """MLServer on 127.0.0.1 serving a copy of benchmarks/mlserver_iris whose model file is
    ``model_file`` and whose onnxruntime session uses ``session`` (see iris_runtime.py);
    stopped by its own process group."""

    def __init__(self, venv: Path, workdir: Path, model_file: Path,
                 session: dict[str, Any] | None = None) -> None:
        self.venv = venv
        self.port = free_port()
        self.log_path = workdir / "mlserver.log"
        self.repo = workdir / "mlserver-iris"
        self.repo.mkdir()
        for name in ("settings.json", "iris_runtime.py"):
            shutil.copy(MLSERVER_DIR / name, self.repo / name)
        model_settings = json.loads((MLSERVER_DIR / "model-settings.json").read_text())
        model_settings["parameters"]["uri"] = str(model_file.resolve())
        model_settings["parameters"]["extra"] = session or {}
        (self.repo / "model-settings.json").write_text(json.dumps(model_settings, indent=1))
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) of ``mlserver start`` on this server's port and repository."""
        env = {**os.environ, "MLSERVER_HOST": "127.0.0.1", "MLSERVER_HTTP_PORT": str(self.port),
               "MLSERVER_GRPC_PORT": str(free_port()),
               "MLSERVER_METRICS_PORT": str(free_port())}
        env.pop("PYTHONPATH", None)
        return [str(self.venv / "bin" / "mlserver"), "start", str(self.repo)], env

    def start(self, timeout_s: float = 90) -> float:
        """Start it; the ms until the model's own ready endpoint says 200 and a real
        inference answers right (MLServer's /v2/health/ready can say 200 without the model)."""
        argv, env = self.command()
        started = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.repo, start_new_session=True)
        deadline = started + timeout_s
        last = "no answer yet"
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"MLServer exited with code {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", "/v2/models/iris/ready")
                    ready = conn.getresponse()
                    ready.read()
                finally:
                    conn.close()
                last = f"GET /v2/models/iris/ready: {ready.status}"
                if ready.status == 200:
                    self.check_answer()
                    return (time.perf_counter() - started) * 1000
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise RuntimeError(f"MLServer not ready after {timeout_s:g} s ({last})")

    def check_answer(self) -> None:
        """One real inference; raises unless it gives iris's right answer."""
        status, _, data = http_post(self.port, "/v2/models/iris/infer",
                                    json.dumps(IRIS_V2).encode(), timeout=30)
        if not right_v2_answer(status, data):
            raise RuntimeError(f"MLServer answered wrongly: {status} {data[:300]!r}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group we started for it
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def mlserver_failed(ml: dict[str, Any], reason: str, server: MLServer | None) -> None:
    """Record and say at once that MLServer failed, why, and its log's tail."""
    ml["log_tail"] = server.tail(40) if server is not None else ""
    errors = [line.strip() for line in ml["log_tail"].splitlines()
              if re.search(r"(Error|Exception)\b", line)]
    if errors:  # the log's tail is mostly shutdown noise: name the error itself
        reason += f"; last error in its log: {errors[-1][:300]}"
    ml["failed"] = reason
    log(f"MLServer FAILED: {reason}" + (
        f"\n  its log ({server.log_path}) ends:\n    " + ml["log_tail"].replace("\n", "\n    ")
        if server is not None and ml["log_tail"] else ""))


def start_mlserver(workdir: Path, model_file: Path, session: dict[str, Any]
                   ) -> tuple[MLServer | None, dict[str, Any]]:
    ml: dict[str, Any] = {"version": "1.7.1", "model_file": str(model_file),
                          "onnxruntime_session": session, "runs": []}
    venv, why = mlserver_venv()
    if venv is None:
        mlserver_failed(ml, why, None)
        return None, ml
    server = MLServer(venv, workdir, model_file, session)
    try:
        ready_ms = server.start()
    except RuntimeError as exc:
        server.stop()
        mlserver_failed(ml, f"did not start or answer: {exc}", server)
        return None, ml
    ml.update({"url": f"http://127.0.0.1:{server.port}/v2/models/iris/infer",
               "start_to_ready_ms": round(ready_ms),
               "settings": json.loads((MLSERVER_DIR / "settings.json").read_text())})
    return server, ml


def drop_function(emu: EmulatorThread, name: str) -> None:
    """Stop a function's environments and forget it (so the name can be added again)."""
    if hasattr(emu, "remove_function"):
        emu.remove_function(name)
        return

    async def drop() -> None:  # emulators without remove_function
        function = emu.emulator.functions.pop(name)
        await function.stop(0)

    emu.call(drop(), timeout=60)


def throughput(emu: EmulatorThread, settings: FunctionSettings, model_file: Path,
               workdir: Path, seconds: float, warmup_s: float, with_mlserver: bool,
               streams: EmulatorThread | None = None) -> dict[str, Any]:
    """wrk at each concurrency, the emulator then MLServer, so that a change in the machine's
    load between levels hits both alike. The function is added afresh for each level with
    that many warm environments, and removed before MLServer's turn: idle environments still
    cost the emulator CPU (memory polling), which would otherwise be charged to MLServer.
    MLServer serves ``model_file``, the model file the function ships, with the function's
    onnxruntime session settings."""
    # with control groups on, the function's CPU share follows its memory size: give it the
    # machine's cores (3538 MB and up for 2 vCPUs), as MLServer has them
    settings = full_cpu(settings)
    server: MLServer | None = None
    ml: dict[str, Any] = {"skipped": "--no-mlserver", "runs": []}
    if with_mlserver:
        server, ml = start_mlserver(workdir, model_file, session_options(settings))
    try:
        limit = max(CONCURRENCY)
        body = json.dumps(IRIS_EVENT).encode()

        def record(side: EmulatorThread) -> dict[str, Any]:
            return {"url": f"{side.url}/fn/iris/", "reserved_concurrency": limit, "runs": [],
                    "memory_mb": settings.memory_mb,
                    "event_loop": getattr(side.emulator, "event_loop", "asyncio"),
                    "http": getattr(side.emulator, "http", "streams")}
        emulator = record(emu)
        # the lever's baseline in turn with the emulator at each level: asyncio streams
        sides = [(emu, emulator)]
        if streams is not None:
            sides.append((streams, record(streams)))
        for level, connections in enumerate(CONCURRENCY):
            # which side goes first alternates, so that a drift in load hits both alike
            for side, rec in sides if level % 2 == 0 else sides[::-1]:
                run = emulator_level(side, settings, limit, body, connections, seconds,
                                     warmup_s, rec)
                if run is not None:
                    log(f"emulator ({rec['http']}) c={connections}: "
                        f"{run['req_per_s']} req/s, p50 {run['p50_ms']} ms, "
                        f"{run['environments_used']} environments")
            if server is not None:
                try:
                    wrk_run(ml["url"], IRIS_V2, connections, warmup_s)
                    time.sleep(0.5)
                    result = wrk_run(ml["url"], IRIS_V2, connections, seconds)
                    errors = result["non_2xx"] + result["socket_errors"]
                    if result["requests"] == 0 or 2 * errors > result["requests"]:
                        raise RuntimeError(f"{errors} of {result['requests']} requests failed")
                    server.check_answer()  # still up, still right
                except (RuntimeError, OSError, http.client.HTTPException) as exc:
                    mlserver_failed(ml, f"at concurrency {connections}: {exc}", server)
                    server.stop()
                    server = None
                    continue
                ml["runs"].append(result)
                log(f"MLServer c={connections}: {result['req_per_s']} req/s, "
                    f"p50 {result['p50_ms']} ms")
    finally:
        if server is not None:
            server.stop()
    out = {"emulator": emulator, "mlserver": ml}
    if len(sides) > 1:
        out["emulator_streams"] = sides[1][1]
    return out


def emulator_level(emu: EmulatorThread, settings: FunctionSettings, limit: int, body: bytes,
                   connections: int, seconds: float, warmup_s: float,
                   emulator: dict[str, Any]) -> dict[str, Any] | None:
    """One wrk run of the emulator at ``connections``, appended to ``emulator["runs"]``; None
    (and the failure in ``emulator["failed"]``) when it failed. The function is added with
    that many warm environments and dropped after."""
    port = emu.emulator.port
    # a 60 s timeout: 16 cold starts at once on a loaded 2-core machine can run past
    # the 10 s init limit, and Lambda then retries the init inside the invocation,
    # under the function's timeout; only the warm environments are measured
    emu.add_function(dataclasses.replace(settings, reserved_concurrency=limit,
                                         timeout_s=max(settings.timeout_s, 60)))
    try:
        prewarm(port, "/fn/iris/", body, connections)
        check_answer(*http_post(port, "/fn/iris/", body), "Function URL")
        wrk_run(emulator["url"], IRIS_EVENT, connections, warmup_s)
        time.sleep(0.5)  # let the warm-up's last invocations finish (or they hold envs)
        before = env_invocations(emu, "iris")
        result = wrk_run(emulator["url"], IRIS_EVENT, connections, seconds)
        after = env_invocations(emu, "iris")
    except RuntimeError as exc:  # this level is said; the others are still measured
        emulator.setdefault("failed", {})[str(connections)] = str(exc)[:500]
        log(f"emulator c={connections} FAILED: {str(exc)[:300]}")
        return None
    finally:
        drop_function(emu, "iris")
    result["environments_used"] = sum(1 for env, n in after.items()
                                      if n > before.get(env, 0))
    result["environments_total"] = len(after)
    emulator["runs"].append(result)
    return result


def throughput_summary(tput: dict[str, Any]) -> dict[str, Any]:
    """One row per concurrency: the emulator's req/s over MLServer's (goal >= 1.0, with a
    p99 no worse); no row where MLServer did not run."""
    ml_runs = {r["concurrency"]: r for r in tput["mlserver"].get("runs", [])}
    rows: dict[str, Any] = {}
    for run in tput["emulator"]["runs"]:
        c = run["concurrency"]
        ml = ml_runs.get(c)
        if ml is None or not ml["req_per_s"]:
            continue
        ratio = run["req_per_s"] / ml["req_per_s"]
        rows[f"throughput_c{c}"] = {
            "value": round(ratio, 3), "unit": "x MLServer", "goal": 1.0,
            "met": ratio >= 1.0 and run["p99_ms"] <= ml["p99_ms"],
            "detail": (f"{run['req_per_s']:.0f} vs {ml['req_per_s']:.0f} req/s, p99 "
                       f"{run['p99_ms']:.2f} vs {ml['p99_ms']:.2f} ms "
                       f"({tput['emulator']['memory_mb']} MB)")}
    return rows


# --- 4. up to ready against MLServer's start to ready -----------------------------------

UP_POLL_S = 0.02  # both sides are polled alike


def first_answer_ms(argv: list[str], env: dict[str, str], cwd: Path, port: int,
                    log_path: Path, timeout_s: float = 180) -> float:
    """Start ``argv`` (its own process group) and POST the iris v2 request to
    ``/v2/models/iris/infer`` on ``port`` every UP_POLL_S until the answer is right: ms from
    the command's start to that answer. The process is stopped (SIGINT, then SIGKILL) after."""
    body = json.dumps(IRIS_V2).encode()
    started = time.perf_counter()
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
    try:
        last = "no answer yet"
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode} before answering; "
                                   f"its log: {log_path}")
            try:
                status, _, data = http_post(port, "/v2/models/iris/infer", body, timeout=30)
                if right_v2_answer(status, data):
                    return (time.perf_counter() - started) * 1000
                last = f"{status} {data[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}"
            time.sleep(UP_POLL_S)
        raise RuntimeError(f"no right answer after {timeout_s:g} s ({last}); log {log_path}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # up drains and stops on Ctrl-C, as a user's
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def up_command(service: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """``modelambda up SERVICE --port PORT``, run from this checkout's source (so that the
    benchmark measures the code beside it, e.g. an older commit's in a second worktree)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return [sys.executable, "-m", "modelambda.cli.main", "up", str(service), "--port",
            str(port)], env


def up_vs_mlserver(service: Path, settings: FunctionSettings, model_file: Path, workdir: Path,
                   runs: int) -> dict[str, Any]:
    """Command start to the first right answer over HTTP (the same v2 request, polled alike),
    for ``modelambda up`` with its build cache warm, and for ``mlserver start`` on the same
    model file with the function's onnxruntime settings, taking turns; and ``up`` once with a
    cold build cache (the service's .modelambda/ removed; the shared dependency cache stays
    warm, as after any first build on the machine)."""
    venv, why = mlserver_venv()
    # modelambda's bytecode, as `pip install` compiles it (MLServer's venv has its own): a
    # source checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~80 modules
    # at every start (0.7 s here), which no installed modelambda does
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "modelambda")],
                   check=True, timeout=600, capture_output=True)
    result: dict[str, Any] = {"runs": runs, "poll_s": UP_POLL_S, "up_ms": [], "mlserver_ms": [],
                              "definition": "command start to the first right answer of "
                                            "POST /v2/models/iris/infer"}
    session = session_options(settings)
    for i in range(runs):
        port = free_port()
        argv, env = up_command(service, port)
        result["up_ms"].append(round(first_answer_ms(argv, env, service, port,
                                                     workdir / "up.log")))
        if venv is not None:
            (workdir / f"ml-ready-{i}").mkdir()
            server = MLServer(venv, workdir / f"ml-ready-{i}", model_file, session)
            argv, env = server.command()
            result["mlserver_ms"].append(round(first_answer_ms(argv, env, server.repo,
                                                               server.port, server.log_path)))
        log(f"up to ready: up {result['up_ms'][-1]} ms"
            + (f", MLServer {result['mlserver_ms'][-1]} ms" if result["mlserver_ms"] else ""))
    if venv is None:
        result["mlserver_failed"] = why
    shutil.rmtree(service / ".modelambda", ignore_errors=True)
    port = free_port()
    argv, env = up_command(service, port)
    result["up_cold_cache_ms"] = round(first_answer_ms(argv, env, service, port,
                                                       workdir / "up.log", timeout_s=900))
    result["up_p50_ms"] = statistics.median(result["up_ms"])
    if result["mlserver_ms"]:
        result["mlserver_p50_ms"] = statistics.median(result["mlserver_ms"])
        result["ratio"] = round(result["up_p50_ms"] / result["mlserver_p50_ms"], 3)
    return result


def ready_summary(ready: dict[str, Any]) -> dict[str, Any]:
    if "ratio" not in ready:
        return {}
    return {"up_ready_vs_mlserver": {
        "value": ready["ratio"], "unit": "x MLServer", "goal": 0.25,
        "met": ready["ratio"] <= 0.25,
        "detail": (f"up {ready['up_p50_ms']:.0f} ms (build cache warm) vs MLServer "
                   f"{ready['mlserver_p50_ms']:.0f} ms, median of {ready['runs']}; up with a "
                   f"cold build cache {ready['up_cold_cache_ms']} ms")}}


# --- the table ----------------------------------------------------------------------------


def table_warm(warm: dict[str, Any], out: list[str]) -> None:
    if not warm:
        return
    out.append("\n1. Warm invoke, iris, sequential, one keep-alive connection "
               f"({warm['in_process']['n']} requests each, alternating blocks of 50; "
               f"event loop {warm['event_loop']}, HTTP {warm.get('http', 'streams')}, "
               f"functions at {warm['memory_mb']} MB)")
    out.append(f"   {'path':48s} {'p50 ms':>8s} {'p99 ms':>8s} {'+p50 ms':>8s} "
               f"{'+p99 ms':>8s}")
    labels = [("in_process", "in-process App.handle (baseline)"),
              ("emulator_http", "emulator Invoke API, http.client"),
              ("emulator_boto3", "emulator Invoke API, boto3 lambda client"),
              ("noop_http", "  diag: do-nothing handler"),
              ("front_dryrun", "  diag: DryRun invoke (the front door alone)"),
              ("noop_pyric_http", "  diag: do-nothing, modelambda's pyric client"),
              ("iris_512mb_http", "  diag: iris at 512 MB (its own CPU share)"),
              ("iris_1thread_http", "  diag: iris, onnxruntime 1 thread"),
              ("emulator_http_asyncio", "  lever: iris on asyncio's loop (no uvloop)"),
              ("noop_http_asyncio", "  lever: do-nothing on asyncio's loop"),
              ("emulator_http_streams", "  lever: iris, asyncio streams (no httptools)"),
              ("noop_http_streams", "  lever: do-nothing, asyncio streams"),
              (UNOBSERVED_KIND, "emulator Invoke API, console record off"),
              (CONSOLE_KIND, "emulator Invoke API, console open (live)")]
    for key, label in labels:
        if key not in warm:
            continue
        row = warm[key]
        extra = (f" {row['overhead_p50_ms']:8.3f} {row['overhead_p99_ms']:8.3f}"
                 if "overhead_p50_ms" in row else "")
        out.append(f"   {label:48s} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f}{extra}")
    for name, row in warm["environment_duration"].items():
        out.append(f"   {'  diag: REPORT Duration (env side), ' + name:48s} "
                   f"{row['p50_ms']:8.3f} {row['p99_ms']:8.3f}")
    cpu = warm.get("cpu_us_per_request", {})
    if cpu:
        out.append("   CPU per request, us (emulator loop thread | environment processes): "
                   + "; ".join(f"{kind} {row['emulator_loop']:.0f} | {row['environment']:.0f}"
                               for kind, row in cpu.items()))
    floor = warm["floor"]
    out.append(f"   do-nothing round trip {floor['round_trip']:.3f} ms (p50s) = front HTTP "
               f"{floor['front_http']:.3f} + queueing/handoff {floor['queueing_handoff']:.3f}"
               f"\n     + Runtime API HTTP with a minimal client "
               f"{floor['runtime_api_http_and_minimal_client']:.3f} + awslambdaric's "
               f"per-invoke work {floor['awslambdaric_per_invoke']:.3f} + handler ~0")
    out.append(f"   goal: p50 overhead < {warm['goal_p50_overhead_ms']} ms -> "
               f"{warm['emulator_http']['overhead_p50_ms']:.3f} ms (http.client)")


def table_cold(cold: dict[str, Any], out: list[str]) -> None:
    if cold:
        out.append(f"\n2. Cold start, invoke to answer, median of {cold['iris']['runs']} "
                   f"(python {cold['python']})")
        out.append(f"   {'model':8s} {'emulator':>9s} {'hand':>9s} {'ratio':>6s} "
                   f"{'| bare ours':>11s} {'ratio':>6s} {'| emu+pyc':>10s} {'ratio':>6s}")
        for model in ("iris", "minilm"):
            row = cold[model]
            line = (f"   {model:8s} {row['emulator_ms']:9.1f} {row['hand_written_ms']:9.1f} "
                    f"{row['ratio_emulator_vs_hand_written']:6.3f} "
                    f"| {row['modelambda_bare_process_ms']:9.1f} "
                    f"{row['ratio_bare_vs_hand_written']:6.3f} ")
            if "emulator_precompiled_ms" in row:
                line += (f"| {row['emulator_precompiled_ms']:8.1f} "
                         f"{row['ratio_precompiled_vs_hand_written']:6.3f}")
            else:
                line += "| (built with 3.12 bytecode)"
            out.append(line)
        out.append("   to process exit (teardown included, as cold_start.py times it): hand\n     "
                   + ", ".join(f"{m} {cold[m]['hand_written_to_exit_ms']:.0f}"
                               for m in ("iris", "minilm"))
                   + "; bare ours " + ", ".join(
                       f"{m} {cold[m]['modelambda_bare_process_to_exit_ms']:.0f}"
                       for m in ("iris", "minilm")) + " ms")
        out.append("   (ms to the answer; hand = cold_start.py's hand-written handler, bare ours "
                   "= modelambda's\n    handler, each a fresh python3.12 -S process on the "
                   "environment's module path; emu+pyc =\n    the emulator with the task dir "
                   "byte-compiled for 3.12 first, when the build did not;\n    every column "
                   "loads the model file the build ships; goal: MiniLM ratio <= 1.0)")
        for model in ("iris", "minilm"):
            if "build_optimisation" in cold[model]:
                out.append("   " + cold_start.gain_line(model, cold[model]["build_optimisation"]))


def table_http_lever(tput: dict[str, Any], out: list[str]) -> None:
    """The httptools lever: the emulator on asyncio streams, run in turn at each level."""
    streams = {r["concurrency"]: r for r in tput.get("emulator_streams", {}).get("runs", [])}
    for run in tput["emulator"]["runs"]:
        old = streams.get(run["concurrency"])
        if old and old["req_per_s"]:
            out.append(f"   lever c={run['concurrency']}: {tput['emulator']['http']} "
                       f"{run['req_per_s']:.0f} req/s p99 {run['p99_ms']:.2f} ms vs asyncio "
                       f"streams {old['req_per_s']:.0f} req/s p99 {old['p99_ms']:.2f} ms: "
                       f"{run['req_per_s'] / old['req_per_s']:.3f}x")


def table_throughput(tput: dict[str, Any], out: list[str]) -> None:
    if tput:
        out.append("\n3. Throughput, iris, wrk -t1, "
                   f"{(tput['emulator']['runs'] or [{'seconds': 0}])[0]['seconds']:g} s per "
                   "concurrency (function at "
                   f"{tput['emulator']['memory_mb']} MB: the machine's cores; event loop "
                   f"{tput['emulator']['event_loop']})")
        ml = tput.get("mlserver", {})
        ml_runs = {r["concurrency"]: r for r in ml.get("runs", [])}
        out.append(f"   {'conc':>4s} {'emu req/s':>10s} {'emu p50':>8s} {'p99':>7s} {'envs':>5s} "
                   f"{'err':>4s} {'| ML req/s':>11s} {'ML p50':>8s} {'p99':>7s} {'err':>4s} "
                   f"{'emu/ML':>7s}")
        missing = "not run" if "skipped" in ml else "failed"
        for run in tput["emulator"]["runs"]:
            c = run["concurrency"]
            row = (f"   {c:4d} {run['req_per_s']:10.1f} {run['p50_ms']:8.2f} "
                   f"{run['p99_ms']:7.2f} {run['environments_used']:5d} "
                   f"{run['non_2xx'] + run['socket_errors']:4d}")
            if c in ml_runs:
                m = ml_runs[c]
                row += (f" | {m['req_per_s']:9.1f} {m['p50_ms']:8.2f} {m['p99_ms']:7.2f} "
                        f"{m['non_2xx'] + m['socket_errors']:4d} "
                        f"{run['req_per_s'] / m['req_per_s']:7.3f}")
            else:
                row += f" | {missing:>9s} {missing:>8s} {'':7s} {'':4s} {missing:>7s}"
            out.append(row)
        out.append("   (p50 in ms; envs = emulator environments that served requests; "
                   "err = non-2xx + socket errors)")
        table_http_lever(tput, out)
        for level, why in tput["emulator"].get("failed", {}).items():
            out.append(f"   emulator c={level} FAILED: {why[:300]}")
        if "skipped" in ml:
            out.append(f"   MLServer not run: {ml['skipped']}")
        elif "failed" in ml:
            out.append(f"   MLServer FAILED, so there is no comparison: {ml['failed']}")
            if ml.get("log_tail"):
                out.append("   its log ends:\n     "
                           + "\n     ".join(ml["log_tail"].splitlines()[-10:]))
        else:
            session = ml.get("onnxruntime_session", {})
            out.append(f"   (MLServer 1.7.1, parallel_workers 0, serving the function's shipped "
                       f"model file with its onnxruntime\n    settings: "
                       f"{session.get('intra_op_threads')} intra-op thread(s), spinning "
                       f"{'on' if session.get('allow_spinning') else 'off'}; start to ready "
                       f"{ml.get('start_to_ready_ms')} ms)")


def table_ready(ready: dict[str, Any], out: list[str]) -> None:
    if not ready:
        return
    out.append(f"\n4. Start to ready: {ready['definition']}, polled every "
               f"{ready['poll_s'] * 1000:.0f} ms, taking turns")
    out.append(f"   modelambda up (build cache warm)   {ready['up_p50_ms']:8.0f} ms  "
               f"(runs {ready['up_ms']})")
    if "mlserver_p50_ms" in ready:
        out.append(f"   mlserver start (same model file)   {ready['mlserver_p50_ms']:8.0f} ms  "
                   f"(runs {ready['mlserver_ms']})")
        out.append(f"   ratio up / MLServer {ready['ratio']:.3f} (goal <= 0.25)")
    else:
        out.append(f"   MLServer FAILED: {ready.get('mlserver_failed')}")
    out.append(f"   modelambda up, cold build cache (.modelambda/ removed; dependency cache "
               f"warm) {ready['up_cold_cache_ms']} ms")


def print_table(results: dict[str, Any]) -> None:
    out: list[str] = []
    table_warm(results.get("warm_latency", {}), out)
    table_cold(results.get("cold_start", {}), out)
    table_throughput(results.get("throughput", {}), out)
    table_ready(results.get("ready", {}), out)
    for section, why in results.get("failed", {}).items():
        out.append(f"\n{section} FAILED: {why}")
    out.append(f"\nload average (1 min) before the run: {results['load_average_start'][0]:.2f} "
               f"on {results['machine']['cpus']} CPUs (other work on the machine makes every "
               "number noisier)")
    print("\n".join(out), flush=True)


# --- main ---------------------------------------------------------------------------------


def add_side_emulators(stack: contextlib.ExitStack, emulators: dict[str, EmulatorThread],
                       sinks: dict[str, ReportSink]) -> None:
    """Beside "main", an emulator one lever back for each lever "main" has on: asyncio's
    loop instead of uvloop, asyncio streams instead of httptools (SIDE_EMULATORS)."""
    main = emulators["main"].emulator
    sides = {"asyncio": ({"loop": "asyncio"}, getattr(main, "event_loop", "") == "uvloop"),
             "streams": ({"http": "streams"}, getattr(main, "http", "") == "protocol")}
    for name, (options, applies) in sides.items():
        if applies:
            sinks[name] = ReportSink()
            emulators[name] = stack.enter_context(EmulatorThread(sink=sinks[name], **options))


def main() -> None:
    parser = argparse.ArgumentParser(description="the emulator against its baselines")
    parser.add_argument("--quick", action="store_true", help="fewer samples, 5 s wrk runs")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "emulator.json")
    parser.add_argument("--no-mlserver", action="store_true", help="skip the MLServer part")
    parser.add_argument("--skip", action="append", default=[], metavar="SECTIONS",
                        help="skip sections: warm, cold, throughput, ready (repeat, or "
                             "comma-separated: --skip cold,throughput)")
    args = parser.parse_args()
    args.skip = {part for item in args.skip for part in item.split(",") if part}
    unknown = args.skip - {"warm", "cold", "throughput", "ready"}
    if unknown:
        parser.error(f"--skip {','.join(sorted(unknown))}: sections are warm, cold, "
                     "throughput, ready")
    requests = 500 if args.quick else 2000
    runs = 3 if args.quick else 7
    seconds, warmup_s = (5.0, 1.0) if args.quick else (10.0, 2.0)
    if "throughput" not in args.skip and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or --skip throughput)")

    python312 = find_python("python3.12")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick, "load_average_start": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "function_python": python312},
    }
    summaries: dict[str, Any] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelambda-bench-") as tmp_name:
        tmp = Path(tmp_name)
        log("building the services as the emulator runs them (dependencies are cached)")
        iris, _ = function_for(copy_service(IRIS_DIR, tmp / "iris"))
        results["machine"]["sandbox"] = "bwrap" if shutil.which("bwrap") else "plain"

        if "warm" not in args.skip:
            iris_1thread, _ = function_for(copy_service(
                IRIS_DIR, tmp / "iris-1thread", name="iris-1thread",
                extra_toml="[model.options]\nintra_op_threads = 1\ninter_op_threads = 1\n"))
            noop = noop_function(full_cpu(iris), tmp / "noop")
            functions = {
                "iris": full_cpu(iris), "noop": noop,
                "noop-pyric": dataclasses.replace(noop, name="noop-pyric",
                                                  runtime_client="python"),
                "iris-512mb": dataclasses.replace(iris, name="iris-512mb"),
                "iris-1thread": full_cpu(iris_1thread)}
            log("1. warm invoke latency")
            sinks = {"main": ReportSink()}
            with contextlib.ExitStack() as stack:
                emulators = {"main": stack.enter_context(EmulatorThread(sink=sinks["main"]))}
                add_side_emulators(stack, emulators, sinks)
                results["warm_latency"] = warm_latency(emulators, sinks, functions, requests)
            summaries.update(warm_summary(results["warm_latency"]))
        if "cold" not in args.skip:
            minilm, _ = function_for(minilm_service(tmp / "minilm"))
            log("2. cold start")
            cases: dict[str, dict[str, Any]] = {
                "iris": {"settings": iris, "event": cold_start.IRIS_EVENT,
                         "hand": cold_start.HAND_IRIS, "service": tmp / "iris"},
                "minilm": {"settings": minilm, "event": cold_start.MINILM_EVENT,
                           "hand": cold_start.HAND_MINILM, "service": tmp / "minilm"},
            }
            for name, case in cases.items():
                settings: FunctionSettings = case["settings"]
                case["precompiled"] = None
                if not has_target_bytecode(Path(settings.task_dir), settings.python_version):
                    # diagnostic: the same task root with bytecode for the target interpreter
                    case["precompiled"] = dataclasses.replace(settings, task_dir=compiled_copy(
                        Path(settings.task_dir), tmp / f"{name}-task-pyc", python312))
            with EmulatorThread(sink=lambda _: None) as emu:
                results["cold_start"] = cold_starts(emu, cases, runs, python312)
        # a section that fails (e.g. on an overloaded machine) is said and the rest still run
        failed = results["failed"] = {}
        if "throughput" not in args.skip:
            log("3. throughput")
            try:
                with contextlib.ExitStack() as stack:
                    emu = stack.enter_context(EmulatorThread(sink=lambda _: None))
                    # the httptools lever's baseline, in turn with it (asyncio streams)
                    streams = (stack.enter_context(EmulatorThread(sink=lambda _: None,
                                                                  http="streams"))
                               if getattr(emu.emulator, "http", "") == "protocol" else None)
                    iris_shipped = cold_start.onnx_pair(tmp / "iris", Path(iris.task_dir))[1]
                    results["throughput"] = throughput(emu, iris, iris_shipped, tmp, seconds,
                                                       warmup_s, not args.no_mlserver,
                                                       streams)
                summaries.update(throughput_summary(results["throughput"]))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failed["throughput"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                log(f"3. throughput FAILED: {failed['throughput']}")
        if "ready" not in args.skip:
            log("4. up to ready against MLServer's start to ready")
            try:
                iris_shipped = cold_start.onnx_pair(tmp / "iris", Path(iris.task_dir))[1]
                ready_dir = tmp / "ready"
                ready_dir.mkdir()
                results["ready"] = up_vs_mlserver(tmp / "iris", iris, iris_shipped, ready_dir,
                                                  2 if args.quick else 3)
                summaries.update(ready_summary(results["ready"]))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failed["ready"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                log(f"4. up to ready FAILED: {failed['ready']}")
    results["summary"] = summaries
    results["load_average_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json} ({results['elapsed_s']} s)")


if __name__ == "__main__":
    main()
