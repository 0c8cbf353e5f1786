"""Percentiles, Power Tuning's averages and picks, and Lambda's bill per request. Pure.

AWS Lambda Power Tuning (alexcasalboni/aws-lambda-power-tuning 4.4.0) averages a memory
size's samples with the top and bottom 20 % dropped, costs a request as ceil(billed ms) x the
per-ms price at 128 MB x memory/128 (request charges left out), and picks the memory size by
``cost``, ``speed`` or ``balanced`` (minimising w*cost/maxCost + (1-w)*duration/maxDuration,
w = 0.5). ``picks`` does the same over the sizes bench measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.advisor.prices import Prices

TRIM = 0.2
BALANCED_WEIGHT = 0.5


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(samples, q), 3) for q in (50, 90, 99)} | {
        "min": round(min(samples), 3) if samples else math.nan,
        "max": round(max(samples), 3) if samples else math.nan,
        "n": len(samples)}


def trimmed_mean(samples: Sequence[float], trim: float = TRIM) -> float:
    """The mean with the top and bottom ``trim`` fraction dropped (Power Tuning's average)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    cut = int(len(ordered) * trim)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def request_cost(billed_ms: float, memory_mb: int, prices: Prices, arch: str = "x86_64"
                 ) -> float:
    """Power Tuning's cost of one invocation: ceil(billed ms) x the per-ms price at 128 MB x
    memory / 128 (Lambda's price is per GB-second, so this is exact)."""
    per_ms_128 = prices.lambda_gb_s(arch) * (128 / 1024) / 1000
    return math.ceil(billed_ms) * per_ms_128 * memory_mb / 128


def cost_per_million(billed_ms: float, memory_mb: int, prices: Prices, arch: str = "x86_64",
                     *, cold_share: float = 0.0, cold_billed_ms: float = 0.0) -> float:
    """USD per million requests: the request charge, the warm billed duration and, for a
    share ``cold_share`` of cold requests, their init billed too (since 2025-08-01)."""
    warm = request_cost(billed_ms, memory_mb, prices, arch)
    cold = request_cost(cold_billed_ms, memory_mb, prices, arch)
    return 1e6 * (prices["lambda_request"] + (1 - cold_share) * warm + cold_share * cold)


def picks(by_memory: Mapping[int, Mapping[str, Any]]) -> dict[str, int]:
    """Power Tuning's three picks over ``{memory_mb: {"duration_ms": ..., "cost": ...}}``."""
    sizes = [m for m, row in by_memory.items()
             if not math.isnan(float(row["duration_ms"])) and not math.isnan(float(row["cost"]))]
    if not sizes:
        return {}
    max_cost = max(float(by_memory[m]["cost"]) for m in sizes) or 1.0
    max_duration = max(float(by_memory[m]["duration_ms"]) for m in sizes) or 1.0

    def balanced(m: int) -> float:
        row = by_memory[m]
        return (BALANCED_WEIGHT * float(row["cost"]) / max_cost
                + (1 - BALANCED_WEIGHT) * float(row["duration_ms"]) / max_duration)

    return {"cost": min(sizes, key=lambda m: (float(by_memory[m]["cost"]), m)),
            "speed": min(sizes, key=lambda m: (float(by_memory[m]["duration_ms"]), m)),
            "balanced": min(sizes, key=lambda m: (balanced(m), m))}
