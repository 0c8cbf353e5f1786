"""``modelambda advise`` on iris end to end through the console script, without a bench file:
sizes from real builds, a short profile run on the emulator, the JSON and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import copy_iris, run_cli


@pytest.mark.slow
def test_advise_iris_json_and_plot(tmp_path: Path) -> None:
    iris = copy_iris(tmp_path / "iris")
    plot = tmp_path / "advise.png"
    done = run_cli("advise", iris, "--strategies", "bundle,s3,endpoint", "--json",
                   "--requests-per-day", "5000", "--plot", plot, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    # the last advice is kept where up's console shows it
    assert json.loads((iris / ".modelambda" / "advise" / "advise.json").read_text()) == doc
    assert doc["profile"]["source"] == "a short profile run"
    assert doc["profile"]["strategy"] == "bundle"
    names = [o["name"] for o in doc["options"]]
    assert names[:3] == ["bundle", "s3", "endpoint (SageMaker real-time)"]
    assert "bundle + SnapStart" in names and "Lambda Managed Instances" in names
    assert "endpoint (SageMaker Serverless)" in names
    bundle = doc["options"][0]
    assert bundle["feasible"] and bundle["cold_start_ms"] > 0 and bundle["monthly_usd"] > 0
    assert doc["sizes"]["bundle"]["function_bytes"] > 0  # from the real build
    assert doc["recommendation"]["option"] == "bundle"
    assert doc["prices"]["date"] and all(c["source"] for c in doc["constants"].values())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
