"""What ``advise`` prints: a table, the recommendation with its reasons, as text, JSON or PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelambda.advisor import constants as C
from modelambda.advisor.model import Inputs, Option
from modelambda.advisor.recommend import Recommendation
from modelambda.advisor.sizes import mb


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(options: list[Option]) -> str:
    header = ("option", "feasible", "memory", "cold ms", "warm p50/p99", "$/month",
              "update", "ops")
    rows = []
    for o in options:
        ops = ", ".join(x for x in ("VPC" if o.vpc else "", f"SnapStart: {o.snapstart}"
                                    if o.kind == "lambda" else "",
                                    f"{o.cold_starts_per_day:,.0f} cold/day") if x)
        rows.append((o.name, "yes" if o.feasible else "no: " + "; ".join(o.reasons),
                     f"{o.memory_mb} MB", _ms(o.cold_start_ms),
                     f"{_ms(o.warm_p50_ms)}/{_ms(o.warm_p99_ms)}",
                     f"{o.monthly_usd:,.2f}",
                     ("alias/no redeploy" if o.update_without_deploy else "redeploy"), ops))
    widths = [min(max(len(str(r[i])) for r in [header, *rows]), 48) for i in range(len(header))]
    lines = ["  ".join(str(c)[:w].ljust(w) for c, w in zip(header, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def text(options: list[Option], recommendation: Recommendation, inputs: Inputs,
         header: str) -> str:
    out = [header, "", table(options), ""]
    if recommendation.option is not None:
        out.append(f"recommended: {recommendation.option.name}")
    else:
        out.append("recommended: nothing fits")
    out += [f"  - {line}" for line in recommendation.reasons]
    out.append("")
    for o in options:
        if o.notes and o.feasible:
            out.append(f"{o.name}: " + "; ".join(o.notes))
    out.append(f"prices of {inputs.prices.date} ({inputs.prices.region}); profile: "
               f"{inputs.profile.source} ({inputs.profile.strategy} at "
               f"{inputs.profile.memory_mb} MB, cgroups {inputs.profile.cgroups}); constants "
               "and their sources: modelambda advise --json")
    return "\n".join(out)


def header_line(service: str, inputs: Inputs) -> str:
    t = inputs.traffic
    return (f"{service}: model {mb(inputs.model_bytes)}; {t.requests_per_day:,.0f} requests/day, "
            f"peak {t.peak:,.1f} req/s, payload {t.payload_kb:g} KB"
            + (f", p99 target {t.p99_ms:,.0f} ms" if t.p99_ms else "")
            + f", {t.model_updates_per_month:g} model updates/month, {t.architecture}")


def as_json(options: list[Option], recommendation: Recommendation, inputs: Inputs,
            service: str) -> dict[str, Any]:
    t = inputs.traffic
    return {"service": service, "model_bytes": inputs.model_bytes,
            "traffic": {"requests_per_day": t.requests_per_day, "peak_rps": t.peak,
                        "payload_kb": t.payload_kb, "p99_ms": t.p99_ms,
                        "model_updates_per_month": t.model_updates_per_month,
                        "architecture": t.architecture},
            "options": [o.as_dict() for o in options],
            "recommendation": recommendation.as_dict(),
            "sizes": {name: s.as_dict() for name, s in inputs.sizes.items()},
            "profile": inputs.profile.as_dict(),
            "prices": {"date": inputs.prices.date, "region": inputs.prices.region},
            "constants": {name: {"value": c.value, "unit": c.unit, "source": c.source,
                                 "kind": c.kind} for name, c in C.all_constants().items()}}


def plot(options: list[Option], recommendation: Recommendation, path: Path) -> Path:
    from modelambda.bench.charts import _pyplot

    plt = _pyplot()
    feasible = [o for o in options if o.feasible]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(4.0, 0.35 * len(feasible) + 1.5)))
    names = [o.name for o in feasible]
    colours = ["#c44e52" if recommendation.option is o else "#4c72b0" for o in feasible]
    left.barh(names, [o.cold_start_ms or 0.0 for o in feasible], color=colours)
    left.set_xlabel("cold start on Lambda, estimated (ms)")
    left.invert_yaxis()
    right.barh(names, [max(o.monthly_usd, 0.01) for o in feasible], color=colours)
    right.set_xscale("log")
    right.set_xlabel("monthly cost (USD, log scale)")
    right.invert_yaxis()
    right.set_yticks(range(len(names)), [""] * len(names))
    fig.suptitle("modelambda advise (red: recommended)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
