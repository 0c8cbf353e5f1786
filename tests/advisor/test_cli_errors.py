"""Bad input to ``advise`` and ``bench`` through the console script: exit 2, one line, no
traceback, before anything is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import copy_iris, one_error_line, run_cli


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    return copy_iris(tmp_path / "iris")


@pytest.mark.parametrize(("args", "expected"), [
    (["--requests-per-day", "-5"], "--requests-per-day -5 is negative"),
    (["--requests-per-day", "1e13"], "is absurd"),
    (["--payload-kb", "0"], "--payload-kb 0 must be more than 0"),
    (["--peak-rps", "0.001", "--requests-per-day", "1000000"], "is below the average"),
    (["--model-updates-per-month", "nan"], "is not a number"),
    (["--arch", "sparc"], "unknown architecture 'sparc'; known: x86_64, arm64"),
    (["--strategies", "bundle,lambda2"], "unknown strategy 'lambda2'; known: bundle"),
])
def test_advise_refuses_bad_traffic_and_names(iris: Path, args: list[str], expected: str
                                              ) -> None:
    line = one_error_line(run_cli("advise", iris, *args, timeout=60), "advise")
    assert expected in line, line
    assert not (iris / ".modelambda").exists()  # nothing was built


def test_advise_needs_a_spec(tmp_path: Path) -> None:
    line = one_error_line(run_cli("advise", tmp_path, timeout=60), "advise")
    assert "no modelambda.toml" in line


def test_advise_refuses_a_bench_file_of_another_model(iris: Path, tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"kind": "modelambda-bench", "model": {
        "name": "minilm", "version": "abc"}, "results": {}}))
    line = one_error_line(run_cli("advise", iris, "--from-bench", bench, timeout=60), "advise")
    assert "measured model 'minilm'" in line and "not this service's 'iris'" in line
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    line = one_error_line(run_cli("advise", iris, "--from-bench", other, timeout=60), "advise")
    assert "is not a bench file" in line


@pytest.mark.parametrize(("args", "expected"), [
    (["--strategies", "nope"], "unknown strategy 'nope'"),
    (["--memory", "64"], "memory 64 MB is outside Lambda's 128..10240 MB"),
    (["--memory", "big"], "--memory takes comma-separated whole numbers"),
    (["--cold", "0"], "--cold and --warm need at least 1 sample each"),
    (["--arch", "mips"], "unknown architecture 'mips'"),
])
def test_bench_refuses_bad_options(iris: Path, args: list[str], expected: str) -> None:
    line = one_error_line(run_cli("bench", iris, *args, timeout=60), "bench")
    assert expected in line, line


def test_bench_needs_a_spec(tmp_path: Path) -> None:
    line = one_error_line(run_cli("bench", tmp_path, timeout=60), "bench")
    assert "no modelambda.toml" in line


def test_help_has_examples() -> None:
    for command in ("advise", "bench"):
        done = run_cli(command, "--help", timeout=60)
        assert done.returncode == 0 and "examples:" in done.stdout
