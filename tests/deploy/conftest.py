"""Fixtures for the deploy tests: moto's server as the local AWS, the environment that reaches
it, every AWS operation a command makes (recorded with botocore's event hooks on the real
clients), and service directories for each strategy."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IRIS
from tests.deploy.moto import MotoServer


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto's server with nothing in it, and this process's AWS settings pointing at it
    only through ``--endpoint-url`` (the commands are given it) and the credentials."""
    moto_server.reset()
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN",
                "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in moto_server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_server


class Recorded:
    """Every AWS operation the command's clients made, as ``service:Operation``."""

    def __init__(self) -> None:
        self.operations: list[str] = []
        self.buckets: list[str | None] = []  # the bucket of each operation (S3's), in step
        self.slept: list[float] = []
        self._bucket: str | None = None

    def clear(self) -> None:
        self.operations.clear()
        self.buckets.clear()

    def changing(self) -> list[str]:
        """The operations that are not Describe/Get/List/Head (a dry run makes none)."""
        return [op for op in self.operations
                if not re.match(r"^[^:]+:(Describe|Get|List|Head)", op)]

    def named(self, operation: str) -> list[str]:
        return [op for op in self.operations if op.endswith(f":{operation}")]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    """Hooks ``before-call.*.*`` on every client the commands make; waits do not sleep."""
    from modelambda.cli import deploy_cmd
    from modelambda.deploy import aws as aws_module

    record = Recorded()
    original = deploy_cmd.make_clients

    def hook(model: Any, **_: Any) -> None:
        record.operations.append(f"{model.service_model.service_name}:{model.name}")
        record.buckets.append(record._bucket)
        record._bucket = None

    def bucket(params: dict[str, Any], **_: Any) -> None:  # fires just before ``hook``
        record._bucket = str(params["Bucket"]) if "Bucket" in params else None

    def observe(_service: str, client: Any) -> None:
        client.meta.events.register("before-call.*.*", hook)
        client.meta.events.register("before-parameter-build.s3.*", bucket)

    def make_clients(args: Any, spec: Any) -> Any:
        clients = original(args, spec)
        clients.on_client = observe
        return clients

    monkeypatch.setattr(deploy_cmd, "make_clients", make_clients)
    monkeypatch.setattr(aws_module, "SLEEP", record.slept.append)
    return record


def service_dir(target: Path, strategy: str, *, service: str = "", extra: str = "",
                source: Path = IRIS) -> Path:
    """A copy of an example service with ``[strategy] kind = strategy`` (plus ``extra``
    TOML lines for [strategy], and ``service`` lines for [service])."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda"))
    spec = target / "modelambda.toml"
    text = spec.read_text()
    text = re.sub(r'(?m)^kind = "[a-z0-9]+"$', f'kind = "{strategy}"\n{extra}'.rstrip(), text)
    if service:
        text = text.replace("[service]\n", f"[service]\n{service}\n", 1)
    spec.write_text(text)
    return target


@pytest.fixture
def make_service(tmp_path: Path) -> Callable[..., Path]:
    def make(strategy: str, *, name: str | None = None, service: str = "",
             extra: str = "") -> Path:
        return service_dir(tmp_path / (name or f"iris-{strategy}"), strategy, service=service,
                           extra=extra)

    return make


def set_key(directory: Path, section: str, key: str, value: str) -> None:
    """Set ``key = value`` (TOML text) in ``[section]`` of the service's spec."""
    spec = directory / "modelambda.toml"
    text = spec.read_text()
    pattern = re.compile(rf"(?ms)^(\[{section}\]\n.*?)^{key} = [^\n]*\n")
    if pattern.search(text):
        text = pattern.sub(lambda m: f"{m.group(1)}{key} = {value}\n", text, count=1)
    else:
        text = text.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n", 1)
    spec.write_text(text)
