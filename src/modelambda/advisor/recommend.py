"""The recommendation: plain rules over the rows of ``model.evaluate``. Pure.

1. **Feasible only.** An option a limit rules out (the build's size checks, memory, /tmp,
   payload, instance sizes) is never recommended; its row says which limit.
2. **Latency.** With ``--p99-ms``, an option meets it when the p99 a caller sees at this
   traffic does: its cold start when at least 1 % of requests start cold, else its warm p99.
   Only options that meet it are candidates; when none does, the one with the lowest p99 is
   recommended and the answer says the target is not met.
3. **Cheapest, within a band.** Among the candidates, those within 10 % (+ $1) a month of the
   cheapest count as equally cheap.
4. **Frequent updates.** With ``--model-updates-per-month`` of 4 or more, a decoupled option
   (a new model version reaches running functions without a redeploy: s3, efs, endpoint) wins
   when one costs within 25 % (+ $5) a month of the cheapest candidate.
5. **Then the faster cold start, then the simpler option.** Among equally cheap candidates,
   those whose cold start is within 25 % (or 500 ms) of the fastest count as equally fast
   (a hard latency need is ``--p99-ms``, rule 2), and the
   simplest of them wins, in the order bundle, layer, s3, image, efs, endpoint, then the
   variants (an image needs a registry and image builds, EFS a VPC and a file system).
6. **Break-even.** The traffic at which Lambda Managed Instances, and a SageMaker real-time
   endpoint, become cheaper than the best on-demand Lambda option is named (same peak-to-
   average shape, volumes from 1,000 to 10^10 requests a day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelambda.advisor import constants as C
from modelambda.advisor.model import Inputs, Option, evaluate

SIMPLICITY = ("bundle", "layer", "s3", "image", "efs", "endpoint (SageMaker real-time)")


@dataclass
class Recommendation:
    option: Option | None
    reasons: list[str] = field(default_factory=list)
    break_even: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"option": self.option.name if self.option else None, "reasons": self.reasons,
                "break_even": self.break_even}


def _rank(option: Option) -> int:
    return SIMPLICITY.index(option.name) if option.name in SIMPLICITY else len(SIMPLICITY)


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd < 1000 else f"${usd:,.0f}"


def _latency_candidates(feasible: list[Option], inputs: Inputs, why: list[str]
                        ) -> list[Option]:
    target = inputs.traffic.p99_ms
    if target is None:
        return feasible
    meeting = [o for o in feasible if o.meets_p99]
    if meeting:
        missed = [o.name for o in feasible if not o.meets_p99]
        why.append(f"p99 target {target:,.0f} ms: met by {len(meeting)} option(s); not by "
                   + (", ".join(missed[:6]) or "none"))
        return meeting
    best = min(feasible, key=lambda o: o.p99_ms)
    why.append(f"p99 target {target:,.0f} ms: no option meets it; {best.name} comes closest "
               f"({best.p99_ms:,.0f} ms)")
    return [best]


def choose(options: list[Option], inputs: Inputs) -> Recommendation:
    why: list[str] = []
    feasible = [o for o in options if o.feasible]
    ruled_out = [o for o in options if not o.feasible]
    if ruled_out:
        why.append("ruled out: " + "; ".join(f"{o.name} ({o.reasons[0]})" for o in ruled_out))
    if not feasible:
        return Recommendation(None, [*why, "no option is feasible"])
    candidates = _latency_candidates(feasible, inputs, why)
    cheapest = min(o.monthly_usd for o in candidates)
    band = cheapest * C.COST_BAND_FACTOR.value + C.COST_BAND_USD.value
    pool = [o for o in candidates if o.monthly_usd <= band]
    updates = inputs.traffic.model_updates_per_month
    if updates >= C.FREQUENT_UPDATES_PER_MONTH.value:
        wide = cheapest * C.DECOUPLED_BAND_FACTOR.value + C.DECOUPLED_BAND_USD.value
        decoupled = [o for o in candidates if o.decoupled and o.monthly_usd <= wide]
        if decoupled:
            why.append(f"{updates:g} model updates a month: decoupled options (no redeploy "
                       f"per update) preferred: {', '.join(o.name for o in decoupled)}")
            pool = decoupled
        else:
            why.append(f"{updates:g} model updates a month, but no decoupled option is within "
                       f"25 % of the cheapest ({_money(cheapest)}/month)")
    fastest = min((o.cold_start_ms or 0.0) for o in pool)
    limit = max(fastest * C.COLD_BAND_FACTOR.value, fastest + C.COLD_BAND_MS.value)
    quick = [o for o in pool if (o.cold_start_ms or 0.0) <= limit]
    chosen = min(quick, key=lambda o: (_rank(o), o.monthly_usd))
    why.insert(0, f"{chosen.name}: {_money(chosen.monthly_usd)}/month, cold start "
               f"~{chosen.cold_start_ms or 0:,.0f} ms, warm p50 ~{chosen.warm_p50_ms:,.0f} ms, "
               f"update: {chosen.update_path}")
    others = sorted((o for o in pool if o is not chosen), key=lambda o: o.monthly_usd)
    if others:
        why.append("about as good: " + ", ".join(
            f"{o.name} ({_money(o.monthly_usd)}, cold ~{o.cold_start_ms or 0:,.0f} ms)"
            for o in others[:3]))
    return Recommendation(chosen, why)


def _first_cheaper(inputs: Inputs, pick: Callable[[list[Option]], Option | None]
                   ) -> float | None:
    """The lowest requests per day (on a 1-2-5 grid) at which ``pick``'s option is cheaper
    than the best feasible on-demand Lambda option."""
    from dataclasses import replace

    grid = [m * 10 ** e for e in range(3, 11) for m in (1, 2, 5)]
    for volume in grid:
        scaled = replace(inputs, traffic=inputs.traffic.scaled(float(volume)))
        rows = evaluate(scaled)
        rival = pick(rows)
        lam = [o for o in rows if o.feasible and o.kind == "lambda"
               and o.strategy != "endpoint"]
        if rival is None or not rival.feasible:
            continue
        if not lam or rival.monthly_usd < min(o.monthly_usd for o in lam):
            return float(volume)
    return None


def break_even(inputs: Inputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rivals: dict[str, Callable[[list[Option]], Option | None]] = {
        "Lambda Managed Instances": lambda rows: next(
            (o for o in rows if o.kind == "managed"), None),
        "endpoint (SageMaker real-time)": lambda rows: next(
            (o for o in rows if o.name == "endpoint (SageMaker real-time)"), None),
    }
    for name, pick in rivals.items():
        volume = _first_cheaper(inputs, pick)
        out[name] = None if volume is None else {
            "requests_per_day": volume, "average_rps": round(volume / 86400, 2),
            "text": f"{name} becomes cheaper than on-demand Lambda from about "
                    f"{volume:,.0f} requests a day ({volume / 86400:,.1f} req/s on average)"}
    return out


def advise(inputs: Inputs) -> tuple[list[Option], Recommendation]:
    options = evaluate(inputs)
    recommendation = choose(options, inputs)
    recommendation.break_even = break_even(inputs)
    for name, entry in recommendation.break_even.items():
        recommendation.reasons.append(
            entry["text"] if entry is not None else
            f"{name} is not cheaper than on-demand Lambda at any volume up to 10^10 requests "
            "a day (or is not feasible)")
    return options, recommendation
