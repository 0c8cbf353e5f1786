"""The measurement harness behind ``modelambda bench`` (and reusable from ``benchmarks/``).

For each strategy the service is built (``local.services.function_for``: what is built is what
runs) and run on one emulator, with each memory size as its own function, so each gets the
CPU share Lambda gives that size when the emulator has control groups (1769 MB = one vCPU);
without them every size gets the machine's CPU, and ``bench.json`` says which was the case
(``emulator.cgroups``, from the emulator's own ``/health`` description).

Per strategy and memory size:

- ``cold``: N fresh functions, each invoked once through the Invoke API, interleaved across
  the strategies (sample i of each in turn, so background load hits them alike); each cold
  start is broken down from the environment's own output (``coldstart.py``: REPORT, the
  runtime's init record, Python's import profile, which these functions run with);
- ``warm``: one function, warmed, then N sequential invokes on one keep-alive connection: the
  client latency and the REPORT Duration / Billed Duration percentiles, Max Memory Used, and
  the backend's predict time from the invocation record;
- ``throughput``: C client threads, one connection each, after one round that starts C
  environments; requests per second and latency at each concurrency C;
- bill: the billed duration and cost per million requests (warm, and per cold start with its
  init billed, as on Lambda since 2025-08-01), Power Tuning's cost, speed and balanced picks
  over the memory sizes (``stats.py``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import http.client
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modelambda
from modelambda.advisor.prices import load_prices
from modelambda.bench import stats
from modelambda.bench.coldstart import ColdStart, cold_start, parse_report
from modelambda.bench.progress import Progress
from modelambda.errors import ModelambdaError, UsageError

if TYPE_CHECKING:
    from modelambda.local.emulator import EmulatorThread
    from modelambda.local.resources import LocalServices
    from modelambda.local.settings import FunctionSettings
    from modelambda.spec import ServiceSpec

FORMAT = 1
KIND = "modelambda-bench"
IMPORT_PROFILE = {"PYTHONPROFILEIMPORTTIME": "1"}
Log = Callable[[str], None]


class BenchError(ModelambdaError):
    """A measurement that could not be made (a function that fails, say)."""


@dataclass
class BenchConfig:
    strategies: Sequence[str] = ()  # empty: all registered strategies
    memory: Sequence[int] = (512, 1024, 1769, 3008)
    cold: int = 3
    warm: int = 20
    concurrency: Sequence[int] = (1, 4, 16)
    request: Any = None  # the inference request; None: DIR/request.json
    architecture: str | None = None
    progress: bool | None = None  # None: on a terminal only


class LineSink:
    """The emulator's log lines, kept per environment (``[env-id] text``)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        if not line.startswith("["):
            return
        env, _, text = line[1:].partition("] ")
        with self._lock:
            self.lines.setdefault(env, []).append(text)

    def pop(self, env: str) -> list[str]:
        with self._lock:
            return self.lines.pop(env, [])

    def forget(self, prefix: str) -> None:
        with self._lock:
            for env in [e for e in self.lines if e.startswith(prefix)]:
                del self.lines[env]


@dataclass
class Invoked:
    client_ms: float
    report: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)


class Client:
    """One keep-alive connection to the emulator's Invoke API."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)

    def invoke(self, name: str, body: bytes) -> Invoked:
        start = time.perf_counter()
        self.conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body,
                          {"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"})
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200 or response.getheader("X-Amz-Function-Error"):
            raise BenchError(f"{name}: HTTP {response.status} "
                             f"{payload[:300].decode('utf-8', 'replace')}")
        tail = base64.b64decode(response.getheader("X-Amz-Log-Result") or "").decode(
            "utf-8", "replace")
        report: dict[str, float] = {}
        record: dict[str, Any] = {}
        for line in tail.splitlines():
            if line.startswith("REPORT "):
                report = parse_report(line)
            elif '"message":"invocation"' in line:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
        return Invoked(elapsed, report, record)

    def close(self) -> None:
        self.conn.close()


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


# --- one strategy at one memory size ----------------------------------------------------------


@dataclass
class Run:
    emu: EmulatorThread
    sink: LineSink
    body: bytes
    framework: str
    config: BenchConfig
    progress: Progress
    say: Log
    modes: dict[str, Any] = field(default_factory=dict)


def _cold_sample(run: Run, base: FunctionSettings, index: int) -> ColdStart:
    """One cold start: a fresh function, invoked once, its environment's output parsed."""
    name = f"{base.name}-c{index}"
    settings = dataclasses.replace(base, name=name,
                                   environment={**base.environment, **IMPORT_PROFILE})
    run.emu.add_function(settings)
    client = Client(run.emu.emulator.port)
    try:
        invoked = client.invoke(name, run.body)
    finally:
        client.close()
        run.emu.remove_function(name)
    lines = run.sink.pop(f"{name}-1")
    before_start = []
    for line in lines:
        if line.startswith("START RequestId"):
            break
        before_start.append(line)
    report = next((ln for ln in lines if ln.startswith("REPORT ")), "")
    run.sink.forget(name)
    return cold_start(before_start, report, invoked.client_ms, run.framework)


