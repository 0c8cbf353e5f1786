"""The backend interface: how model bytes become predictions.

A backend is found by framework name in the ``modelambda.backends`` entry-point group (the
built-ins are registered there by modelambda's own ``pyproject.toml``, exactly as a plugin
would register its own). The spec compiler resolves the name to ``module:Class`` at build time
so that a cold start imports the backend directly, without scanning installed packages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any


class TensorSpec:
    """One model input or output: its name, numpy dtype name and shape (None = any size)."""

    __slots__ = ("dtype", "name", "shape")

    def __init__(self, name: str, dtype: str | None,
                 shape: tuple[int | None, ...] | None) -> None:
        self.name = name
        self.dtype = dtype  # numpy dtype name ("float32", "int64", "str"), None when unknown
        self.shape = shape  # batch dimension first; None when unknown

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and (self.name, self.dtype, self.shape) == (
            other.name, other.dtype, other.shape)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TensorSpec({self.name!r}, {self.dtype!r}, {self.shape!r})"

    def describe(self) -> str:
        dims = "?" if self.shape is None else "[" + ", ".join(
            "N" if d is None else str(d) for d in self.shape
        ) + "]"
        return f"{self.name}: {self.dtype or 'any'} {dims}"


class Backend(ABC):
    """Loads a model once per environment and runs it on decoded batches."""

    #: The framework name this backend serves (``[model] framework``).
    framework: str = ""
    #: Option keys this backend understands in ``[model.options]``.
    option_keys: frozenset[str] = frozenset()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        unknown = set(self.options) - self.option_keys
        if unknown:
            from modelambda.runtime.errors import ConfigError

            raise ConfigError(
                f"[model.options] has unknown key(s) {sorted(unknown)} for framework "
                f"{self.framework!r}; allowed: {sorted(self.option_keys) or 'none'}"
            )

    @abstractmethod
    def load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        """Load the model from ``path`` (a file or a directory).

        ``blobs`` holds model files a remote source kept in memory (name -> bytes) instead of
        writing them under ``path``; a backend that can load from bytes uses them."""

    def start_load(self, path: str, blobs: Mapping[str, bytes] | None = None) -> None:
        """Begin loading (the app's init: ``start_load``, the pipeline's import and setup,
        then ``finish_load``). By default the whole ``load`` happens here; a backend whose
        loading releases the GIL may leave part of it running on a thread, so that the
        pipeline's import and setup overlap it."""
        self.load(path, blobs)

    def finish_load(self) -> None:  # noqa: B027 - a hook: nothing left by default
        """Wait for what ``start_load`` left running; raise its error."""

    def inputs(self) -> Sequence[TensorSpec] | None:
        """The model's inputs, or None when the model takes Python objects as they come."""
        return None

    def outputs(self) -> Sequence[TensorSpec] | None:
        return None

    @abstractmethod
    def predict(self, inputs: Any) -> Any:
        """Run the model.

        ``inputs`` is ``{input name: numpy array}`` when ``inputs()`` describes tensors, else
        whatever the request (or the preprocess hook) produced. Return ``{output name: array}``
        or a sequence with one prediction per batch row.
        """
