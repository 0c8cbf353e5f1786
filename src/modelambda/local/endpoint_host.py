"""The local endpoint host: a model served the way the ``endpoint`` strategy calls one.

One port, three surfaces:
- SageMaker's container contract: ``GET /ping``, ``POST /invocations``;
- SageMaker's runtime path, ``POST /endpoints/{name}/invocations``, so boto3's
  ``sagemaker-runtime`` client with ``endpoint_url`` works against it;
- the Open Inference Protocol v2: ``/v2/health/{ready,live}``, ``/v2/models/{name}[/ready]``,
  ``POST /v2/models/{name}/infer``.

The model runs in this process through the same runtime (backend, contract) as a function,
without the service's pre/post-processing hooks: with the endpoint strategy those run in the
function. Errors as the real services give them: SageMaker ``ModelError`` 424 with
``OriginalStatusCode``/``OriginalMessage``, ``ValidationError`` 400; v2 ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Future
from typing import Any

from modelambda.local.httpserver import HttpRequest, HttpResponse, HttpServer
from modelambda.runtime.app import App
from modelambda.runtime.config import PipelineConfig
from modelambda.runtime.errors import ModelambdaError, RequestError
from modelambda.runtime.paths import Paths
from modelambda.spec import ServiceSpec, compile_runtime_config

JSON = ("Content-Type", "application/json")


def _json(status: int, body: Any, *headers: tuple[str, str]) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), [JSON, *headers])


class EndpointHost:
    def __init__(self, spec: ServiceSpec, name: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, log: Any = None) -> None:
        config = compile_runtime_config(spec)
        config.pipeline = PipelineConfig()  # the function runs the hooks, not the endpoint
        self.app = App(config, Paths.from_environment(), log=log or (lambda _line: None))
        self.name = name or spec.model.name
        self.server = HttpServer(self.handle, host, port)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    # --- routes -------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/")
        if path == "/ping":
            return HttpResponse(200, b"")
        if path == "/invocations" or (path.startswith("/endpoints/") and
                                      path.endswith("/invocations")):
            if path != "/invocations" and path.split("/")[2] != self.name:
                return _json(400, {"message": f"Endpoint {path.split('/')[2]} not found."},
                             ("x-amzn-ErrorType", "ValidationError"))
            return self._sagemaker(request)
        if path in ("/v2/health/ready", "/v2/health/live"):
            return _json(200, {"ready": True, "live": True})
        if path.startswith("/v2/models/"):
            return self._v2(path, request)
        return _json(404, {"error": f"no route {path}"})

    def _sagemaker(self, request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body or b"{}")
            return _json(200, self.app.handle(body))
        except ValueError as exc:
            return _json(400, {"message": f"the body is not JSON: {exc}"},
                         ("x-amzn-ErrorType", "ValidationError"))
        except RequestError as exc:
            # the container answered 4xx: SageMaker reports it as a ModelError (424)
            return _json(424, {"message": "Received client error from primary container",
                               "OriginalStatusCode": exc.status,
                               "OriginalMessage": f"{exc.error_type}: {exc}"},
                         ("x-amzn-ErrorType", "ModelError"))
        except ModelambdaError as exc:
            return _json(424, {"message": "Received server error from primary container",
                               "OriginalStatusCode": 500,
                               "OriginalMessage": f"{exc.error_type}: {exc}"},
                         ("x-amzn-ErrorType", "ModelError"))

    def _v2(self, path: str, request: HttpRequest) -> HttpResponse:
        parts = path.split("/")
        name = parts[3]
        if name != self.name:
            return _json(404, {"error": f"Model {name} not found"})
        action = parts[4] if len(parts) > 4 else ""
        if request.method == "GET" and action == "":
            return _json(200, self.app.metadata())
        if request.method == "GET" and action == "ready":
            return _json(200, {"name": name, "ready": True})
        if request.method == "POST" and action == "infer":
            try:
                return _json(200, self.app.handle(json.loads(request.body or b"{}")))
            except ValueError as exc:
                return _json(400, {"error": f"invalid JSON: {exc}"})
            except RequestError as exc:
                return _json(400, {"error": f"{exc.error_type}: {exc}"})
            except ModelambdaError as exc:
                return _json(500, {"error": f"{exc.error_type}: {exc}"})
        return _json(404, {"error": f"no route {request.method} {path}"})

    # --- lifecycle (its own loop on a thread) -------------------------------------------

    def start(self) -> EndpointHost:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="modelambda-endpoint-host")
        self._thread.start()
        future: Future[None] = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        future.result(10)
        return self

    def stop(self) -> None:
        if self._thread is None or self.loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(1.0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
        self._thread = self.loop = None

    def __enter__(self) -> EndpointHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
