"""`up --strategy s3|efs`: built functions on the emulator, the model in its store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelambda.local.resources import LocalServices
from modelambda.local.s3server import EmbeddedS3
from modelambda.local.services import function_for
from modelambda.runtime.app import App
from tests.conftest import IRIS, MINILM_DATA, MINILM_EXAMPLE, make_app
from tests.emulator.conftest import Emu
from tests.store.conftest import BUCKET, service

ROWS = json.loads((IRIS / "request.json").read_text())
TEXTS = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    instance = Emu()
    yield instance
    instance.stop(drain_s=2)


def run(emu: Emu, root: Path, s3: EmbeddedS3 | None, payload: Any) -> Any:
    settings, spec = function_for(root, LocalServices(s3=s3))
    settings.name = f"{spec.service.name}-{spec.strategy.kind}"
    emu.add(settings)
    response = emu.client.invoke(FunctionName=settings.name, Payload=json.dumps(payload))
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_iris(emu: Emu, s3: EmbeddedS3, tmp_path: Path, kind: str) -> None:
    toml = f'kind = "s3"\nbucket = "{BUCKET}"\nprefix = "up-{kind}"' if kind == "s3" \
        else 'kind = "efs"\nmount_path = "/mnt/models"'
    root = service(IRIS, tmp_path / "iris", toml)
    got = run(emu, root, s3 if kind == "s3" else None, ROWS)
    assert got["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_minilm(emu: Emu, s3: EmbeddedS3, tmp_path: Path, minilm_app: App, kind: str) -> None:
    toml = f'kind = "s3"\nbucket = "{BUCKET}"\nprefix = "up-{kind}"' if kind == "s3" \
        else 'kind = "efs"\nmount_path = "/mnt/models"'
    root = service(MINILM_EXAMPLE, tmp_path / "minilm", toml)
    got = run(emu, root, s3 if kind == "s3" else None, {"instances": TEXTS})
    expected = minilm_app.handle({"instances": TEXTS})["predictions"]
    assert np.abs(np.array(got["predictions"]) - np.array(expected)).max() < 1e-5
