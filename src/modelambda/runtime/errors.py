"""Errors the in-function runtime raises, each carrying its wire name and HTTP status.

The whole tree (drawn in full in ``modelambda.errors``) is rooted here so that the runtime,
which ships inside the function, needs nothing outside this package::

    ModelambdaError
    ├── ConfigError          the compiled config or spec the runtime reads is unusable   (init)
    │   └── DependencyMissing    a package or module the function needs is not there (init)
    ├── ModelLoadError       the model file is missing, corrupt, untrusted or not a model (init)
    ├── RequestError         the client sent something the model cannot take           (4xx)
    │   ├── InvalidJSON, InvalidBase64, MissingField, ShapeError, DTypeError,
    │   ├── InvalidValue, EmptyBatch, BatchTooLarge, PayloadTooLarge,
    │   └── PreprocessError, NotFound, MethodNotAllowed
    └── ModelError           the model or a postprocess hook failed on a valid request  (500)

For direct invokes the exception propagates and awslambdaric reports its class name as the
``errorType``; for HTTP-style events it becomes ``{"error": {"type", "message"}}`` with
``status``. Either way the environment stays up and the next request is served.
"""

from __future__ import annotations


class ModelambdaError(Exception):
    """Base of every error modelambda raises on purpose."""

    status = 500

    @property
    def error_type(self) -> str:
        return type(self).__name__


class ConfigError(ModelambdaError):
    """The runtime's config (compiled JSON or spec) is missing or invalid."""


class DependencyMissing(ConfigError, ImportError):
    """Code the function needs cannot be imported: awslambdaric reports an ImportError
    during init as Runtime.ImportModuleError, as Lambda does for a missing package."""


class ModelLoadError(ModelambdaError):
    """The model could not be loaded: missing, corrupt, untrusted, or not a model."""


class RequestError(ModelambdaError):
    """The request is wrong; the client can fix it."""

    status = 400


class InvalidJSON(RequestError):
    pass


class InvalidBase64(RequestError):
    pass


class MissingField(RequestError):
    pass


class ShapeError(RequestError):
    pass


class DTypeError(RequestError):
    pass


class InvalidValue(RequestError):
    """A value the model cannot take, e.g. NaN or infinity."""


class EmptyBatch(RequestError):
    pass


class BatchTooLarge(RequestError):
    status = 413


class PayloadTooLarge(RequestError):
    status = 413


class PreprocessError(RequestError):
    """The user's preprocess hook rejected the request."""


class NotFound(RequestError):
    status = 404


class MethodNotAllowed(RequestError):
    status = 405


class InvalidInput(RequestError):
    """Raise this from a preprocess hook to reject a request with a 400 and your message."""


class ModelError(ModelambdaError):
    """The model (or a postprocess hook) failed on a request that passed validation."""
