"""Hostile input to ``modelambda invoke``: event and data files that are not JSON text are one
line naming the option, never a traceback."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from modelambda.cli.main import main
from tests.hostile.fuzz import IRIS

CASES = {"not-utf8.json": b"\xff\xfe{", "truncated.json": b'{"instances": [[5.1',
         "nested.json": b"[" * 100_000 + b"]" * 100_000, "empty.json": b""}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("option", ["--event", "--data"])
def test_an_unreadable_payload_file_is_one_line(tmp_path: Path, name: str, option: str) -> None:
    path = tmp_path / name
    path.write_bytes(CASES[name])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["invoke", str(IRIS), option,
                     str(path) if option == "--event" else f"@{path}"])
    lines = err.getvalue().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"modelambda invoke: error: {option} ")
