"""`up --strategy endpoint`: built functions on the emulator calling the local endpoint host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelambda.local.endpoint_host import EndpointHost
from modelambda.local.resources import LocalServices
from modelambda.local.services import function_for
from modelambda.runtime.app import App
from modelambda.spec import load_spec
from tests.conftest import IRIS, MINILM_DATA, MINILM_EXAMPLE, make_app
from tests.emulator.conftest import Emu
from tests.store.conftest import service

ROWS = json.loads((IRIS / "request.json").read_text())
TEXTS = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    instance = Emu()
    yield instance
    instance.stop(drain_s=2)


@pytest.mark.parametrize("protocol", ["v2", "sagemaker"])
def test_iris(emu: Emu, tmp_path: Path, protocol: str) -> None:
    extra = 'url = "http://127.0.0.1:1"' if protocol == "v2" else 'name = "iris"'
    root = service(IRIS, tmp_path / "iris", f'kind = "endpoint"\nprotocol = "{protocol}"\n'
                                            f'{extra}')
    with EndpointHost(load_spec(root)) as host:
        settings, _ = function_for(root, LocalServices(endpoint_url=host.url))
        settings.name = f"iris-{protocol}"
        emu.add(settings)
        response = emu.client.invoke(FunctionName=settings.name, Payload=json.dumps(ROWS))
        body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]
    # the function ships no model file (the endpoint serves it) and no onnxruntime
    manifest = json.loads((root / ".modelambda/build/endpoint/manifest.json").read_text())
    files = [f["path"] for f in manifest["artifacts"][0]["files"]]
    assert "model.onnx" not in files and "onnxruntime" not in manifest["dependencies"]


def test_minilm(emu: Emu, tmp_path: Path, minilm_app: App) -> None:
    root = service(MINILM_EXAMPLE, tmp_path / "minilm",
                   'kind = "endpoint"\nprotocol = "v2"\nurl = "http://127.0.0.1:1"')
    with EndpointHost(load_spec(root)) as host:
        settings, _ = function_for(root, LocalServices(endpoint_url=host.url))
        settings.name = "minilm-endpoint"
        emu.add(settings)
        response = emu.client.invoke(FunctionName="minilm-endpoint",
                                     Payload=json.dumps({"instances": TEXTS}))
        body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    expected = minilm_app.handle({"instances": TEXTS})["predictions"]
    assert np.abs(np.array(body["predictions"]) - np.array(expected)).max() < 1e-5
