"""Every command and sub-command's --help, through the console script, shows examples."""

from __future__ import annotations

import argparse

import pytest

from modelambda.cli.main import build_parser
from tests.cli.conftest import run_cli


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
                  ) -> list[tuple[str, ...]]:
    """(), ("init",), ("models",), ("models", "publish"), ...: every parser in the tree."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += command_paths(sub, (*prefix, name))
    return paths


COMMANDS = command_paths(build_parser())


def test_the_tree_has_every_command() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"", "init", "build", "invoke", "up", "models", "endpoint", "models publish",
            "models promote", "models rollback", "models list", "models gc",
            "endpoint serve", "endpoint package"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "modelambda")
def test_help_has_examples(path: tuple[str, ...]) -> None:
    done = run_cli(*path, "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    usage = f"usage: modelambda {' '.join(path)}".rstrip()
    assert done.stdout.startswith(usage)
    examples = done.stdout.split("\nexamples:\n", 1)
    assert len(examples) == 2, f"no 'examples:' section in:\n{done.stdout}"
    lines = [line.strip() for line in examples[1].splitlines() if line.strip()]
    # the examples run this very command
    assert any(line.startswith(f"modelambda {' '.join(path)}".rstrip()) for line in lines), \
        lines
