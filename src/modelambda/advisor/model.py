"""The options side by side: limits + latency model + cost model -> one row per option. Pure.

Options: the strategies (the ``endpoint`` one as a SageMaker real-time endpoint, billed while
idle), SnapStart on each strategy that allows it, provisioned concurrency on the cheapest
on-demand strategy, the endpoint as SageMaker Serverless Inference, and Lambda Managed
Instances.

Latency model (documented in ``profile.py`` and ``terms/``): a cold start on Lambda is
Lambda's runtime start + the code's delivery + the imports (scaled to the memory size's CPU)
+ the model's transfer (overlapping the imports for s3) + checksum + load (scaled) + the first
prediction (scaled by the backend's threads); on this machine it is the profile's own parts,
scaled to the memory size's CPU share when the emulator limits CPU, plus the local transfer.
Warm latency is the invoke overhead + the warm duration (scaled) + the payload's transfer and
JSON; an endpoint adds its network hop and runs the prediction on the instance.

Cost model (monthly, prices from ``prices.json``): requests; GB-seconds for warm invocations
and for cold starts with their init billed (since 2025-08-01); ephemeral storage over 512 MB;
the strategy's own charges (``terms/``); instance hours for endpoints and Managed Instances
(+ its management fee); provisioned concurrency and SnapStart charges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelambda import limits
from modelambda.advisor import constants as C
from modelambda.advisor import terms as T
from modelambda.advisor.prices import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    SECONDS_PER_MONTH,
    Instance,
    Prices,
)
from modelambda.advisor.profile import Profile, vcpus
from modelambda.advisor.sizes import StrategySizes
from modelambda.advisor.traffic import Traffic, cold_starts_per_day

MB = 1024 * 1024
GB_MB = 1024.0
LAMBDA_CORES = 6


@dataclass
class Option:
    name: str
    strategy: str  # the strategy it runs (or fronts)
    kind: str  # "lambda" | "snapstart" | "provisioned" | "sagemaker-serverless" | "managed"
    feasible: bool = True
    reasons: list[str] = field(default_factory=list)  # what rules it out
    memory_mb: int = 0
    ephemeral_mb: int = 512
    cold_start_ms: float | None = None  # on Lambda
    cold_start_here_ms: float | None = None  # on this machine's emulator
    cold_parts: dict[str, float] = field(default_factory=dict)
    warm_p50_ms: float = 0.0
    warm_p99_ms: float = 0.0
    billed_ms: float = 0.0
    p99_ms: float = 0.0  # what a caller's p99 is at this traffic (cold starts included)
    meets_p99: bool | None = None
    monthly_usd: float = 0.0
    cost_parts: dict[str, float] = field(default_factory=dict)
    update_path: str = ""
    update_without_deploy: bool = False
    vpc: bool = False
    snapstart: str = ""  # "allowed" or why not
    cold_starts_per_day: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def decoupled(self) -> bool:
        return self.update_without_deploy

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["decoupled"] = self.decoupled
        for key in ("cold_start_ms", "cold_start_here_ms", "warm_p50_ms", "warm_p99_ms",
                    "p99_ms", "billed_ms", "cold_starts_per_day"):
            if isinstance(out[key], float):
                out[key] = round(out[key], 1)
        out["monthly_usd"] = round(self.monthly_usd, 2)
        out["cost_parts"] = {k: round(v, 4) for k, v in self.cost_parts.items()}
        out["cold_parts"] = {k: round(v, 1) for k, v in self.cold_parts.items()}
        return out


@dataclass
class Inputs:
    """Everything the pure model needs."""

    sizes: Mapping[str, StrategySizes]
    profile: Profile
    traffic: Traffic
    prices: Prices
    memory_mb: int = 1024  # the spec's
    ephemeral_mb: int = 512
    runtime: str = limits.DEFAULT_RUNTIME
    settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    @property
    def model_bytes(self) -> int:
        return max((s.model_bytes for s in self.sizes.values()), default=0)


# --- memory ----------------------------------------------------------------------------------


def resident_mb(inputs: Inputs) -> float:
    """Memory a loaded model needs: measured (the profile's Max Memory Used) when the profile is
    of this model, else the runtime's base + the model x a load factor."""
    profile = inputs.profile
    if profile.max_memory_mb > 0:
        return float(profile.max_memory_mb)
    return C.RUNTIME_BASE_MB.value + C.MODEL_MEMORY_FACTOR.value * inputs.model_bytes / MB


def _memory_for(needed_mb: float, spec_mb: int) -> int:
    """The spec's memory size, raised (in 64 MB steps, 10 % headroom) when the model needs
    more."""
    want = math.ceil(needed_mb * 1.1 / 64) * 64
    return max(spec_mb, want)


# --- latency -------------------------------------------------------------------------------


def _payload_ms(inputs: Inputs, vcpu: float) -> float:
    mb = inputs.traffic.payload_kb / 1024
    return mb / C.NETWORK_MB_S.value * 1000 + mb * C.JSON_MS_PER_MB.value / min(vcpu, 1.0)


def _cold_parts(inputs: Inputs, terms: T.Terms, ctx: T.Context, *, lambda_target: bool
                ) -> dict[str, float]:
    """Cold start by part for a strategy at ``ctx.memory_mb`` (on Lambda, or here)."""
    p = inputs.profile
    memory = ctx.memory_mb
    target_vcpu = vcpus(memory) if lambda_target else p.here_vcpus(memory)
    cores = LAMBDA_CORES if lambda_target else p.cores
    single = p.init_factor(memory, lambda_target)  # the init phase's CPU (burst)
    invoke = p.single_factor(target_vcpu, lambda_target)  # the invocation's CPU share
    predict = p.predict_factor(memory, target_vcpu, cores, lambda_target)
    here_rate = p.sha256_mb_s * (C.LAMBDA_CORE_VS_HERE.value if lambda_target else 1.0)
    verify_ms = ctx.model_bytes / MB / here_rate * 1000 * min(p.here_vcpus(p.memory_mb), 1.0)
    profile_verified = T.for_strategy(p.strategy).verifies_checksums
    load = max(0.0, p.load_ms - (verify_ms if profile_verified else 0.0))
    imports = p.imports_ms - (p.backend_imports_ms if not terms.ships_model else 0.0)
    parts = {
        "runtime start": C.LAMBDA_RUNTIME_START_MS.value if lambda_target
        else p.runtime_start_ms * single,
        "code": terms.code_ms(ctx) if lambda_target else 0.0,
        "imports": imports * single,
        "model transfer": 0.0,
        "checksum": verify_ms * single if terms.verifies_checksums else 0.0,
        "load": load * single if terms.ships_model else 0.0,
        "first prediction": p.first_prediction_ms * predict,
    }
    transfer = terms.model_ms(ctx) if lambda_target else terms.model_ms_here(ctx)
    if terms.fetch_overlaps_imports:  # the download runs while the imports do
        # On Lambda the bytes come over the network (the thread mostly waits): the imports
        # hide the download. Here a loopback download costs CPU on both ends (the function's
        # and the local S3 server's), so only a core beyond the imports' and the server's
        # runs it beside the imports.
        spare = 1.0 if lambda_target else \
            min(1.0, max(0.0, min(p.here_init_vcpus(memory), p.cores - 1.0) - 1.0))
        transfer = max(0.0, transfer - parts["imports"] * spare)
    parts["model transfer"] = transfer
    if not terms.ships_model:  # the first prediction goes to the endpoint
        hop = C.SAGEMAKER_OVERHEAD_MS.value if lambda_target else C.LOCAL_HOP_MS.value
        parts["first prediction"] = (p.first_prediction_ms - p.predict_p50_ms) * invoke \
            + p.predict_p50_ms + hop
    return parts


def _warm(inputs: Inputs, terms: T.Terms, memory: int) -> tuple[float, float, float]:
    """(p50 latency, p99 latency, billed duration) of a warm request on Lambda."""
    p = inputs.profile
    vcpu = vcpus(memory)
    single = p.single_factor(vcpu, True)
    predict = p.predict_factor(memory, vcpu, LAMBDA_CORES, True)
    rest = max(0.0, p.warm_p50_ms - p.predict_p50_ms)
    spread = max(0.0, p.warm_p99_ms - p.warm_p50_ms)
    payload = _payload_ms(inputs, vcpu)
    if terms.ships_model:
        duration = rest * single + p.predict_p50_ms * predict + payload
    else:  # pre/post here, the prediction on a 1-vCPU share of the instance, plus the hop
        duration = rest * single + p.predict_p50_ms + C.SAGEMAKER_OVERHEAD_MS.value \
            + 2 * payload
    p50 = C.LAMBDA_INVOKE_OVERHEAD_MS.value + duration
    return p50, p50 + spread * single, duration


# --- cost ------------------------------------------------------------------------------------


def _lambda_compute(inputs: Inputs, memory: int, ephemeral: int, billed_ms: float,
                    cold_billed_ms: float, colds_month: float) -> dict[str, float]:
    t = inputs.traffic
    prices = inputs.prices
    requests = t.requests_per_day * DAYS_PER_MONTH
    gb = memory / GB_MB
    seconds = (max(0.0, requests - colds_month) * math.ceil(billed_ms)
               + colds_month * math.ceil(cold_billed_ms)) / 1000
    out = {"Lambda requests": requests * prices["lambda_request"],
           "Lambda GB-seconds (init billed)": seconds * gb * prices.lambda_gb_s(t.architecture)}
    if ephemeral > 512:
        out["ephemeral storage"] = seconds * (ephemeral - 512) / GB_MB \
            * prices["lambda_ephemeral_gb_s"]
    return out


def _strategy_charges(inputs: Inputs, terms: T.Terms, ctx: T.Context, colds_month: float,
                      env_seconds: float) -> dict[str, float]:
    out = dict(terms.fixed_monthly(ctx, inputs.prices))
    for name, value in terms.per_cold_start(ctx, inputs.prices).items():
        out[name] = value * colds_month
    for name, value in terms.per_environment_second(ctx, inputs.prices).items():
        out[name] = value * env_seconds
    return out


def _instance_for(instances: tuple[Instance, ...], memory_mb: float, arch: str | None = None
                  ) -> Instance | None:
    fitting = [i for i in instances if i.memory_gb * 1024 >= memory_mb * 1.3
               and (arch is None or i.arch == arch)]
    return min(fitting, key=lambda i: i.hour) if fitting else None


def _instance_rps(instance: Instance, predict_ms_one_core: float) -> float:
    per_core = 1000 / max(predict_ms_one_core, 0.05)
    return instance.vcpu * per_core * C.INSTANCE_TARGET_UTILISATION.value


# --- the rows ------------------------------------------------------------------------------------


def _context(inputs: Inputs, strategy: str, memory: int) -> T.Context:
    sizes = inputs.sizes[strategy]
    return T.Context(sizes=sizes, model_bytes=inputs.model_bytes, memory_mb=memory,
                     profile=inputs.profile,
                     updates_per_month=inputs.traffic.model_updates_per_month,
                     settings=dict(inputs.settings.get(strategy, {})))


def _common_blockers(inputs: Inputs, needed_mb: float) -> list[str]:
    out = []
    if inputs.traffic.payload_kb * 1024 > limits.SYNC_PAYLOAD_BYTES:
        out.append(f"payload {inputs.traffic.payload_kb:,.0f} KB > 6 MB synchronous invoke "
                   "limit")
    if needed_mb > limits.MEMORY_MB_MAX:
        out.append(f"the loaded model needs about {needed_mb:,.0f} MB of memory > "
                   f"{limits.MEMORY_MB_MAX} MB")
    return out


def strategy_option(inputs: Inputs, strategy: str) -> Option:
    """One strategy on demand (``endpoint``: behind a SageMaker real-time endpoint)."""
    terms = T.for_strategy(strategy)
    sizes = inputs.sizes[strategy]
    probe = _context(inputs, strategy, inputs.memory_mb)
    needed = (resident_mb(inputs) if terms.ships_model else C.RUNTIME_BASE_MB.value) \
        + terms.extra_memory_mb(probe)
    memory = _memory_for(needed, inputs.memory_mb)
    ephemeral = max(inputs.ephemeral_mb, min(10240, math.ceil(terms.tmp_mb(probe) / 64) * 64))
    option = Option(strategy if strategy != "endpoint" else "endpoint (SageMaker real-time)",
                    strategy, "lambda", memory_mb=memory, ephemeral_mb=ephemeral,
                    update_path=terms.update_path,
                    update_without_deploy=terms.update_without_deploy, vpc=terms.needs_vpc)
    option.snapstart = _snapstart_allowed(inputs, terms, ephemeral)
    build_failures = [f for f in sizes.failures if not f.startswith("/tmp needed")]
    option.reasons = build_failures + _common_blockers(inputs, needed) + terms.blockers(probe)
    if memory != inputs.memory_mb:
        option.notes.append(f"memory raised from {inputs.memory_mb} to {memory} MB for the "
                            "model")
    if ephemeral > inputs.ephemeral_mb:
        option.notes.append(f"/tmp raised to {ephemeral} MB")
    ctx = _context(inputs, strategy, memory)
    _latency(option, inputs, terms, ctx)
    _on_demand_cost(option, inputs, terms, ctx)
    if strategy == "endpoint":
        _endpoint_instances(option, inputs)
    option.feasible = not option.reasons
    return option


def _snapstart_allowed(inputs: Inputs, terms: T.Terms, ephemeral: int) -> str:
    if terms.snapstart_blocker:
        return terms.snapstart_blocker
    if inputs.runtime not in limits.SNAPSTART_RUNTIMES:
        return f"SnapStart needs python3.12 or later, not {inputs.runtime}"
    if ephemeral > limits.SNAPSTART_EPHEMERAL_MB_MAX:
        return f"SnapStart does not support /tmp over 512 MB (needs {ephemeral} MB)"
    return "allowed"


def _latency(option: Option, inputs: Inputs, terms: T.Terms, ctx: T.Context) -> None:
    parts = _cold_parts(inputs, terms, ctx, lambda_target=True)
    here = _cold_parts(inputs, terms, ctx, lambda_target=False)
    option.cold_parts = parts
    option.cold_start_ms = sum(parts.values())
    option.cold_start_here_ms = sum(here.values())
    option.warm_p50_ms, option.warm_p99_ms, option.billed_ms = _warm(inputs, terms,
                                                                    ctx.memory_mb)
    init_s = option.cold_start_ms / 1000
    if init_s > C.INIT_PHASE_S.value and option.kind == "lambda":
        option.notes.append(f"init about {init_s:.0f} s > 10 s: Lambda retries it inside the "
                            "first invoke (SnapStart or provisioned concurrency allow longer)")


def _effective_p99(option: Option, inputs: Inputs) -> None:
    rpd = inputs.traffic.requests_per_day
    share = option.cold_starts_per_day / rpd if rpd else 0.0
    cold = (option.cold_start_ms or 0.0) + C.LAMBDA_INVOKE_OVERHEAD_MS.value
    option.p99_ms = max(cold, option.warm_p99_ms) if share >= C.COLD_SHARE_FOR_P99.value \
        else option.warm_p99_ms
    if inputs.traffic.p99_ms is not None:
        option.meets_p99 = option.p99_ms <= inputs.traffic.p99_ms


def _on_demand_cost(option: Option, inputs: Inputs, terms: T.Terms, ctx: T.Context) -> None:
    option.cold_starts_per_day = cold_starts_per_day(inputs.traffic, option.billed_ms / 1000)
    colds_month = option.cold_starts_per_day * DAYS_PER_MONTH
    cold_billed = (option.cold_start_ms or 0.0) - option.cold_parts.get("code", 0.0)
    costs = _lambda_compute(inputs, option.memory_mb, option.ephemeral_mb, option.billed_ms,
                            cold_billed, colds_month)
    env_seconds = _environment_seconds(inputs, option.billed_ms / 1000)
    costs.update(_strategy_charges(inputs, terms, ctx, colds_month, env_seconds))
    option.cost_parts = costs
    option.monthly_usd = sum(costs.values())
    _effective_p99(option, inputs)


def _environment_seconds(inputs: Inputs, warm_s: float) -> float:
    """Environment-seconds alive per month: busy ones plus each one's idle tail."""
    t = inputs.traffic
    if t.requests_per_day <= 0:
        return 0.0
    busy = max(1.0, t.average_rps * warm_s)
    alive_share = 1 - math.exp(-t.average_rps * C.IDLE_KEEP_S.value)
    return busy * alive_share * SECONDS_PER_MONTH


def _endpoint_instances(option: Option, inputs: Inputs) -> None:
    """The SageMaker real-time endpoint behind the function: instances billed while idle."""
    need = resident_mb(inputs)
    instance = _instance_for(inputs.prices.sagemaker, need)
    if instance is None:
        option.reasons.append(f"no SageMaker instance in prices.json holds {need:,.0f} MB")
        return
    rps = _instance_rps(instance, inputs.profile.predict_p50_ms)
    count = max(1, math.ceil(inputs.traffic.peak / rps))
    option.cost_parts[f"SageMaker {count} x {instance.name} (billed while idle)"] = \
        count * instance.hour * HOURS_PER_MONTH
    option.monthly_usd = sum(option.cost_parts.values())
    option.notes.append(f"{count} x {instance.name} ({instance.vcpu} vCPU, "
                        f"{instance.memory_gb:g} GB) for {inputs.traffic.peak:,.1f} req/s peak")


# --- variants ----------------------------------------------------------------------------------


def snapstart_option(inputs: Inputs, base: Option) -> Option:
    """SnapStart on a strategy: cold starts become restores of the initialised snapshot."""
    option = Option(f"{base.name} + SnapStart", base.strategy, "snapstart",
                    memory_mb=base.memory_mb, ephemeral_mb=base.ephemeral_mb,
                    reasons=list(base.reasons), update_path=base.update_path + "; publish a "
                    "version (a new snapshot)", update_without_deploy=base.update_without_deploy,
                    vpc=base.vpc, snapstart="on")
    resident = resident_mb(inputs) if T.for_strategy(base.strategy).ships_model else \
        C.RUNTIME_BASE_MB.value
    restore = C.SNAPSTART_RESTORE_BASE_MS.value + resident / C.SNAPSTART_RESTORE_MB_S.value * 1000
    first = base.cold_parts.get("first prediction", 0.0) * C.SNAPSTART_FIRST_INVOKE_FACTOR.value
    option.cold_parts = {"restore": restore, "first prediction": first}
    option.cold_start_ms = restore + first
    option.cold_start_here_ms = None
    option.warm_p50_ms, option.warm_p99_ms, option.billed_ms = \
        base.warm_p50_ms, base.warm_p99_ms, base.billed_ms
    option.cold_starts_per_day = base.cold_starts_per_day
    colds_month = option.cold_starts_per_day * DAYS_PER_MONTH
    gb = option.memory_mb / GB_MB
    costs = {k: v for k, v in base.cost_parts.items() if not k.startswith("Lambda GB")}
    costs["Lambda GB-seconds"] = _lambda_compute(
        inputs, option.memory_mb, 512, option.billed_ms, first, colds_month
    )["Lambda GB-seconds (init billed)"]
    prices = inputs.prices
    costs["SnapStart cache"] = gb * SECONDS_PER_MONTH * prices["snapstart_cache_gb_s"] * (
        1 + (1 if inputs.traffic.model_updates_per_month > 0 and not base.decoupled else 0))
    costs["SnapStart restores"] = colds_month * gb * prices["snapstart_restore_gb"]
    option.cost_parts = costs
    option.monthly_usd = sum(costs.values())
    option.notes.append("published versions only; no provisioned concurrency, EFS or /tmp "
                        "over 512 MB; re-seed randomness and reopen connections after restore "
                        "(modelambda registers the hooks)")
    _effective_p99(option, inputs)
    option.feasible = not option.reasons
    return option


def provisioned_option(inputs: Inputs, base: Option) -> Option:
    """Provisioned concurrency on a strategy: enough environments for the peak kept warm."""
    t = inputs.traffic
    count = max(1, math.ceil(t.peak * base.billed_ms / 1000 * 1.2))
    option = Option(f"{base.name} + provisioned concurrency ({count})", base.strategy,
                    "provisioned", memory_mb=base.memory_mb, ephemeral_mb=base.ephemeral_mb,
                    reasons=list(base.reasons), update_path=base.update_path + "; the alias's "
                    "provisioned environments are replaced on each publish",
                    update_without_deploy=base.update_without_deploy, vpc=base.vpc,
                    snapstart="not with provisioned concurrency")
    option.cold_start_ms = 0.0
    option.cold_parts = {"within the provisioned environments": 0.0}
    option.cold_start_here_ms = None
    option.warm_p50_ms, option.warm_p99_ms, option.billed_ms = \
        base.warm_p50_ms, base.warm_p99_ms, base.billed_ms
    gb = option.memory_mb / GB_MB
    prices = inputs.prices
    requests = t.requests_per_day * DAYS_PER_MONTH
    costs = {k: v for k, v in base.cost_parts.items() if not k.startswith("Lambda GB")}
    costs["provisioned concurrency"] = count * gb * SECONDS_PER_MONTH * \
        prices.provisioned_gb_s(t.architecture)
    costs["Lambda GB-seconds (provisioned rate)"] = requests * math.ceil(base.billed_ms) / 1000 \
        * gb * prices.provisioned_running_gb_s(t.architecture)
    for key in [k for k in costs if "at cold start" in k]:
        costs[key] = 0.0
    option.cost_parts = costs
    option.monthly_usd = sum(costs.values())
    option.notes.append(f"{count} environment(s) always initialised; requests beyond them "
                        "start cold as on demand")
    _effective_p99(option, inputs)
    option.feasible = not option.reasons
    return option


def sagemaker_serverless_option(inputs: Inputs, endpoint: Option) -> Option:
    """The endpoint as SageMaker Serverless Inference: scales to zero, cold starts of its own."""
    need = resident_mb(inputs)
    memory = max(1024, math.ceil(need * 1.2 / 1024) * 1024)
    option = Option("endpoint (SageMaker Serverless)", "endpoint", "sagemaker-serverless",
                    memory_mb=endpoint.memory_mb, reasons=[r for r in endpoint.reasons
                                                           if "SageMaker" not in r],
                    update_path="update the serverless endpoint's model (the function is "
                    "untouched)", update_without_deploy=True,
                    snapstart=endpoint.snapstart)
    if memory > C.SAGEMAKER_SERVERLESS_MAX_MB.value:
        option.reasons.append(f"the model needs about {need:,.0f} MB > "
                              f"{C.SAGEMAKER_SERVERLESS_MAX_MB.value:,.0f} MB (Serverless "
                              "Inference memory)")
    t = inputs.traffic
    p = inputs.profile
    load = p.load_ms * p.init_factor(C.MB_PER_VCPU.value, True)
    endpoint_cold = C.SAGEMAKER_SERVERLESS_COLD_MS.value + load
    option.cold_parts = {**endpoint.cold_parts, "serverless endpoint start": endpoint_cold}
    option.cold_start_ms = (endpoint.cold_start_ms or 0.0) + endpoint_cold
    option.warm_p50_ms, option.warm_p99_ms, option.billed_ms = \
        endpoint.warm_p50_ms, endpoint.warm_p99_ms, endpoint.billed_ms
    option.cold_starts_per_day = endpoint.cold_starts_per_day
    requests = t.requests_per_day * DAYS_PER_MONTH
    costs = {k: v for k, v in endpoint.cost_parts.items() if not k.startswith("SageMaker")}
    costs["SageMaker Serverless GB-seconds"] = requests * p.predict_p50_ms / 1000 * \
        memory / GB_MB * inputs.prices["sagemaker_serverless_gb_s"]
    costs["SageMaker data processed"] = requests * 2 * t.payload_kb / (1024 * 1024) * \
        inputs.prices["sagemaker_data_gb"]
    option.cost_parts = costs
    option.monthly_usd = sum(costs.values())
    option.notes.append(f"serverless endpoint at {memory} MB; both the function and the "
                        "endpoint can be cold on the same request")
    _effective_p99(option, inputs)
    option.feasible = not option.reasons
    return option


def managed_instances_option(inputs: Inputs, base: Option | None) -> Option:
    """Lambda Managed Instances: the function on EC2 capacity Lambda manages; many requests per
    environment, scaling on CPU, at least three instances, no scale to zero."""
    t = inputs.traffic
    p = inputs.profile
    need = resident_mb(inputs)
    instance = _instance_for(inputs.prices.ec2, need * 2, t.architecture)
    option = Option("Lambda Managed Instances", base.strategy if base else "bundle", "managed",
                    memory_mb=int(need), update_path=(base.update_path if base else "redeploy")
                    + "; instances roll to the new version",
                    update_without_deploy=bool(base and base.update_without_deploy), vpc=True,
                    snapstart="not applicable (no cold starts per request)")
    if base is None:
        option.reasons.append("no strategy builds a function for it")
    if instance is None:
        option.reasons.append(f"no {t.architecture} instance in prices.json holds "
                              f"{need * 2:,.0f} MB")
        option.feasible = False
        return option
    if t.payload_kb * 1024 > limits.SYNC_PAYLOAD_BYTES:
        option.reasons.append(f"payload {t.payload_kb:,.0f} KB > 6 MB synchronous invoke limit")
    rps = _instance_rps(instance, p.predict_p50_ms * p.single_factor(1.0, True))
    count = max(int(C.MANAGED_INSTANCES_MIN.value), math.ceil(t.peak / rps))
    prices = inputs.prices
    costs = {f"EC2 {count} x {instance.name} (+{prices['managed_instances_fee']:.0%} fee)":
             count * instance.hour * HOURS_PER_MONTH * (1 + prices["managed_instances_fee"]),
             "requests": t.requests_per_day * DAYS_PER_MONTH * prices["managed_instances_request"]}
    option.cost_parts = costs
    option.monthly_usd = sum(costs.values())
    option.cold_start_ms = 0.0
    option.cold_parts = {"none per request (capacity scales ahead on CPU)": 0.0}
    duration = max(0.0, p.warm_p50_ms - p.predict_p50_ms) + p.predict_p50_ms
    option.warm_p50_ms = C.LAMBDA_INVOKE_OVERHEAD_MS.value + duration * p.single_factor(1, True)
    option.warm_p99_ms = option.warm_p50_ms + max(0.0, p.warm_p99_ms - p.warm_p50_ms)
    option.billed_ms = 0.0
    option.notes.append(f"{count} x {instance.name} ({instance.vcpu} vCPU, "
                        f"{instance.memory_gb:g} GB) for {t.peak:,.1f} req/s peak; VPC; "
                        "handlers must be thread-safe (python3.13+ runs several processes); "
                        "traffic more than doubling within 5 minutes may be throttled")
    _effective_p99(option, inputs)
    option.feasible = not option.reasons
    return option


# --- all of them --------------------------------------------------------------------------------


STRATEGY_ORDER = ("bundle", "layer", "image", "s3", "endpoint", "efs")


def evaluate(inputs: Inputs) -> list[Option]:
    """Every option for these inputs, in a stable order."""
    names = [s for s in STRATEGY_ORDER if s in inputs.sizes] + \
        [s for s in inputs.sizes if s not in STRATEGY_ORDER]
    base = {name: strategy_option(inputs, name) for name in names}
    rows = list(base.values())
    for name in names:
        option = base[name]
        if option.snapstart == "allowed":
            rows.append(snapstart_option(inputs, option))
    on_demand = [o for o in base.values() if o.feasible and o.strategy != "endpoint"]
    cheapest = min(on_demand, key=lambda o: o.monthly_usd) if on_demand else None
    if cheapest is not None:
        rows.append(provisioned_option(inputs, cheapest))
    if "endpoint" in base:
        rows.append(sagemaker_serverless_option(inputs, base["endpoint"]))
    ships = [base[n] for n in ("bundle", "image", "s3") if n in base and base[n].feasible]
    rows.append(managed_instances_option(inputs, ships[0] if ships else cheapest))
    return rows
