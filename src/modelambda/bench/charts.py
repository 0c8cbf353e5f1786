"""PNG charts of a bench.json document (matplotlib, headless Agg backend).

- ``cold-start.png``: the cold-start breakdown (runtime start, imports, fetch, load, first
  prediction) as stacked bars, per strategy and memory size;
- ``latency.png``: warm latency p50 / p90 / p99 per strategy and memory size;
- ``cost-duration.png``: Power Tuning's chart for each strategy: warm duration and cost per
  million requests against memory size, the picks marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelambda.bench.coldstart import PARTS
from modelambda.errors import UsageError

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise UsageError("charts need matplotlib: pip install 'modelambda[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rows(doc: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for strategy, result in doc.get("results", {}).items():
        for memory, row in result.get("memory", {}).items():
            if "cold" in row:
                out.append((strategy, int(memory), row))
    return out


def cold_start_chart(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    rows = _rows(doc)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.5))
    labels = [f"{s}\n{m} MB" for s, m, _ in rows]
    bottoms = [0.0] * len(rows)
    for colour, part in zip(COLOURS, PARTS, strict=False):
        values = [float(r["cold"]["breakdown"][part]) for _, _, r in rows]
        ax.bar(range(len(rows)), values, bottom=bottoms, color=colour,
               label=part.replace("_", " "))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("ms (median of cold starts)")
    ax.set_title(f"{doc.get('service')}: cold start by part "
                 f"(emulator, cgroups {doc.get('emulator', {}).get('cgroups')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_chart(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    rows = [r for r in _rows(doc) if "warm" in r[2]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.5))
    width = 0.27
    for offset, (colour, q) in enumerate(zip(COLOURS, ("p50", "p90", "p99"), strict=False)):
        values = [float(r["warm"]["client_ms"][q]) for _, _, r in rows]
        ax.bar([i + (offset - 1) * width for i in range(len(rows))], values, width,
               color=colour, label=q)
    ax.set_xticks(range(len(rows)), [f"{s}\n{m} MB" for s, m, _ in rows], fontsize=7)
    ax.set_ylabel("ms, warm invoke (client side)")
    ax.set_title(f"{doc.get('service')}: warm latency percentiles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_duration_chart(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for colour, (strategy, result) in zip(COLOURS, doc.get("results", {}).items(),
                                          strict=False):
        table = result.get("power_tuning", {}).get("table", {})
        if not table:
            continue
        memory = sorted(int(m) for m in table)
        duration = [table[str(m)]["duration_ms"] for m in memory]
        cost = [table[str(m)]["cost"] * 1e6 for m in memory]
        left.plot(memory, duration, marker="o", color=colour, label=strategy)
        right.plot(memory, cost, marker="o", color=colour, label=strategy)
        best = result["power_tuning"].get("picks", {}).get("cost")
        if best is not None:
            right.scatter([best], [table[str(best)]["cost"] * 1e6], s=120,
                          facecolors="none", edgecolors=colour)
    left.set_xlabel("memory (MB)")
    left.set_ylabel("warm duration, trimmed mean (ms)")
    right.set_xlabel("memory (MB)")
    right.set_ylabel("USD per million requests (compute, Power Tuning's formula)")
    left.set_title("duration against memory")
    right.set_title("cost against memory (circle: cheapest)")
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_charts(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [cold_start_chart(doc, out / "cold-start.png"),
            latency_chart(doc, out / "latency.png"),
            cost_duration_chart(doc, out / "cost-duration.png")]
