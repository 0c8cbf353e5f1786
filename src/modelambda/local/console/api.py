"""The console's JSON views: what the page shows, for scripts too (``/console/api/...``).

Each view reads what the emulator already knows (its functions and environments, the
invocation log, the service specs ``up`` ran, the model store, the last bench and advise
results) and encodes it only when asked. The model store is reached in a worker thread
(boto3 blocks), through the same functions ``modelambda models`` calls.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda.local import cgroups
from modelambda.local.console.store import InvocationLog, Record

if TYPE_CHECKING:
    from modelambda.local.emulator import Emulator
    from modelambda.local.function import Function
    from modelambda.local.resources import LocalServices
    from modelambda.modelstore import Store
    from modelambda.spec import ServiceSpec

SHOWN_BYTES = 256 * 1024  # of a request or response body, in an invocation's detail
LATENCY_WINDOW_S = 300.0  # the latency histogram covers the last five minutes
# the histogram's bucket edges, in ms (a last bucket takes what is slower)
LATENCY_EDGES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
CHART = re.compile(r"^[A-Za-z0-9_.-]+\.png$")


@dataclass
class Service:
    """What ``up`` knows of a function beyond its settings: the spec it was built from, and
    how to reach its model store (``store``: None for strategies without one)."""

    spec: ServiceSpec
    store: Callable[[], Store] | None = None
    _model_version: str | None = field(default=None, init=False)

    @classmethod
    def of(cls, spec: ServiceSpec, services: LocalServices | None = None) -> Service:
        """A service as ``up`` runs it: its store (a store strategy's) reached the way the
        function reaches it (``services``: the embedded S3, when ``up`` started one)."""
        from modelambda import modelstore
        from modelambda.strategies.store import StoreStrategy

        if not isinstance(spec.strategy.unit, StoreStrategy):
            return cls(spec)
        bucket = spec.strategy.settings.get("bucket")
        client: Any = None

        def store() -> Store:
            nonlocal client
            if client is None and services is not None and bucket:
                client = services.s3_client(str(bucket))
            return modelstore.default_store(spec, client)

        return cls(spec, store)

    @property
    def model_version(self) -> str:
        """The version the build ships: the spec's, else the hash of the model's files."""
        if self._model_version is None:
            from modelambda.spec import model_files, version_of

            self._model_version = self.spec.model.version or version_of(
                model_files(self.spec.model_path))
        return self._model_version

    @property
    def bench_dir(self) -> Path:
        return self.spec.root / ".modelambda" / "bench"

    @property
    def advise_file(self) -> Path:
        return self.spec.root / ".modelambda" / "advise" / "advise.json"


def function_view(emulator: Emulator, function: Function, service: Service | None,
                  log: InvocationLog) -> dict[str, Any]:
    s = function.settings
    alias = s.alias
    view = function.describe()
    view.update({
        "architecture": s.architecture,
        "vcpus": round(cgroups.vcpus(s.memory_mb, cgroups.machine_cores()), 2),
        "ephemeral_mb": s.ephemeral_mb, "snapstart": s.snapstart,
        "urls": {"invoke_api": f"{emulator.url}/2015-03-31/functions/{s.name}:{alias}"
                               "/invocations",
                 "function_url": f"{emulator.url}/fn/{s.name}/"},
        "alias": alias,
        "retired": [env.describe() for env in reversed(log.ended.get(s.name, ()))],
        "strategy": None, "model": None, "request": None,
    })
    if service is not None:
        spec = service.spec
        view["strategy"] = spec.strategy.kind
        view["model"] = {"name": spec.model.name, "framework": spec.model.framework,
                         "version": service.model_version,
                         "store": service.store is not None}
        view["urls"]["v2"] = f"{emulator.url}/v2/models/{spec.model.name}/infer"
        request = spec.root / "request.json"
        if request.is_file():
            view["request"] = request.read_text(encoding="utf-8", errors="replace")
    return view


def summary(record: Record) -> dict[str, Any]:
    result = record.result
    return {"id": record.seq, "function": record.function, "request_id": result.request_id,
            "time": record.finished, "version": result.version,
            "status": "error" if result.function_error else "ok",
            "error_type": result.error_type, "duration_ms": round(result.duration_ms, 2),
            "init_ms": None if result.init_ms is None else round(result.init_ms, 2),
            "restore_ms": None if result.restore_ms is None else round(result.restore_ms, 2),
            "cold": record.cold, "environment": result.environment,
            "max_memory_mb": result.max_memory_mb}


def _text(data: bytes) -> dict[str, Any]:
    shown = data[:SHOWN_BYTES]
    return {"text": shown.decode("utf-8", "replace"), "bytes": len(data),
            "truncated": len(data) > SHOWN_BYTES}


def detail(record: Record) -> dict[str, Any]:
    result = record.result
    return {**summary(record), "arn": record.invocation.function_arn,
            "request": _text(record.invocation.payload), "response": _text(result.payload),
            "logs": list(result.logs), "report": result.report_line()}


def latency(log: InvocationLog, function: str, window_s: float = LATENCY_WINDOW_S
            ) -> dict[str, Any]:
    """A histogram of the last ``window_s`` of one function's warm and cold durations."""
    since = time.time() - window_s
    counts = [0] * (len(LATENCY_EDGES) + 1)
    durations: list[float] = []
    for record in log.newest(function):
        if record.finished < since:
            break
        ms = record.result.duration_ms
        durations.append(ms)
        counts[next((i for i, edge in enumerate(LATENCY_EDGES) if ms <= edge),
                    len(LATENCY_EDGES))] += 1
    durations.sort()

    def pct(p: float) -> float | None:
        return round(durations[min(len(durations) - 1, int(p * len(durations)))], 2) \
            if durations else None

    return {"function": function, "window_s": window_s, "edges_ms": list(LATENCY_EDGES),
            "counts": counts, "n": len(durations), "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def models_view(service: Service, log: InvocationLog, function: str) -> dict[str, Any]:
    """Versions (size, checksums, when), aliases, and the function's refresh log lines.
    Blocking (the store): run in a worker thread."""
    from modelambda import modelstore

    assert service.store is not None
    store = service.store()
    model = service.spec.model.name
    versions = []
    for version in modelstore.versions(store, model):
        manifest = modelstore.manifest(store, model, version) or {}
        files = manifest.get("files") or {}
        versions.append({"version": version, "created": manifest.get("created"),
                         "framework": manifest.get("framework"),
                         "size": sum(int(f.get("size") or 0) for f in files.values()),
                         "files": {rel: {"size": f.get("size"), "sha256": f.get("sha256")}
                                   for rel, f in files.items()}})
    versions.sort(key=lambda v: (v["created"] or "", v["version"]))
    events = []
    for record in log.newest(function):
        events += [{"id": record.seq, "line": line} for line in record.result.logs
                   if "model switched" in line or "refresh" in line]
        if len(events) >= 20:
            break
    return {"store": store.describe(), "model": model, "versions": versions,
            "aliases": modelstore.aliases(store, model), "refresh_events": events[:20]}


def measurements_view(service: Service, function: str) -> dict[str, Any]:
    """The last ``bench`` (bench.json and its charts) and ``advise`` (advise.json)."""
    bench_file = service.bench_dir / "bench.json"
    return {"bench": _load(bench_file), "bench_file": str(bench_file),
            "charts": [f"/console/measurements/{function}/{p.name}"
                       for p in sorted(service.bench_dir.glob("*.png")) if CHART.match(p.name)],
            "advise": _load(service.advise_file), "advise_file": str(service.advise_file)}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
