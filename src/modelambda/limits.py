"""AWS Lambda quotas and wire limits, as data, in one place.

Every check in modelambda that compares against a Lambda limit reads it from here, so a
changed quota is a one-line change. Sources: docs.aws.amazon.com/lambda/latest/dg/
gettingstarted-limits.html (quotas), lambda-runtimes.html (runtimes), snapstart.html
(SnapStart's constraints) and the Invoke API reference (API_Invoke.html, payload sizes).

Stdlib only: the in-function runtime imports this module.
"""

from __future__ import annotations

from typing import Final

MB: Final = 1024 * 1024

# Memory: 128 to 10240 MB in 1 MB steps; 1769 MB buys one full vCPU.
MEMORY_MB_MIN: Final = 128
MEMORY_MB_MAX: Final = 10240
MEMORY_MB_PER_VCPU: Final = 1769

# Timeout: 1 to 900 seconds.
TIMEOUT_S_MIN: Final = 1
TIMEOUT_S_MAX: Final = 900

# /tmp (ephemeral storage): 512 to 10240 MB.
EPHEMERAL_MB_MIN: Final = 512
EPHEMERAL_MB_MAX: Final = 10240

# Payloads: 6 MB each way for synchronous invokes, 1 MB for asynchronous (Event) ones.
# The error text quotes 6291456 bytes.
SYNC_PAYLOAD_BYTES: Final = 6291456
ASYNC_PAYLOAD_BYTES: Final = 1 * MB
# A synchronous response may be 100 bytes more (aws-lambda-runtime-interface-emulator, rapi);
# past it the invocation fails with Function.ResponseSizeTooLarge.
SYNC_RESPONSE_BYTES: Final = 6291456 + 100

# Deployment packages.
ZIP_DIRECT_UPLOAD_BYTES: Final = 50 * MB  # bigger zips go through S3
UNZIPPED_TOTAL_BYTES: Final = 262144000  # function + all layers, unzipped ("250 MB")
LAYERS_MAX: Final = 5
IMAGE_BYTES_MAX: Final = 10 * 1024 * MB  # 10 GB uncompressed

# Environment variables: 4 KB in total (keys and values). Lambda sets the reserved ones in
# every environment and refuses them in a function's configuration (docs:
# configuration-envvars, "Defined runtime environment variables").
ENV_VARS_BYTES_MAX: Final = 4 * 1024
ENV_VAR_NAME: Final = r"^[a-zA-Z][a-zA-Z0-9_]+$"
RESERVED_ENV_VARS: Final = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})

# Init phase: 10 s on demand; past it, init is retried inside the first invoke.
INIT_PHASE_S: Final = 10.0
# With SnapStart (and provisioned concurrency) the init limit is the longer of 130 s and the
# function's timeout (docs: runtimes-context).
SNAPSTART_INIT_S: Final = 130.0

# Asynchronous (Event) invocations: retried 0 to 2 times (default 2) on a function error;
# an event older than 60 s to 6 hours (default 6 hours) is dropped (EventInvokeConfig).
EVENT_RETRIES_MAX: Final = 2
EVENT_AGE_S_MIN: Final = 60
EVENT_AGE_S_MAX: Final = 21600

# Concurrency: the default account quota per region.
DEFAULT_CONCURRENCY: Final = 1000

# Function names: letters, digits, hyphens and underscores, at most 64 characters.
FUNCTION_NAME_MAX: Final = 64

# Python runtimes Lambda accepts for new functions (python3.10/3.11 deprecated 2026-06-30).
PYTHON_RUNTIMES: Final = ("python3.12", "python3.13", "python3.14")
DEFAULT_RUNTIME: Final = "python3.12"
ARCHITECTURES: Final = ("x86_64", "arm64")

# SnapStart for Python: 3.12 and later; not with EFS, provisioned concurrency or /tmp > 512 MB.
SNAPSTART_RUNTIMES: Final = ("python3.12", "python3.13", "python3.14")
SNAPSTART_EPHEMERAL_MB_MAX: Final = 512
