"""ONNX models through onnxruntime (CPU)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelambda.runtime.backends.base import Backend, TensorSpec
from modelambda.runtime.errors import (
    ConfigError,
    DependencyMissing,
    ModelError,
    ModelLoadError,
)

# ONNX tensor element types -> numpy dtype names.
_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}

_OPT_LEVELS = ("disable", "basic", "extended", "all")


def lambda_vcpus() -> int:
    """The vCPUs Lambda gives this function: one per 1769 MB of memory (at least one), not
    the host's core count that onnxruntime would otherwise size its thread pool by."""
    from modelambda.limits import MEMORY_MB_PER_VCPU

    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    cores = os.cpu_count() or 1
    if not memory or not memory.isdigit():
        return cores
    return max(1, min(cores, int(memory) // MEMORY_MB_PER_VCPU))


def find_onnx_file(path: str) -> str:
    """A model path may be the .onnx file or a directory holding exactly one."""
    if os.path.isfile(path):
        return path
    found = sorted(name for name in os.listdir(path) if name.endswith(".onnx"))
    if len(found) != 1:
        raise ModelLoadError(
            f"{path} must hold exactly one .onnx file, found {len(found)}"
            + (f" ({', '.join(found)})" if found else "")
            + "; point [model] path at the file itself"
        )
    return os.path.join(path, found[0])


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or ()))
    return TensorSpec(arg.name, _ONNX_DTYPES.get(arg.type), shape)


class OnnxBackend(Backend):
    framework = "onnx"
    option_keys = frozenset({"intra_op_threads", "inter_op_threads", "graph_optimization",
                             "allow_spinning"})

    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        self.start_load(path, blobs)
        self.finish_load()

    def start_load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        """Import onnxruntime and set the session up here, then create the session on a
        thread: onnxruntime releases the GIL while it builds one (most of a large model's
        load), so the app imports and sets up the pipeline meanwhile (``finish_load``)."""
        try:
            import onnxruntime as ort  # deferred: only functions that serve ONNX pay for it
        except ImportError as exc:
            raise DependencyMissing(f"the onnx backend needs onnxruntime: {exc}") from exc

        opts = self._session_options(ort)
        in_memory = [name for name in (blobs or {}) if name.endswith(".onnx")]
        if len(in_memory) == 1:  # straight from the download: no /tmp write and read
            file, model = in_memory[0], (blobs or {})[in_memory[0]]
        else:
            file = find_onnx_file(path)
            model = file  # type: ignore[assignment]
        self._file = file
        self._failure: BaseException | None = None

        def create() -> None:
            try:
                self.session = ort.InferenceSession(
                    model, sess_options=opts, providers=["CPUExecutionProvider"])
            except BaseException as exc:  # handed to finish_load, on the app's thread
                self._failure = exc

        import threading

        self._loading = threading.Thread(target=create, name="modelambda-onnx-session",
                                         daemon=True)
        self._loading.start()

    def finish_load(self) -> None:
        self._loading.join()
        if self._failure is not None:
            exc, self._failure = self._failure, None
            if not isinstance(exc, Exception):
                raise exc
            # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{self._file} is not a loadable ONNX model: {exc}") from exc
        self._inputs = [_spec(a) for a in self.session.get_inputs()]
        self._outputs = [_spec(a) for a in self.session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]

    def _session_options(self, ort: Any) -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(self.options.get("intra_op_threads") or lambda_vcpus())
        if not self.options.get("allow_spinning", False):
            # Idle worker threads spin by default: CPU a Lambda function is billed for and,
            # below one full vCPU, takes from the request itself.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if "inter_op_threads" in self.options:
            opts.inter_op_num_threads = int(self.options["inter_op_threads"])
        level = self.options.get("graph_optimization")
        if level is not None:
            if level not in _OPT_LEVELS:
                raise ConfigError(
                    f"[model.options] graph_optimization = {level!r}; allowed: {_OPT_LEVELS}"
                )
            opts.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel,
                {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                 "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[level],
            )
        return opts

    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def predict(self, inputs: Any) -> Any:
        try:
            results = self.session.run(self._output_names, inputs)
        except Exception as exc:
            raise ModelError(f"onnxruntime failed: {exc}") from exc
        return dict(zip(self._output_names, results, strict=True))
