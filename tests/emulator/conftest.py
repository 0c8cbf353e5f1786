"""Fixtures for the emulator: the Lambda runtime for Python 3.12, functions from source, boto3.

These tests run real environments: python3.12 with AWS's awslambdaric, inside bubblewrap.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from modelambda.local.emulator import EmulatorThread
from modelambda.local.interpreters import find_python
from modelambda.local.sandbox import bwrap_path
from modelambda.local.settings import FunctionSettings
from modelambda.package import deps


@pytest.fixture(scope="session")
def python312() -> str:
    return find_python("python3.12")


@pytest.fixture(scope="session")
def lambda_runtime(python312: str) -> Path:
    """awslambdaric, snapshot-restore-py and boto3 for python3.12, as Lambda provides them."""
    return deps.install(deps.pinned(list(deps.LAMBDA_RUNTIME_PACKAGES)), "3.12", "x86_64",
                        kind="lambda-runtime", python=python312, progress=False)


@pytest.fixture(scope="session", autouse=True)
def require_bwrap() -> None:
    if bwrap_path() is None:
        pytest.fail("bubblewrap is not installed (apt-get install bubblewrap): .ci/run does it")


class Emu:
    """An emulator on a thread, with its log lines and a boto3 client (no retries)."""

    def __init__(self, **options: Any) -> None:
        self.lines: list[str] = []
        options.setdefault("idle_timeout_s", 60)
        self.thread = EmulatorThread(sink=self.lines.append, **options)
        self.url = self.thread.url
        self.client = boto3.client(
            "lambda", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=5))

    def add(self, settings: FunctionSettings, models: tuple[str, ...] = ()) -> None:
        self.thread.add_function(settings, models)

    def stop(self, drain_s: float = 2.0) -> None:
        """Stop the emulator and close the client's sockets (unclosed ones would surface
        as ResourceWarnings in whichever test runs at garbage collection)."""
        self.thread.stop(drain_s=drain_s)
        self.client.close()

    def environments(self, name: str) -> list[dict[str, Any]]:
        for function in self.thread.describe()["functions"]:
            if function["name"] == name:
                return function["environments"]  # type: ignore[no-any-return]
        raise KeyError(name)


@pytest.fixture
def emu() -> Iterator[Emu]:
    instance = Emu()
    try:
        yield instance
    finally:
        instance.stop(drain_s=2)


@pytest.fixture
def make_function(tmp_path: Path, python312: str, lambda_runtime: Path
                  ) -> Callable[..., FunctionSettings]:
    """A function from Python source: make_function("def handler(event, context): ...")."""

    def make(code: str, name: str = "fn", handler: str = "fn.handler",
             files: dict[str, str] | None = None, **settings: Any) -> FunctionSettings:
        task = tmp_path / f"task-{name}"
        task.mkdir()
        (task / "fn.py").write_text(textwrap.dedent(code))
        for rel, text in (files or {}).items():
            (task / rel).write_text(textwrap.dedent(text))
        settings.setdefault("timeout_s", 30)
        settings.setdefault("memory_mb", 512)
        settings.setdefault("python", python312)
        return FunctionSettings(name=name, handler=handler, task_dir=task,
                                runtime_dir=lambda_runtime, **settings)

    return make
