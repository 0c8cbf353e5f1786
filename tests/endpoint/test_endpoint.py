"""The endpoint strategy: the function calls an endpoint; the local endpoint host serves one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from modelambda.local.endpoint_host import EndpointHost
from modelambda.package.build import runtime_config
from modelambda.runtime.app import App
from modelambda.runtime.backends.endpoint import EndpointError, EndpointTimeout
from modelambda.runtime.paths import Paths
from modelambda.spec import load_spec
from tests.conftest import IRIS, MINILM_DATA, MINILM_EXAMPLE, make_app
from tests.store.conftest import service

ROWS = json.loads((IRIS / "request.json").read_text())
TEXTS = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]


@pytest.fixture(scope="module")
def iris_host() -> Iterator[EndpointHost]:
    with EndpointHost(load_spec(IRIS)) as host:
        yield host


def endpoint_app(root: Path, url: str | None, monkeypatch: pytest.MonkeyPatch,
                 lines: list[str] | None = None) -> App:
    """The runtime as a built endpoint-strategy function runs it, in this process. ``url`` is
    put where `up` puts its local endpoint host (MODELAMBDA_ENDPOINT_URL); None leaves the
    function to find the endpoint from the spec alone, as it does on AWS."""
    if url is None:
        monkeypatch.delenv("MODELAMBDA_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("MODELAMBDA_ENDPOINT_URL", url)
    spec = load_spec(root)
    config = runtime_config(spec, "endpoint")
    config.code_root = str(root)
    return App(config, Paths(task_root=str(root)), log=(lines if lines is not None else []).append)


def v2_service(tmp_path: Path, source: Path = IRIS, **extra: str) -> Path:
    settings = "".join(f'\n{k} = {v}' for k, v in extra.items())
    return service(source, tmp_path / source.name,
                   f'kind = "endpoint"\nprotocol = "v2"\nurl = "http://127.0.0.1:1"{settings}')


def sagemaker_service(tmp_path: Path) -> Path:
    return service(IRIS, tmp_path / "iris", 'kind = "endpoint"\nprotocol = "sagemaker"\n'
                                            'name = "iris"')


# --- the local endpoint host --------------------------------------------------------------


def test_host_speaks_v2(iris_host: EndpointHost) -> None:
    import urllib.request

    meta = json.loads(urllib.request.urlopen(f"{iris_host.url}/v2/models/iris").read())
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                        "data": [x for row in ROWS["instances"] for x in row]}]}
    request = urllib.request.Request(f"{iris_host.url}/v2/models/iris/infer",
                                     data=json.dumps(body).encode())
    answer = json.loads(urllib.request.urlopen(request).read())
    assert {o["name"]: o["data"] for o in answer["outputs"]}["label"] == [0, 2]
    assert urllib.request.urlopen(f"{iris_host.url}/v2/health/ready").status == 200


def test_boto3_sagemaker_runtime_talks_to_the_host(iris_host: EndpointHost) -> None:
    client = boto3.client("sagemaker-runtime", endpoint_url=iris_host.url,
                          region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    response = client.invoke_endpoint(EndpointName="iris", ContentType="application/json",
                                      Body=json.dumps(ROWS))
    assert json.loads(response["Body"].read())["predictions"] == \
        make_app(IRIS).handle(ROWS)["predictions"]
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint(EndpointName="iris", ContentType="application/json",
                               Body=json.dumps({"instances": [[1, 2]]}))
    error = info.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400 and "ShapeError" in error["OriginalMessage"]


# --- the function calling an endpoint --------------------------------------------------------


def test_v2_endpoint_gives_the_bundles_predictions(iris_host: EndpointHost, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    app = endpoint_app(v2_service(tmp_path), iris_host.url, monkeypatch)
    assert app.handle(ROWS)["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]
    # validated here, from the endpoint's metadata, before anything travels
    from modelambda.runtime import ShapeError

    with pytest.raises(ShapeError, match="expected 4 features"):
        app.handle({"instances": [[1, 2, 3]]})


def test_sagemaker_endpoint_gives_the_bundles_predictions(
        iris_host: EndpointHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    app = endpoint_app(sagemaker_service(tmp_path), iris_host.url, monkeypatch)
    assert app.handle(ROWS)["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]


def test_minilm_tokenises_in_the_function_and_embeds_at_the_endpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm_app: App, minilm_dir: Path
) -> None:
    root = v2_service(tmp_path, MINILM_EXAMPLE, name='"all-MiniLM-L6-v2"')
    with EndpointHost(load_spec(minilm_dir)) as host:
        got = endpoint_app(root, host.url, monkeypatch).handle({"instances": TEXTS})
    expected = minilm_app.handle({"instances": TEXTS})["predictions"]
    assert np.abs(np.array(got["predictions"]) - np.array(expected)).max() < 1e-5


# --- faults -----------------------------------------------------------------------------


class FaultyEndpoint:
    """An endpoint that answers with a chosen failure (fault injection)."""

    def __init__(self) -> None:
        from modelambda.local.httpserver import HttpResponse, HttpServer

        self.mode = "ok"
        self.calls = 0
        self.real = EndpointHost(load_spec(IRIS))
        self.HttpResponse = HttpResponse
        self.server = HttpServer(self.handle)

    async def handle(self, request: Any) -> Any:
        if request.method == "GET" or self.mode == "ok":
            return await self.real.handle(request)
        self.calls += 1
        if self.mode == "500":
            return self.HttpResponse(500, b'{"error": "internal"}')
        if self.mode == "424":
            return self.HttpResponse(424, json.dumps({
                "message": "Received server error from primary container",
                "OriginalStatusCode": 500, "OriginalMessage": "CUDA out of memory"}).encode())
        if self.mode == "400":
            return self.HttpResponse(400, b'{"error": "input-0: bad shape"}')
        import asyncio

        await asyncio.sleep(3)  # "slow": past the function's endpoint timeout
        return self.HttpResponse(200, b"{}")


@pytest.fixture
def faulty() -> Iterator[tuple[FaultyEndpoint, str]]:
    import asyncio
    import threading

    endpoint = FaultyEndpoint()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(endpoint.server.start(), loop).result(5)
    yield endpoint, f"http://127.0.0.1:{endpoint.server.port}"
    asyncio.run_coroutine_threadsafe(endpoint.server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def furl(body: Any) -> dict[str, Any]:
    return {"version": "2.0", "rawPath": "/", "headers": {},
            "requestContext": {"http": {"method": "POST", "path": "/"},
                               "domainName": "x.lambda-url.us-east-1.on.aws"},
            "body": json.dumps(body), "isBase64Encoded": False}


@pytest.mark.parametrize("mode,status,error_type,message", [
    ("500", 502, "EndpointError", "gave up after 3 attempts"),
    ("400", 400, "EndpointRejected", "bad shape"),
    ("slow", 504, "EndpointTimeout", "timed out after 1 s"),
])
def test_v2_endpoint_failures_are_mapped(faulty: tuple[FaultyEndpoint, str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, mode: str,
                                         status: int, error_type: str, message: str) -> None:
    endpoint, url = faulty
    app = endpoint_app(v2_service(tmp_path, timeout_s="1"), url, monkeypatch)
    endpoint.mode = mode
    start = time.monotonic()
    response = app.handle(furl(ROWS))
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == status and error["type"] == error_type
    assert message in error["message"]
    assert time.monotonic() - start < 12
    if mode == "500":
        assert endpoint.calls == 3  # retried with backoff
    endpoint.mode = "ok"
    assert app.handle(ROWS)["predictions"]  # the environment lives on


def test_sagemaker_model_error_424_is_mapped(faulty: tuple[FaultyEndpoint, str],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, url = faulty
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    app = endpoint_app(sagemaker_service(tmp_path), url, monkeypatch)
    endpoint.mode = "424"
    with pytest.raises(EndpointError, match="ModelError: the model answered 500: CUDA out of"):
        app.handle(ROWS)
    assert endpoint.calls == 1  # a ModelError is the model's answer: not retried


def test_endpoint_down_is_unreachable_not_a_timeout(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    iris_host: EndpointHost) -> None:
    from modelambda.local.s3server import free_port

    app = endpoint_app(v2_service(tmp_path), iris_host.url, monkeypatch)
    app.backend.url = f"http://127.0.0.1:{free_port()}"  # it goes away after init
    with pytest.raises(EndpointError, match=r"unreachable .*gave up after 3 attempts") as info:
        app.handle(ROWS)
    # a refused connection is told apart from a slow endpoint: a 502, not a 504 timeout
    assert not isinstance(info.value, EndpointTimeout)
    response = app.handle(furl(ROWS))
    assert response["statusCode"] == 502
    assert json.loads(response["body"])["error"]["type"] == "EndpointError"
    app.backend.url = iris_host.url  # back up: the same environment serves again
    assert app.handle(ROWS)["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]


def test_request_over_6mb_is_refused_before_sending(iris_host: EndpointHost, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from modelambda.runtime import PayloadTooLarge

    app = endpoint_app(v2_service(tmp_path), iris_host.url, monkeypatch)
    app.model.max_batch = 1_000_000
    with pytest.raises(PayloadTooLarge, match="to the endpoint would be"):
        app.handle({"instances": [[5.1, 3.5, 1.4, 0.2]] * 300_000})
