"""modelambda's one error tree.

::

    ModelambdaError                      (modelambda.runtime.errors: ships in the function)
    ├── ConfigError                      runtime config unusable                      (init)
    ├── ModelLoadError                   model missing, corrupt, untrusted, not a model (init)
    ├── RequestError (4xx)               InvalidJSON, InvalidBase64, MissingField, ShapeError,
    │                                    DTypeError, InvalidValue, EmptyBatch, BatchTooLarge,
    │                                    PayloadTooLarge, PreprocessError, NotFound,
    │                                    MethodNotAllowed, InvalidInput
    ├── ModelError (500)                 the model or postprocess failed on a valid request
    ├── SpecError                        modelambda.toml is wrong: file + every problem
    ├── UsageError                       a command-line argument is wrong
    └── AwsError                         an AWS call failed: what, and the fix (awserrors.py)

The runtime's part lives in ``modelambda.runtime.errors`` so that the function ships without
the rest of modelambda; this module adds the build-side errors and re-exports the lot.
"""

from __future__ import annotations

from pathlib import Path

from modelambda.runtime.errors import (
    BatchTooLarge,
    ConfigError,
    DependencyMissing,
    DTypeError,
    EmptyBatch,
    InvalidBase64,
    InvalidInput,
    InvalidJSON,
    InvalidValue,
    MethodNotAllowed,
    MissingField,
    ModelambdaError,
    ModelError,
    ModelLoadError,
    NotFound,
    PayloadTooLarge,
    PreprocessError,
    RequestError,
    ShapeError,
)


class SpecError(ModelambdaError):
    """``modelambda.toml`` has problems; ``problems`` lists each one."""

    def __init__(self, file: Path, problems: list[str]) -> None:
        self.file = file
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{file}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class UsageError(ModelambdaError):
    """A command-line argument is wrong."""


class AwsError(ModelambdaError):
    """An AWS call failed; the message (``modelambda.awserrors.explain``) names what failed and
    the fix, never a secret."""


__all__ = [
    "AwsError",
    "BatchTooLarge",
    "ConfigError",
    "DTypeError",
    "DependencyMissing",
    "EmptyBatch",
    "InvalidBase64",
    "InvalidInput",
    "InvalidJSON",
    "InvalidValue",
    "MethodNotAllowed",
    "MissingField",
    "ModelError",
    "ModelLoadError",
    "ModelambdaError",
    "NotFound",
    "PayloadTooLarge",
    "PreprocessError",
    "RequestError",
    "ShapeError",
    "SpecError",
    "UsageError",
]
