"""``modelambda bench`` on iris at two memory sizes, end to end through the console script:
bench.json (machine, versions, date, the emulator's cgroup mode, the breakdown, the bill and
Power Tuning's picks) and the three PNG charts. Timings are recorded, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import copy_iris, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_bench_iris_two_memory_sizes(tmp_path: Path) -> None:
    iris = copy_iris(tmp_path / "iris")
    out = tmp_path / "bench"
    done = run_cli("bench", iris, "--strategies", "bundle", "--memory", "512,1769", "--cold",
                   "2", "--warm", "6", "--concurrency", "1,2", "--out", out, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Power Tuning picks" in done.stdout
    assert done.stderr.strip() == ""  # quiet when stderr is not a terminal
    doc = json.loads((out / "bench.json").read_text())
    assert doc["kind"] == "modelambda-bench" and doc["model"]["name"] == "iris"
    assert doc["machine"]["cores"] >= 1 and doc["versions"]["modelambda"]
    assert doc["date"].startswith("20")
    assert doc["emulator"]["cgroups"]  # "v1", "v2" or "off ...": which mode was active
    rows = doc["results"]["bundle"]["memory"]
    assert set(rows) == {"512", "1769"}
    for row in rows.values():
        parts = row["cold"]["breakdown"]
        assert set(parts) == {"runtime_start", "imports", "fetch", "load", "first_prediction"}
        assert parts["imports"] > 0 and parts["runtime_start"] > 0
        for sample in row["cold"]["samples"]:
            assert sum(sample["breakdown"].values()) == pytest.approx(sample["cold_ms"],
                                                                      abs=0.1)
        assert row["warm"]["client_ms"]["n"] == 6
        assert row["warm"]["max_memory_mb"] > 0
        assert set(row["throughput"]) == {"1", "2"}
        assert row["throughput"]["2"]["rps"] > 0
        assert row["bill"]["cost_per_million_warm"] > 0.2  # the request charge at least
    assert set(doc["results"]["bundle"]["power_tuning"]["picks"]) == {"cost", "speed",
                                                                       "balanced"}
    for name in ("cold-start.png", "latency.png", "cost-duration.png"):
        assert (out / name).read_bytes()[:8] == PNG
