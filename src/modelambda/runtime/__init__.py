"""The in-function runtime: the code that ships inside every modelambda function.

Cold start is the product, so importing this package costs almost nothing: it imports the
error classes (stdlib only) and nothing else. The handler Lambda calls is
``modelambda.runtime.handler.handle``; importing that module runs the init phase (config,
model, hooks). numpy and the chosen backend are imported there, never here, and boto3,
pydantic and the CLI are never imported by the runtime at all (a test holds this).
"""

from __future__ import annotations

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

__all__ = [
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
]