def _warm(run: Run, name: str, label: str) -> dict[str, Any]:
    client = Client(run.emu.emulator.port)
    try:
        client.invoke(name, run.body)  # the cold start, not counted
        calls = []
        for i in range(run.config.warm):
            calls.append(client.invoke(name, run.body))
            if (i + 1) % max(1, run.config.warm // 10) == 0:
                run.progress.show(f"{label}: warm {i + 1}/{run.config.warm}")
    finally:
        client.close()
    run.progress.step(f"{label}: warm")
    durations = [c.report.get("Duration", 0.0) for c in calls]
    billed = [c.report.get("Billed Duration", 0.0) for c in calls]
    predict = [float(c.record.get("predict_ms") or 0.0) for c in calls]
    return {"client_ms": stats.percentiles([c.client_ms for c in calls]),
            "duration_ms": stats.percentiles(durations),
            "billed_ms": stats.percentiles(billed),
            "predict_ms": stats.percentiles(predict),
            "duration_trimmed_mean_ms": round(stats.trimmed_mean(durations), 3),
            "billed_trimmed_mean_ms": round(stats.trimmed_mean(billed), 3),
            "max_memory_mb": max((int(c.report.get("Max Memory Used", 0)) for c in calls),
                                 default=0)}


def _level(run: Run, name: str, concurrency: int) -> dict[str, Any]:
    per_thread = max(3, run.config.warm // concurrency)
    clients = [Client(run.emu.emulator.port) for _ in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    barrier = threading.Barrier(concurrency)

    def work(index: int, rounds: int, record: bool) -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                took = clients[index].invoke(name, run.body).client_ms
                if record:
                    latencies[index].append(took)
        except (BenchError, OSError, threading.BrokenBarrierError) as exc:
            errors.append(str(exc))

    def round_of(rounds: int, record: bool) -> float:
        threads = [threading.Thread(target=work, args=(i, rounds, record))
                   for i in range(concurrency)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start

    try:
        round_of(1, False)  # starts the environments this level needs
        wall = round_of(per_thread, True)
    finally:
        for client in clients:
            client.close()
    if errors:
        return {"error": errors[0]}
    flat = [ms for thread in latencies for ms in thread]
    return {"requests": len(flat), "seconds": round(wall, 3),
            "rps": round(len(flat) / wall, 2) if wall > 0 else None,
            "latency_ms": stats.percentiles(flat)}


def _base(settings: FunctionSettings, strategy: str, memory: int) -> FunctionSettings:
    return dataclasses.replace(settings, name=f"bench-{strategy}-{memory}", memory_mb=memory)


def _cold_round(run: Run, settings: dict[str, FunctionSettings], memory: int
                ) -> dict[str, list[ColdStart] | str]:
    """The cold starts at one memory size, interleaved across the strategies (sample i of
    each in turn), so the machine's background load hits them all alike."""
    out: dict[str, list[ColdStart] | str] = {s: [] for s in settings}
    for index in range(run.config.cold):
        for strategy, base in settings.items():
            samples = out[strategy]
            if isinstance(samples, str):
                continue  # failed before
            try:
                samples.append(_cold_sample(run, _base(base, strategy, memory), index))
            except BenchError as exc:
                out[strategy] = str(exc)
                run.say(f"bench: {strategy} {memory} MB: {exc}")
            run.progress.step(f"{strategy} {memory} MB: cold start {index + 1}/"
                              f"{run.config.cold}")
    return out


def _one_size(run: Run, settings: FunctionSettings, strategy: str, memory: int,
              colds: list[ColdStart] | str) -> dict[str, Any]:
    label = f"{strategy} {memory} MB"
    base = _base(settings, strategy, memory)
    out: dict[str, Any] = {"memory_mb": memory}
    if isinstance(colds, str):
        out["error"] = colds
        return out
    try:
        run.emu.add_function(base)
        try:
            run.modes = run.modes or _emulator_modes(run.emu)
            out["warm"] = _warm(run, base.name, label)
            out["throughput"] = {}
            for level in run.config.concurrency:
                out["throughput"][str(level)] = _level(run, base.name, level)
                run.progress.step(f"{label}: concurrency {level}")
        finally:
            run.emu.remove_function(base.name)
            run.sink.forget(base.name)
    except BenchError as exc:
        out["error"] = str(exc)
        run.say(f"bench: {label}: {exc}")
        return out
    out["cold"] = _cold_summary(colds)
    return out


def _cold_summary(colds: Sequence[ColdStart]) -> dict[str, Any]:
    parts = {key: _median([c.breakdown()[key] for c in colds])
             for key in ("runtime_start", "imports", "fetch", "load", "first_prediction")}
    backend = _median([c.imports.backend_ms for c in colds])
    return {"cold_ms": _median([c.cold_ms for c in colds]),
            "client_ms": _median([c.client_ms for c in colds]),
            "init_ms": _median([c.init_ms for c in colds]),
            "billed_ms": _median([c.billed_ms for c in colds]),
            "max_memory_mb": max((c.max_memory_mb for c in colds), default=0),
            "breakdown": parts, "backend_imports_ms": backend,
            "fetch_total_ms": _median([float(c.record.get("fetch_ms") or 0.0) for c in colds]),
            "samples": [c.as_dict() for c in colds]}


def _bill(row: dict[str, Any], arch: str) -> None:
    """Billed duration and cost per million at this memory size (Power Tuning's formula for
    the per-request cost; the request charge added for the per-million figures)."""
    if "warm" not in row:
        return
    prices = load_prices()
    memory = int(row["memory_mb"])
    billed = float(row["warm"]["billed_trimmed_mean_ms"])
    cold_billed = float(row["cold"]["billed_ms"])
    row["bill"] = {
        "billed_ms": billed,
        "cost_per_request": stats.request_cost(billed, memory, prices, arch),
        "cost_per_million_warm": round(stats.cost_per_million(billed, memory, prices, arch), 4),
        "cost_per_cold_start": stats.request_cost(cold_billed, memory, prices, arch),
        "cost_per_million_1pct_cold": round(stats.cost_per_million(
            billed, memory, prices, arch, cold_share=0.01, cold_billed_ms=cold_billed), 4),
    }


def _power_tuning(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    table = {int(m): {"duration_ms": r["warm"]["duration_trimmed_mean_ms"],
                      "cost": r["bill"]["cost_per_request"]}
             for m, r in rows.items() if "bill" in r}
    return {"picks": stats.picks(table), "table": {str(m): v for m, v in table.items()}}


# --- machine, versions, probes -----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"hostname": platform.node(), "system": platform.system(),
            "release": platform.release(), "machine": platform.machine(),
            "cpu": _cpu_model(), "cores": os.cpu_count() or 1, "memory_mb": memory,
            "python": platform.python_version()}


def sha256_mb_s(megabytes: int = 64) -> float:
    """sha256 throughput of one core here (what the s3 source's checksum costs)."""
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(megabytes):
        digest.update(block)
    return round(megabytes / (time.perf_counter() - start), 1)


def s3_local_mb_s(services: LocalServices, megabytes: int = 32) -> float | None:
    """GET throughput of the local S3 (as the function's S3 client gets it), or None."""
    url = services.s3_url
    if url is None:
        return None
    from modelambda.runtime.aws.s3 import S3Client
    from modelambda.runtime.aws.sigv4 import Credentials

    client = services.s3_client(bucket="modelambda-bench-probe")
    client.put_object(Bucket="modelambda-bench-probe", Key="probe",
                      Body=os.urandom(megabytes * 1024 * 1024))
    env = services.s3_environment()
    ours = S3Client(endpoint=url, region="us-east-1")
    ours.credentials = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    start = time.perf_counter()
    ours.fetch("modelambda-bench-probe", "probe", megabytes * 1024 * 1024)
    return round(megabytes / (time.perf_counter() - start), 1)


# --- the whole run ------------------------------------------------------------------------------


def load_request(spec: ServiceSpec, request: Any) -> bytes:
    if request is not None:
        return request if isinstance(request, bytes) else json.dumps(request).encode()
    path = spec.root / "request.json"
    if not path.is_file():
        raise UsageError(f"{spec.root}: no request.json to send; pass --data '{{\"instances\": "
                         "[...]}'")
    return path.read_bytes()


def _strategies(config: BenchConfig) -> list[str]:
    from modelambda import strategies

    chosen = list(config.strategies) or list(strategies.names())
    for name in chosen:
        strategies.get(name)  # UsageError naming the known ones
    return chosen


def check_config(config: BenchConfig) -> None:
    from modelambda import limits

    for memory in config.memory:
        if not limits.MEMORY_MB_MIN <= memory <= limits.MEMORY_MB_MAX:
            raise UsageError(f"memory {memory} MB is outside Lambda's {limits.MEMORY_MB_MIN}.."
                             f"{limits.MEMORY_MB_MAX} MB")
    if config.cold < 1 or config.warm < 1:
        raise UsageError("--cold and --warm need at least 1 sample each")
    if any(c < 1 or c > 256 for c in config.concurrency):
        raise UsageError("--concurrency levels are 1..256")


def run_bench(spec: ServiceSpec, config: BenchConfig, *, log: Log | None = None,
              services: LocalServices | None = None) -> dict[str, Any]:
    """Measure ``spec`` on the emulator; the bench.json document (not yet written)."""
    from modelambda.local.emulator import EmulatorThread
    from modelambda.local.resources import LocalServices
    from modelambda.local.services import function_for

    say = log or (lambda _line: None)
    check_config(config)
    chosen = _strategies(config)
    body = load_request(spec, config.request)
    if config.architecture:
        spec = dataclasses.replace(spec, service=dataclasses.replace(
            spec.service, architecture=config.architecture))
    steps = len(chosen) * len(config.memory) * (config.cold + 1 + len(config.concurrency))
    progress = Progress(steps, enabled=config.progress)
    sink = LineSink()
    own_services = services is None
    local = services or LocalServices(log=say)
    emu = EmulatorThread(sink=sink, max_environments=max([*config.concurrency, 1]) + 1,
                         idle_timeout_s=3600.0)
    doc: dict[str, Any] = {"format": FORMAT, "kind": KIND, "service": spec.service.name,
                           "date": datetime.datetime.now(datetime.UTC).isoformat(
                               timespec="seconds"),
                           "machine": machine(), "results": {}}
    run = Run(emu, sink, body, spec.model.framework, config, progress, say)
    try:
        settings: dict[str, FunctionSettings] = {}
        for strategy in chosen:
            progress.show(f"{strategy}: building")
            settings[strategy], _ = function_for(spec, local, strategy=strategy, log=None)
            manifest = _manifest(spec, strategy)
            doc.setdefault("model", _model_of(spec, manifest))
            doc.setdefault("versions", _versions(manifest))
            doc["results"][strategy] = {"memory": {},
                                        "artifacts": manifest.get("artifacts_summary")}
        for memory in config.memory:
            colds = _cold_round(run, settings, memory)
            for strategy in chosen:
                row = _one_size(run, settings[strategy], strategy, memory, colds[strategy])
                _bill(row, settings[strategy].architecture)
                doc["results"][strategy]["memory"][str(memory)] = row
        for strategy in chosen:
            result = doc["results"][strategy]
            result["power_tuning"] = _power_tuning(result["memory"])
        doc["probes"] = {"sha256_mb_s": sha256_mb_s(), "s3_local_mb_s": s3_local_mb_s(local)}
        doc["emulator"] = run.modes or _emulator_modes(emu)
    finally:
        progress.close()
        emu.stop()
        if own_services:
            local.stop()
    doc["settings"] = {"strategies": chosen, "memory": list(config.memory),
                       "cold": config.cold, "warm": config.warm,
                       "concurrency": list(config.concurrency), "import_profile": True,
                       "architecture": spec.service.architecture,
                       "prices_date": load_prices().date}
    return doc


def _manifest(spec: ServiceSpec, strategy: str) -> dict[str, Any]:
    path = spec.root / ".modelambda" / "build" / strategy / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    manifest["artifacts_summary"] = [
        {k: a.get(k) for k in ("name", "kind", "zipped_bytes", "unzipped_bytes")}
        for a in manifest.get("artifacts", [])]
    return manifest


def _model_of(spec: ServiceSpec, manifest: dict[str, Any]) -> dict[str, Any]:
    model = manifest.get("model") or {}
    files = model.get("files") or {}
    return {"name": spec.model.name, "version": model.get("version") or spec.model.version,
            "framework": spec.model.framework,
            "bytes": sum(int(f.get("size", 0)) for f in files.values())}


def _versions(manifest: dict[str, Any]) -> dict[str, Any]:
    deps = manifest.get("dependencies") or {}
    wanted = ("numpy", "onnxruntime", "scikit-learn", "tokenizers", "awslambdaric")
    return {"modelambda": modelambda.__version__, "python_runtime": manifest.get("runtime"),
            **{name: deps[name] for name in wanted if name in deps}}


def _emulator_modes(emu: EmulatorThread) -> dict[str, Any]:
    """How environments ran, from the emulator's own /health description (taken while a
    measured function is running, so it describes that function, not the default)."""
    described = emu.describe()
    limited = described.get("cgroups", "off") not in ("off", "mixed")
    try:  # the init phase's burst CPU, where the emulator gives one (local/cgroups.py)
        from modelambda.local import cgroups

        burst: float | None = float(cgroups.INIT_BURST_VCPUS) if limited else None
    except (ImportError, AttributeError):
        burst = None
    return {"sandbox": described.get("sandbox", "unknown"), "init_burst_vcpus": burst,
            "cgroups": described.get("cgroups", "off (this emulator has no control groups)"),
            "cgroups_detail": described.get("cgroups_detail", ""),
            "cpu_per_memory": limited}


def write_bench(doc: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path
