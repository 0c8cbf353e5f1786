"""The model app: init once per environment (config, model, hooks), then serve events.

``handler.handle`` is a thin module-level wrapper around one ``App``; tests and the in-process
``modelambda invoke`` build an ``App`` directly.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from modelambda.runtime import contract, events, logs, v2
from modelambda.runtime.backends import load_backend_class
from modelambda.runtime.config import RuntimeConfig
from modelambda.runtime.errors import (
    BatchTooLarge,
    EmptyBatch,
    MethodNotAllowed,
    MissingField,
    ModelambdaError,
    ModelError,
    NotFound,
    ShapeError,
)
from modelambda.runtime.integrity import verify_files
from modelambda.runtime.paths import Paths
from modelambda.runtime.pipeline import Pipeline
from modelambda.runtime.sources import ModelSource, Resolved, make_source

_ms = 1000.0


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * _ms, 3)


class ModelState:
    """One loaded version: what a request needs, swapped as a whole on refresh."""

    __slots__ = ("backend", "path", "pipeline", "specs", "version")

    def __init__(self, backend: Any, specs: Any, pipeline: Pipeline, version: str,
                 path: str) -> None:
        self.backend = backend
        self.specs = specs
        self.pipeline = pipeline
        self.version = version
        self.path = path


class App:
    def __init__(
        self,
        config: RuntimeConfig,
        paths: Paths,
        *,
        log: logs.Writer = logs.stdout_writer,
        source: ModelSource | None = None,
    ) -> None:
        start = time.perf_counter()
        self.config = config
        self.log = logs.keep(log)  # records the log level leaves out are empty lines
        self.model = config.model
        # User code (hooks, python-backend classes) lives at the task root, as on Lambda.
        code_root = config.code_root or str(paths.task_root)
        if code_root not in sys.path:
            sys.path.insert(0, code_root)
        self.source = source or make_source(config.source, paths,
                                            verify=self.model.verify_checksums)
        self.source.log = self.log
        self.source.start()  # a remote fetch overlaps the backend's imports below
        self.backend_class = load_backend_class(self.model.backend)
        resolved = self.source.resolved()
        if self.model.verify_checksums and self.model.files and not resolved.blobs \
                and not self.source.verifies_checksums:
            verify_files(resolved.path, self.model.files)
        self.state = self._load(resolved)
        self._pending: tuple[ModelState, Resolved] | None = None
        self._refreshing = False
        self._next_check = time.monotonic() + self.source.refresh_s
        self.invocations = 0
        self.init_ms = _elapsed_ms(start)
        self.log(logs.event_record("init", {
            "function_name": config.function_name, "model_name": self.model.name,
            "model_version": self.state.version, "framework": self.model.framework,
            "source": config.source.get("kind"), "init_ms": self.init_ms,
            "fetch_ms": getattr(self.source, "fetch_ms", None),
        }))

    @property
    def backend(self) -> Any:
        return self.state.backend

    @property
    def specs(self) -> Any:
        return self.state.specs

    @property
    def pipeline(self) -> Pipeline:
        return self.state.pipeline

    def _load(self, resolved: Resolved, run_setup: bool = True) -> ModelState:
        backend = self.backend_class(self.model.options)
        try:
            backend.start_load(resolved.path, resolved.blobs)
            try:  # the hooks' import and setup overlap what the backend left running
                pipeline = Pipeline.load(self.config.pipeline, resolved.path,
                                         run_setup=run_setup)
            finally:
                backend.finish_load()  # its error wins: the model comes first
        finally:
            resolved.release()
        return ModelState(backend, backend.inputs(), pipeline,
                          resolved.version or self.model.version, resolved.path)

    # --- refresh (s3, efs): a new version loads beside the old, then swaps between requests

    def _maybe_refresh(self) -> None:
        if self._pending is not None:
            self._switch(*self._pending)
            self._pending = None
        if not self.source.refresh_s or self._refreshing or \
                time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self.source.refresh_s
        self._refreshing = True
        import threading

        threading.Thread(target=self._refresh, daemon=True, name="modelambda-refresh").start()

    def _refresh(self) -> None:
        """Look for a newer version; load it beside the serving one (on this background
        thread). Any failure keeps the old version serving, says why, and is tried again
        at the next check."""
        try:
            found = self.source.poll()
            if found is not None:
                try:
                    self._pending = (self._load(found, run_setup=False), found)
                except Exception:
                    self.source.discard(found)
                    raise
        except Exception as exc:
            self._refresh_failed(exc)
        finally:
            self._refreshing = False

    def _switch(self, state: ModelState, found: Resolved) -> None:
        """Between two requests: run the new version's setup hook, then serve it."""
        try:
            state.pipeline.run_setup(found.path)
        except Exception as exc:
            self.source.discard(found)
            self._refresh_failed(exc)
            if self.state.pipeline.setup is not None:  # give the old version its state back
                try:
                    self.state.pipeline.run_setup(self.state.path)
                except Exception as again:
                    self._refresh_failed(again, "setup of the serving version failed on "
                                                "re-run after a refresh failed")
            return
        old, self.state = self.state, state
        self.source.commit(found)
        self.log(logs.event_record("model switched", {
            "function_name": self.config.function_name, "from_version": old.version,
            "to_version": state.version}))

    def _refresh_failed(self, exc: Exception, message: str = "refresh failed") -> None:
        self.log(logs.event_record(message, {
            "function_name": self.config.function_name, "serving": self.state.version,
            "error_type": type(exc).__name__, "error": str(exc)}, level="WARNING"))

    def refresh_now(self, timeout: float = 60.0) -> None:
        """Check for a new version immediately and wait for it (tests, tools)."""
        self._next_check = 0.0
        self._maybe_refresh()
        deadline = time.monotonic() + timeout
        while self._refreshing and time.monotonic() < deadline:
            time.sleep(0.01)
        self._maybe_refresh()

    def warm_up(self) -> bool:
        """Run one prediction on zeros shaped like the inputs (SnapStart's before-snapshot).

        Skipped (False) when the inputs are not all numeric tensors of known shape."""
        if not self.specs or any(
                s.dtype in (None, "str") or s.shape is None or None in s.shape[1:]
                for s in self.specs):
            return False
        import numpy as np

        start = time.perf_counter()
        inputs = {s.name: np.zeros([1, *[int(d or 1) for d in (s.shape or ())[1:]]],
                                   dtype=str(s.dtype))
                  for s in self.specs}
        self.backend.predict(inputs)
        self.log(logs.event_record("warm-up", {
            "function_name": self.config.function_name, "warm_up_ms": _elapsed_ms(start)}))
        return True

    # --- serving ------------------------------------------------------------------------

    def handle(self, event: Any, context: Any = None) -> Any:
        start = time.perf_counter()
        self._maybe_refresh()
        cold = self.invocations == 0
        self.invocations += 1
        kind = events.event_kind(event)
        timing: dict[str, float] = {}
        status, error_type, batch = 200, None, 0
        try:
            request = events.decode(event)
            payload, batch = self._route(request, start, timing)
        except Exception as exc:
            error = exc if isinstance(exc, ModelambdaError) else self._unexpected(exc)
            status, error_type = error.status, error.error_type
            if kind == events.DIRECT:
                self._log(context, kind, cold, status, error_type, batch, timing)
                if error is exc:
                    raise  # awslambdaric reports the class name as errorType
                raise error from exc
            payload = {"error": {"type": error_type, "message": str(error)}}
        encode_start = time.perf_counter()
        try:
            result = events.encode(kind, status, payload)
        except ValueError as exc:  # NaN/inf in a prediction cannot be JSON
            failure = ModelError(f"the model produced a value JSON cannot carry: {exc}")
            if kind == events.DIRECT:
                raise failure from exc
            status, error_type = 500, failure.error_type
            result = events.encode(kind, status, {"error": {"type": error_type,
                                                            "message": str(failure)}})
        timing["encode_ms"] = round(timing.get("encode_ms", 0.0) + _elapsed_ms(encode_start), 3)
        self._log(context, kind, cold, status, error_type, batch, timing)
        return result

    def _unexpected(self, exc: Exception) -> ModelError:
        """A bug (ours, a hook's or a backend's): a logged 500, and the environment lives on."""
        import traceback

        self.log(logs.event_record("unexpected error", {
            "function_name": self.config.function_name, "error_type": type(exc).__name__,
            "traceback": traceback.format_exc()}, level="ERROR"))
        return ModelError(f"unexpected {type(exc).__name__} while serving the request: {exc}")

    def _route(self, request: events.Request, start: float,
               timing: dict[str, float]) -> tuple[Any, int]:
        if request.kind != events.DIRECT:
            if request.method in ("GET", "HEAD"):
                return self._get(request.path), 0
            if request.method != "POST":
                raise MethodNotAllowed(f"{request.method} is not supported: POST a request, "
                                       "or GET for the model's metadata")
        body = request.body
        if not isinstance(body, dict):
            raise MissingField(
                "the request must be a JSON object with 'instances' (or v2 'inputs'), got "
                + ("an empty body" if body is None else type(body).__name__)
            )
        if "instances" in body:
            return self._predict(body["instances"], start, timing)
        if "inputs" in body:
            return self._predict_v2(body, start, timing)
        raise MissingField(
            f"the request has no 'instances' (keys: {sorted(body)[:10]}); send "
            '{"instances": [...]} with one element per row, or a v2 request with "inputs"'
        )

    def _get(self, path: str) -> dict[str, Any]:
        """GET answers with the model's metadata on any path (so API stages and routes work),
        plus the v2 protocol's health and per-model paths."""
        path = path.rstrip("/")
        if path.endswith("/v2/health/ready"):
            return {"ready": True}
        if path.endswith("/v2/health/live"):
            return {"live": True}
        marker = "/v2/models/"
        if marker in path:
            name, _, rest = path.split(marker, 1)[1].partition("/")
            if name != self.model.name:
                raise NotFound(f"no model {name!r} here; this function serves "
                               f"{self.model.name!r}")
            if rest == "ready":
                return {"name": name, "ready": True}
        return self.metadata()

    def metadata(self) -> dict[str, Any]:
        """The model's metadata in the v2 protocol's shape."""
        def tensors(specs: Any) -> list[dict[str, Any]]:
            return [{"name": s.name,
                     "datatype": v2.spec_datatype(s.dtype),
                     "shape": [-1 if d is None else d for d in (s.shape or ())]}
                    for s in (specs or ())]
        return {"name": self.model.name, "versions": [self.state.version],
                "platform": self.model.framework, "inputs": tensors(self.specs),
                "outputs": tensors(self.backend.outputs())}

    def _inputs(self, prepared: Any, raw: bool) -> Any:
        if self.specs is None:
            return prepared
        if raw:
            return contract.instances_to_inputs(
                prepared, self.specs, allow_nonfinite=self.model.allow_nonfinite)
        return contract.prepared_to_inputs(
            prepared, self.specs, allow_nonfinite=self.model.allow_nonfinite)

    def _infer(self, inputs: Any, start: float, timing: dict[str, float]) -> Any:
        """Run the model (and the postprocess hook), timing decode, predict and encode."""
        timing["decode_ms"] = _elapsed_ms(start)
        predict_start = time.perf_counter()
        outputs = self.backend.predict(inputs)
        timing["predict_ms"] = _elapsed_ms(predict_start)
        if self.pipeline.postprocess is not None:
            encode_start = time.perf_counter()
            outputs = self.pipeline.run_postprocess(outputs)
            timing["encode_ms"] = _elapsed_ms(encode_start)
        return outputs

    def _predict(self, instances: Any, start: float,
                 timing: dict[str, float]) -> tuple[dict[str, Any], int]:
        contract.check_batch(instances, self.model.max_batch)
        if self.pipeline.preprocess is not None:
            inputs = self._inputs(self.pipeline.run_preprocess(instances), raw=False)
        else:
            inputs = self._inputs(instances, raw=True)
        outputs = self._infer(inputs, start, timing)
        predictions = contract.outputs_to_predictions(outputs, len(instances))
        return {"predictions": predictions, "model_name": self.model.name,
                "model_version": self.state.version}, len(instances)

    def _predict_v2(self, body: dict[str, Any], start: float,
                    timing: dict[str, float]) -> tuple[dict[str, Any], int]:
        tensors = contract.v2_tensors(body)
        first = next(iter(tensors.values()))
        batch = int(first.shape[0]) if first.ndim else 1
        if self.pipeline.preprocess is not None:
            if len(tensors) != 1:
                raise ShapeError("with a preprocess hook a v2 request carries one input tensor")
            instances = contract.check_batch(first.tolist(), self.model.max_batch)
            inputs = self._inputs(self.pipeline.run_preprocess(instances), raw=False)
        else:
            if batch == 0:
                raise EmptyBatch("the v2 request's tensors hold no instance")
            if batch > self.model.max_batch:
                raise BatchTooLarge(f"{batch} instances in one request; this function takes "
                                    f"at most {self.model.max_batch} ([model] max_batch)")
            inputs = (contract.v2_to_inputs(tensors, self.specs,
                                            allow_nonfinite=self.model.allow_nonfinite)
                      if self.specs is not None else tensors)
        outputs = self._infer(inputs, start, timing)
        return contract.v2_response(outputs, self.model.name, self.state.version,
                                    body.get("id")), batch

    def _log(self, context: Any, kind: str, cold: bool, status: int, error_type: str | None,
             batch: int, timing: dict[str, float]) -> None:
        request_id = getattr(context, "aws_request_id", None) or os.urandom(8).hex()
        self.log(logs.invocation_record({
            "function_name": self.config.function_name, "request_id": request_id,
            "model_name": self.model.name, "model_version": self.state.version,
            "event": kind, "cold": cold, "cold_start": int(cold), "status": status,
            "error_type": error_type, "batch_size": batch,
            "decode_ms": timing.get("decode_ms", 0.0), "predict_ms": timing.get("predict_ms", 0.0),
            "encode_ms": timing.get("encode_ms", 0.0),
        }))
