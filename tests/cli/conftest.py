"""Helpers for the command-line tests: the real console script, clean environments, copies of
the examples in tmp_path (never built in place)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import IRIS

# The console script pip installed beside this interpreter: what a user runs.
CLI = Path(sys.executable).parent / "modelambda"


def run_cli(*args: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True,
                          env=dict(env) if env is not None else None, cwd=cwd, timeout=timeout)


def no_aws_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any AWS setting, with an empty home (no ~/.aws)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def copy_iris(target: Path, strategy_toml: str | None = None) -> Path:
    """A copy of examples/iris at ``target``; ``strategy_toml`` replaces its [strategy]."""
    shutil.copytree(IRIS, target, ignore=shutil.ignore_patterns(".modelambda"))
    if strategy_toml is not None:
        spec = target / "modelambda.toml"
        text = spec.read_text()
        start = text.index("[strategy]")
        end = text.find("\n[", start + 1)
        spec.write_text(text[:start] + "[strategy]\n" + strategy_toml + "\n"
                        + ("" if end < 0 else text[end:]))
    return target


def one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    """The run failed as a usage error should: exit 2, one line on stderr, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"modelambda {command}: error: "), lines[0]
    return lines[0]
