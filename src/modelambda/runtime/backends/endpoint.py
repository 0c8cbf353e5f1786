"""The ``endpoint`` strategy's backend: the model runs behind an inference endpoint.

The function keeps the request handling, validation and pre/post-processing; predictions
come from either
- the Open Inference Protocol v2 (KServe, MLServer, Triton): ``POST {url}/v2/models/{name}/infer``,
  with the model's metadata (``GET {url}/v2/models/{name}``) read at init so that requests
  are checked here, before they travel; or
- SageMaker real-time inference: ``POST /endpoints/{name}/invocations`` on the SageMaker
  runtime, signed with SigV4 (service ``sagemaker``), body ``{"instances": [...]}``.

Timeouts; retries with backoff on 5xx, 429 and network errors; the endpoint's errors mapped to
the function's (SageMaker ``ModelError`` 424, v2 ``{"error"}``); the 6 MB request limit is
checked before sending. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from modelambda.limits import SYNC_PAYLOAD_BYTES
from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import ConfigError, ModelError, PayloadTooLarge, RequestError
from modelambda.runtime.retry import retry

RETRYABLE = {429, 500, 502, 503, 504}


class EndpointError(ModelError):
    """The endpoint failed or could not be reached (after retries)."""

    status = 502


class EndpointTimeout(EndpointError):
    status = 504


class EndpointRejected(RequestError):
    """The endpoint refused the request as invalid (its 4xx)."""


class EndpointBackend(Backend):
    framework = "endpoint"
    option_keys = frozenset({"protocol", "url", "name", "timeout_s", "attempts", "outputs"})
    # between attempts; a test replaces it on the instance so that it never waits
    sleep: Callable[[float], object] = staticmethod(time.sleep)

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        self.protocol = str(self.options.get("protocol", "v2"))
        self.name = str(self.options.get("name") or "")
        self.timeout = float(self.options.get("timeout_s", 10))
        self.attempts = int(self.options.get("attempts", 3))
        env = os.environ
        if self.protocol == "v2":
            # MODELAMBDA_ENDPOINT_URL: where `up` put the local endpoint host
            self.url = (env.get("MODELAMBDA_ENDPOINT_URL") or str(self.options.get("url") or "")
                        ).rstrip("/")
            if not self.url or not self.name:
                raise ConfigError("the v2 endpoint needs [strategy] url and name")
            self._inputs, self._outputs = self._metadata()
        elif self.protocol == "sagemaker":
            if not self.name:
                raise ConfigError("the sagemaker endpoint needs [strategy] name")
            self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
            self.url = (env.get("MODELAMBDA_ENDPOINT_URL")
                        or env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
                        or f"https://runtime.sagemaker.{self.region}.amazonaws.com").rstrip("/")
            self._inputs, self._outputs = None, None
        else:
            raise ConfigError(f"unknown endpoint protocol {self.protocol!r}: v2 or sagemaker")

    def inputs(self) -> Sequence[TensorSpec] | None:
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec] | None:
        return self._outputs

    # --- HTTP -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None, sign: bool = False) -> tuple[int, bytes]:
        url = self.url + path
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)

        def once() -> tuple[int, bytes]:
            send = dict(headers or {})
            if sign:
                send = self._signed(method, url, send, body or b"")
            conn = connection_class(parts.netloc, timeout=self.timeout)
            try:
                conn.request(method, target, body=body, headers=send)
                response = conn.getresponse()
                data = response.read()
            except TimeoutError as exc:
                raise EndpointTimeout(f"{url}: timed out after {self.timeout:g} s") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise EndpointError(f"{url}: unreachable ({type(exc).__name__}: {exc})") \
                    from exc
            finally:
                conn.close()
            if response.status in RETRYABLE:
                raise EndpointError(f"{url}: HTTP {response.status}: "
                                    f"{data[:300].decode('utf-8', 'replace')}")
            return response.status, data

        try:
            return retry(once, attempts=self.attempts, sleep=self.sleep,
                         retryable=lambda exc: isinstance(exc, EndpointError))
        except EndpointError as exc:
            raise type(exc)(f"{exc} (gave up after {self.attempts} attempts)") from exc

    def _signed(self, method: str, url: str, headers: dict[str, str], body: bytes
                ) -> dict[str, str]:
        from modelambda.runtime.aws.sigv4 import Credentials, sign
        from modelambda.runtime.integrity import sha256_bytes

        credentials = Credentials.from_environment()
        if credentials is None:
            raise ConfigError("calling SageMaker needs AWS credentials in the environment")
        return sign(method, url, headers, self.region, "sagemaker", credentials,
                    payload_sha256=sha256_bytes(body))

    # --- v2 -----------------------------------------------------------------------------

    def _metadata(self) -> tuple[list[TensorSpec] | None, list[TensorSpec] | None]:
        from modelambda.runtime.v2 import V2_TO_NUMPY

        status, data = self._call("GET", f"/v2/models/{self.name}")
        if status != 200:
            raise EndpointError(f"{self.url}/v2/models/{self.name}: HTTP {status}: "
                                f"{data[:300].decode('utf-8', 'replace')}")
        meta = json.loads(data)

        def specs(items: Any) -> list[TensorSpec] | None:
            if not items:
                return None
            return [TensorSpec(i["name"], V2_TO_NUMPY.get(i.get("datatype", ""), None),
                               tuple(None if d < 0 else d for d in i.get("shape", [])) or None)
                    for i in items]

        return specs(meta.get("inputs")), specs(meta.get("outputs"))

    def _predict_v2(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        from modelambda.runtime.v2 import decode_tensor, encode_tensor

        tensors = [encode_tensor(name, value) for name, value in inputs.items()]
        body = json.dumps({"inputs": tensors}).encode()
        self._check_size(body)
        status, data = self._call("POST", f"/v2/models/{self.name}/infer", body,
                                  {"Content-Type": "application/json"})
        answer = _json(data)
        if status != 200:
            message = answer.get("error") if isinstance(answer, dict) else None
            detail = message or data[:300].decode("utf-8", "replace")
            if 400 <= status < 500:
                raise EndpointRejected(f"the endpoint refused the request: {detail}")
            raise EndpointError(f"the endpoint failed: HTTP {status}: {detail}")
        return {output["name"]: decode_tensor(output) for output in answer.get("outputs", [])}

    # --- SageMaker ----------------------------------------------------------------------

    def _predict_sagemaker(self, inputs: Any) -> Any:
        import numpy as np

        instances = (inputs.tolist() if isinstance(inputs, np.ndarray) else
                     {k: np.asarray(v).tolist() for k, v in inputs.items()}
                     if isinstance(inputs, Mapping) else inputs)
        if isinstance(instances, dict):  # several named inputs: one object per instance
            names = list(instances)
            instances = [dict(zip(names, row, strict=True))
                         for row in zip(*instances.values(), strict=True)]
        body = json.dumps({"instances": instances}).encode()
        self._check_size(body)
        status, data = self._call("POST", f"/endpoints/{self.name}/invocations", body,
                                  {"Content-Type": "application/json",
                                   "Accept": "application/json"}, sign=True)
        answer = _json(data)
        if status == 424:  # ModelError: the model container failed on the request
            raise EndpointError(
                f"SageMaker ModelError: the model answered {answer.get('OriginalStatusCode')}: "
                f"{answer.get('OriginalMessage') or answer.get('Message') or answer}")
        if status != 200:
            message = answer.get("Message") or answer.get("message") or answer
            if 400 <= status < 500:
                raise EndpointRejected(f"SageMaker refused the request (HTTP {status}): "
                                       f"{message}")
            raise EndpointError(f"SageMaker failed: HTTP {status}: {message}")
        predictions = answer.get("predictions") if isinstance(answer, dict) else answer
        if predictions is None:
            raise EndpointError("the endpoint's answer has no 'predictions'")
        return self._named(predictions)

    def _named(self, predictions: Any) -> Any:
        """The answer as a local backend gives it, output name -> array, so a postprocess
        hook sees the same thing under every strategy: rows of objects are split by key; a
        single output's rows take the name the build read from the model (``outputs``)."""
        import numpy as np

        outputs = list(self.options.get("outputs") or ())
        if predictions and all(isinstance(row, Mapping) for row in predictions):
            names = list(predictions[0])
            if all(list(row) == names for row in predictions):
                return {name: np.asarray([row[name] for row in predictions]) for name in names}
        if len(outputs) == 1 and isinstance(predictions, list):
            return {outputs[0]: np.asarray(predictions)}
        return predictions

    def predict(self, inputs: Any) -> Any:
        if self.protocol == "v2":
            if not isinstance(inputs, Mapping):
                inputs = {"input-0": inputs}
            return self._predict_v2(inputs)
        return self._predict_sagemaker(inputs)

    @staticmethod
    def _check_size(body: bytes) -> None:
        if len(body) > SYNC_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"the request to the endpoint would be {len(body)} bytes; "
                                  f"it takes at most {SYNC_PAYLOAD_BYTES}: split the batch")


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {"error": data[:300].decode("utf-8", "replace")}
