"""The traffic and choices ``advise`` is asked about, checked, and how often environments start.

Cold starts per day on demand (documented rules, constants in ``constants.py``):

- idle gaps: a request finds no warm environment when the one before it came more than
  ``IDLE_KEEP_S`` earlier; for requests arriving at random (Poisson) at rate r per second that
  is a share exp(-r * IDLE_KEEP_S) of them;
- scaling: the environments the peak needs beyond one, ceil(peak rps x warm duration), start
  once a day as traffic ramps up;
- recycling: the environments that stay busy are replaced every ``ENV_LIFETIME_H`` hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelambda import limits
from modelambda.advisor import constants as C
from modelambda.errors import UsageError

MAX_REQUESTS_PER_DAY = 1e10  # ~115,000 requests per second, every second of the day
MAX_PEAK_RPS = 1e6
MAX_PAYLOAD_KB = 1024 * 1024  # 1 GB: past any invoke limit; bigger is a mistake
MAX_UPDATES_PER_MONTH = 44640  # one a minute


@dataclass(frozen=True)
class Traffic:
    requests_per_day: float = 10_000
    peak_rps: float | None = None  # None: 3x the average, at least 1
    payload_kb: float = 1.0
    p99_ms: float | None = None
    model_updates_per_month: float = 1.0
    architecture: str = "x86_64"

    @property
    def average_rps(self) -> float:
        return self.requests_per_day / 86400

    @property
    def peak(self) -> float:
        if self.peak_rps is not None:
            return self.peak_rps
        return max(3 * self.average_rps, 1.0) if self.requests_per_day > 0 else 0.0

    def scaled(self, requests_per_day: float) -> Traffic:
        """The same shape (peak to average) at another volume: for break-even sweeps."""
        factor = requests_per_day / self.requests_per_day if self.requests_per_day else 0.0
        return Traffic(requests_per_day, self.peak * factor if self.peak_rps is not None
                       else None, self.payload_kb, self.p99_ms, self.model_updates_per_month,
                       self.architecture)


def _bad(what: str, value: float, rule: str) -> UsageError:
    return UsageError(f"{what} {value:g} {rule}")


def _check_volumes(t: Traffic) -> None:
    for name, value in (("--requests-per-day", t.requests_per_day), ("--payload-kb",
                        t.payload_kb), ("--model-updates-per-month",
                                        t.model_updates_per_month)):
        if math.isnan(value) or math.isinf(value):
            raise _bad(name, value, "is not a number")
        if value < 0:
            raise _bad(name, value, "is negative")
    if t.requests_per_day > MAX_REQUESTS_PER_DAY:
        raise _bad("--requests-per-day", t.requests_per_day,
                   f"is absurd (over {MAX_REQUESTS_PER_DAY:g}, {MAX_REQUESTS_PER_DAY / 86400:,.0f}"
                   " requests per second all day)")
    if t.payload_kb <= 0:
        raise _bad("--payload-kb", t.payload_kb, "must be more than 0")
    if t.payload_kb > MAX_PAYLOAD_KB:
        raise _bad("--payload-kb", t.payload_kb, "is absurd (over 1 GB per request)")
    if t.model_updates_per_month > MAX_UPDATES_PER_MONTH:
        raise _bad("--model-updates-per-month", t.model_updates_per_month,
                   "is absurd (over one a minute)")


def _check_peak(t: Traffic) -> None:
    if t.peak_rps is None:
        return
    if math.isnan(t.peak_rps) or t.peak_rps <= 0:
        raise _bad("--peak-rps", t.peak_rps, "must be more than 0")
    if t.peak_rps > MAX_PEAK_RPS:
        raise _bad("--peak-rps", t.peak_rps, f"is absurd (over {MAX_PEAK_RPS:g})")
    if t.peak_rps < t.average_rps * 0.999:
        raise _bad("--peak-rps", t.peak_rps, f"is below the average of --requests-per-day "
                   f"({t.average_rps:.3g} requests per second)")


def check(traffic: Traffic) -> Traffic:
    """UsageError naming the first value out of range."""
    _check_volumes(traffic)
    _check_peak(traffic)
    if traffic.p99_ms is not None and (math.isnan(traffic.p99_ms) or traffic.p99_ms <= 0):
        raise _bad("--p99-ms", traffic.p99_ms, "must be more than 0")
    if traffic.architecture not in limits.ARCHITECTURES:
        raise UsageError(f"unknown architecture {traffic.architecture!r}; known: "
                         f"{', '.join(limits.ARCHITECTURES)}")
    return traffic


def cold_starts_per_day(traffic: Traffic, warm_s: float) -> float:
    rpd = traffic.requests_per_day
    if rpd <= 0:
        return 0.0
    rate = traffic.average_rps
    keep = C.IDLE_KEEP_S.value
    idle = rpd * math.exp(-rate * keep)
    peak_envs = max(1, math.ceil(traffic.peak * warm_s))
    scaling = float(peak_envs - 1)
    busy_envs = max(1.0, rate * warm_s)
    recycling = busy_envs * 24 / C.ENV_LIFETIME_H.value * (1 - math.exp(-rate * keep))
    return min(rpd, idle + scaling + recycling)
