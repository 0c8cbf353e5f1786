"""The measured local profile the latency model scales: one strategy's cold start broken down
(runtime start, imports, fetch, load, first prediction), its warm durations and memory, at one
memory size on this machine; plus this machine's sha256 and local-S3 rates.

It comes from a bench file (``--from-bench``: the bundle strategy's row, or the first strategy
measured, at the memory size nearest the spec's) or from a short profile run (``measure``:
bench on one strategy at the spec's memory size, two cold starts).

CPU scaling, as Lambda gives CPU (1769 MB = one vCPU; the init phase with burst CPU of about
two vCPUs whatever the memory size): single-threaded init work (runtime start, imports, load)
runs at ``min(init vCPU, 1)`` of a core, the invocations' work at ``min(vCPU, 1)`` and the
prediction at ``min(vCPU, threads)``, where the ONNX backend uses one intra-op thread per whole
vCPU (``runtime/backends/onnx.py``). The profile's own vCPU is the emulator's CPU share when it
had control groups (its init burst too, when the bench recorded one), else the machine's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda.advisor import constants as C
from modelambda.errors import UsageError

if TYPE_CHECKING:
    from modelambda.spec import ServiceSpec

PROFILE_STRATEGIES = ("bundle", "layer", "image", "efs", "s3")  # in order of preference


def vcpus(memory_mb: float) -> float:
    return min(memory_mb / C.MB_PER_VCPU.value, C.LAMBDA_MAX_VCPU.value)


def predict_threads(memory_mb: float, cores: float) -> int:
    """Intra-op threads the ONNX backend uses at this memory size."""
    return max(1, min(int(cores), int(memory_mb // C.MB_PER_VCPU.value)))


@dataclass
class Profile:
    model_name: str
    model_version: str | None
    framework: str
    strategy: str  # the strategy the profile was measured with
    memory_mb: int
    cgroups: str  # "v1", "v2" or "off..."
    cores: int
    runtime_start_ms: float
    imports_ms: float
    backend_imports_ms: float
    fetch_ms: float
    load_ms: float
    first_prediction_ms: float
    warm_p50_ms: float  # REPORT Duration
    warm_p99_ms: float
    predict_p50_ms: float  # the backend's predict alone (invocation record)
    max_memory_mb: int
    sha256_mb_s: float
    s3_local_mb_s: float | None
    source: str
    init_burst_vcpus: float | None = None  # the emulator's init-phase CPU, if it had one

    # --- CPU ------------------------------------------------------------------------------

    @property
    def limited(self) -> bool:
        return self.cgroups in ("v1", "v2")

    def here_vcpus(self, memory_mb: float) -> float:
        """The CPU share this machine's emulator gives a memory size."""
        return min(memory_mb / C.MB_PER_VCPU.value, self.cores) if self.limited else \
            float(self.cores)

    def here_init_vcpus(self, memory_mb: float) -> float:
        """The CPU share this machine's emulator gives a memory size's init phase."""
        share = self.here_vcpus(memory_mb)
        if self.limited and self.init_burst_vcpus:
            return min(max(share, self.init_burst_vcpus), float(self.cores))
        return share

    def init_factor(self, target_memory: float, lambda_target: bool) -> float:
        """Time multiplier for single-threaded init work moved from the profile to a target."""
        here = min(self.here_init_vcpus(self.memory_mb), 1.0)
        if lambda_target:
            target = min(max(vcpus(target_memory), C.LAMBDA_INIT_BURST_VCPUS.value), 1.0)
            return here / (target * C.LAMBDA_CORE_VS_HERE.value)
        return here / min(self.here_init_vcpus(target_memory), 1.0)

    def single_factor(self, target_vcpu: float, lambda_target: bool) -> float:
        """Time multiplier for single-threaded work moved from the profile to a target."""
        here = min(self.here_vcpus(self.memory_mb), 1.0)
        speed = C.LAMBDA_CORE_VS_HERE.value if lambda_target else 1.0
        return here / (min(target_vcpu, 1.0) * speed)

    def predict_factor(self, target_memory: float, target_vcpu: float, target_cores: float,
                       lambda_target: bool) -> float:
        here_threads = predict_threads(self.memory_mb, self.cores) if self.limited else \
            self.cores
        here = min(self.here_vcpus(self.memory_mb), float(here_threads))
        threads = predict_threads(target_memory, target_cores)
        speed = C.LAMBDA_CORE_VS_HERE.value if lambda_target else 1.0
        return here / (min(target_vcpu, float(threads)) * speed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- from a bench file ------------------------------------------------------------------------


def _nearest(rows: dict[str, Any], memory: int) -> str | None:
    usable = [m for m, row in rows.items() if "cold" in row and "warm" in row]
    if not usable:
        return None
    return min(usable, key=lambda m: (abs(int(m) - memory), int(m)))


def from_bench(doc: dict[str, Any], spec: ServiceSpec, model_version: str | None,
               source: str = "bench file") -> Profile:
    """The profile from a bench document, after checking it is of this service's model."""
    model = check_bench_model(doc, spec, model_version, source)
    results = doc.get("results") or {}
    order = [s for s in PROFILE_STRATEGIES if s in results] + \
        [s for s in results if s not in PROFILE_STRATEGIES]
    for strategy in order:
        rows = results[strategy].get("memory", {})
        key = _nearest(rows, spec.service.memory_mb)
        if key is not None:
            return _profile_from_row(doc, model, strategy, rows[key], source)
    raise UsageError(f"{source} has no strategy with both cold and warm measurements")


def check_bench_model(doc: dict[str, Any], spec: ServiceSpec, model_version: str | None,
                      source: str) -> dict[str, Any]:
    """The bench document's model, if it is this service's (name, and version when known)."""
    if doc.get("kind") != "modelambda-bench":
        raise UsageError(f"{source} is not a modelambda bench file (no kind "
                         "'modelambda-bench')")
    model: dict[str, Any] = doc.get("model") or {}
    if model.get("name") != spec.model.name or (
            model_version and model.get("version") and model["version"] != model_version):
        raise UsageError(
            f"{source} measured model {model.get('name')!r} version {model.get('version')!r}, "
            f"not this service's {spec.model.name!r}"
            + (f" version {model_version!r}" if model_version else "")
            + f": run modelambda bench {spec.root}")
    return model


def _profile_from_row(doc: dict[str, Any], model: dict[str, Any], strategy: str,
                      row: dict[str, Any], source: str) -> Profile:
    parts = row["cold"]["breakdown"]
    probes = doc.get("probes") or {}
    emulator = doc.get("emulator") or {}
    return Profile(
        model_name=str(model.get("name")), model_version=model.get("version"),
        framework=str(model.get("framework", "onnx")), strategy=strategy,
        memory_mb=int(row["memory_mb"]), cgroups=str(emulator.get("cgroups", "off")),
        cores=int((doc.get("machine") or {}).get("cores") or 1),
        runtime_start_ms=float(parts["runtime_start"]), imports_ms=float(parts["imports"]),
        backend_imports_ms=float(row["cold"].get("backend_imports_ms") or 0.0),
        fetch_ms=float(parts["fetch"]), load_ms=float(parts["load"]),
        first_prediction_ms=float(parts["first_prediction"]),
        warm_p50_ms=float(row["warm"]["duration_ms"]["p50"]),
        warm_p99_ms=float(row["warm"]["duration_ms"]["p99"]),
        predict_p50_ms=float(row["warm"]["predict_ms"]["p50"]),
        max_memory_mb=int(max(row["warm"].get("max_memory_mb", 0),
                              row["cold"].get("max_memory_mb", 0))),
        sha256_mb_s=float(probes.get("sha256_mb_s") or 500.0),
        s3_local_mb_s=probes.get("s3_local_mb_s"), source=source,
        init_burst_vcpus=emulator.get("init_burst_vcpus"))


def read_bench(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"no bench file at {path}") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a bench file: {exc}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{path} is not a bench file (not a JSON object)")
    return doc


def measure(spec: ServiceSpec, strategy: str, model_version: str | None,
            log: Any = None) -> Profile:
    """A short profile run: bench on one strategy at the spec's memory size."""
    from modelambda.bench.harness import BenchConfig, run_bench

    config = BenchConfig(strategies=(strategy,), memory=(spec.service.memory_mb,), cold=2,
                         warm=10, concurrency=())
    doc = run_bench(spec, config, log=log)
    doc["probes"]["s3_local_mb_s"] = doc["probes"].get("s3_local_mb_s") or _s3_probe()
    return from_bench(doc, spec, model_version, source="a short profile run")


def _s3_probe() -> float | None:
    """Local S3 throughput for the s3 strategy's estimate, when the profile did not start one."""
    from modelambda.bench.harness import s3_local_mb_s
    from modelambda.local.resources import LocalServices

    try:
        with LocalServices(log=lambda _l: None) as services:
            services.s3_client(bucket="modelambda-bench-probe")
            return s3_local_mb_s(services)
    except Exception:  # an S3 that cannot start: the s3 estimate goes without it
        return None


def fallback_rate(value: float | None, default: float) -> float:
    return value if value is not None and value > 0 and not math.isnan(value) else default
