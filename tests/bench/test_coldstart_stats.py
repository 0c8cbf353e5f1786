"""The cold-start breakdown from an environment's own output, and Power Tuning's arithmetic."""

from __future__ import annotations

import math

import pytest

from modelambda.advisor.prices import load_prices
from modelambda.bench import stats
from modelambda.bench.coldstart import cold_start, parse_imports, parse_report

# What an environment printed before its first START (shortened): Python's import profile,
# awslambdaric's imports first, then the handler's, then the runtime's init record.
LINES = [
    "import time: self [us] | cumulative | imported package",
    "import time:       350 |      17211 | runpy",
    "import time:      1858 |     190003 | awslambdaric.lambda_runtime_client",
    "import time:       631 |        631 | modelambda.runtime.errors",
    "import time:      1583 |       6496 | modelambda.runtime.prefetch",
    "import time:      9213 |     681786 |   modelambda.runtime.contract",
    "import time:       995 |     691943 | modelambda.runtime.app",
    "import time:     10999 |      10999 |   onnxruntime.capi.onnxruntime_inference_collection",
    "import time:      1575 |     208067 | onnxruntime",
    "import time:      1000 |      50000 | tokenizers",
    '{"level":"INFO","message":"init","init_ms":400.0,"fetch_ms":null}',
]
REPORT = ("REPORT RequestId: x\tDuration: 5.78 ms\tBilled Duration: 1332 ms\tMemory Size: 512 "
          "MB\tMax Memory Used: 26 MB\tInit Duration: 1325.29 ms")


def test_report_fields() -> None:
    fields = parse_report(REPORT)
    assert fields["Init Duration"] == pytest.approx(1325.29)
    assert fields["Billed Duration"] == 1332 and fields["Max Memory Used"] == 26


def test_imports_are_split_at_the_app_module() -> None:
    imports = parse_imports(LINES, "onnx")
    assert imports.runtime_client_ms == pytest.approx(17.211 + 190.003)
    assert imports.before_app_ms == pytest.approx(0.631 + 6.496 + 691.943)
    assert imports.in_app_ms == pytest.approx(208.067 + 50.0)
    assert imports.backend_ms == pytest.approx(208.067)


def test_breakdown_adds_up_to_init_plus_first_duration() -> None:
    cold = cold_start(LINES, REPORT, client_ms=1340.0, framework="onnx")
    parts = cold.breakdown()
    assert sum(parts.values()) == pytest.approx(cold.cold_ms, abs=0.05)
    assert parts["imports"] == pytest.approx(0.631 + 6.496 + 691.943 + 258.067, abs=0.01)
    assert parts["load"] == pytest.approx(400.0 - 258.067, abs=0.01)
    assert parts["fetch"] == 0.0
    assert parts["first_prediction"] == pytest.approx(5.78)


def test_a_remote_fetch_counts_only_where_the_imports_do_not_hide_it() -> None:
    lines = [*LINES[:-1], '{"level":"INFO","message":"init","init_ms":900.0,"fetch_ms":1500}']
    parts = cold_start(lines, REPORT, 0.0, "onnx").breakdown()
    hidden = 0.631 + 6.496 + 691.943 + 208.067
    assert parts["fetch"] == pytest.approx(1500 - hidden, abs=0.01)


def test_percentiles_and_trimmed_mean() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert stats.percentile(samples, 50) == pytest.approx(50.5)
    assert stats.percentile(samples, 99) == pytest.approx(99.01)
    assert stats.trimmed_mean([1, 2, 3, 4, 100]) == pytest.approx(3.0)
    assert math.isnan(stats.percentile([], 50))


def test_power_tuning_cost_formula_and_picks() -> None:
    prices = load_prices()
    # ceil(billed) x the per-ms price at 128 MB x memory / 128
    assert stats.request_cost(10.2, 1024, prices) == pytest.approx(
        11 * prices["lambda_gb_s_x86_64"] / 8 / 1000 * 8)
    # duration falls with memory until the CPU stops helping: cost has a minimum between
    table = {512: {"duration_ms": 400.0}, 1024: {"duration_ms": 190.0},
             1769: {"duration_ms": 115.0}, 3008: {"duration_ms": 100.0}}
    for memory, row in table.items():
        row["cost"] = stats.request_cost(row["duration_ms"], memory, prices)
    picks = stats.picks(table)
    assert picks["speed"] == 3008
    assert picks["cost"] == 1024
    assert picks["balanced"] in (1024, 1769)
