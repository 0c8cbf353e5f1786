"""Every throughput, latency and behaviour constant of the advisor's model, in one place, each
with its source.

``kind`` says how far to trust a value: ``documented`` (an AWS page or paper says so),
``secondary`` (published measurements or third-party write-ups), ``assumption`` (a round
number chosen here, to be calibrated against a deployed function; ``modelambda bench`` on AWS
is out of reach locally). Prices are not here: they are in ``prices.json``, dated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str
    kind: str  # "documented" | "secondary" | "assumption" | "definition"

    def __float__(self) -> float:
        return float(self.value)


# --- Lambda: starting an execution environment -------------------------------------------

LAMBDA_RUNTIME_START_MS = Constant(
    100.0, "ms", "hello-world Init Duration of python3.12 zip functions, x86_64: about 80-120 "
    "ms in the daily runs of maxday/lambda-perf (github.com/maxday/lambda-perf)", "secondary")
ZIP_UNPACK_MB_S = Constant(
    200.0, "MB/s of unzipped code and layers",
    "zip and layer contents are fetched and unpacked into the sandbox before init; bigger "
    "packages start slower (AWS Lambda operator guide, 'cold starts'); the rate is chosen here",
    "assumption")
IMAGE_START_FRACTION = Constant(
    0.065, "of image bytes read at start",
    "Brooker et al., 'On-demand container loading in AWS Lambda', USENIX ATC'23: about 6.5 % of "
    "image bytes are read at start on average", "documented")
IMAGE_LAZY_MB_S = Constant(
    150.0, "MB/s", "chunks not yet in the worker's cache come from the regional cache or S3 "
    "(Brooker et al., ATC'23, tiered cache); the rate is chosen here", "assumption")

# --- Lambda: moving the model at cold start ----------------------------------------------

S3_CONNECTION_MB_S = Constant(
    85.0, "MB/s per connection", "AWS S3 performance guidelines: about 85-90 MB/s per "
    "connection; parallel ranged GETs of 8-16 MB scale it", "documented")
S3_PART_MB = Constant(16.0, "MB per ranged GET", "runtime/aws/s3.py PART_BYTES (S3 guidance "
                      "8-16 MB)", "documented")
S3_CONNECTIONS = Constant(8.0, "parallel connections", "runtime/aws/s3.py WORKERS",
                          "documented")
S3_FIRST_BYTE_MS = Constant(
    30.0, "ms per request before data", "S3 performance guidelines: first-byte latency of tens "
    "of ms for small objects; chosen here", "assumption")
S3_SETUP_REQUESTS = Constant(2.0, "sequential requests before the model's bytes",
                             "runtime/sources/s3.py: the alias, then the version's manifest",
                             "documented")
LAMBDA_NETWORK_CAP_MB_S = Constant(
    400.0, "MB/s", "a function's network bandwidth is not documented; published S3-to-Lambda "
    "measurements top out at a few hundred MB/s; chosen here", "assumption")
EFS_READ_MB_S = Constant(
    250.0, "MB/s", "EFS elastic throughput allows up to 1500 MiB/s reads per client (EFS "
    "performance docs); one sequential reader gets far less; chosen here", "assumption")
EFS_FIRST_BYTE_MS = Constant(5.0, "ms", "EFS performance docs: first-byte latency of single-"
                             "digit ms (LAMBDA_FACTS)", "documented")

# --- CPU -----------------------------------------------------------------------------------

MB_PER_VCPU = Constant(1769.0, "MB", "Lambda docs (configuration-memory): 1769 MB = one "
                       "vCPU, up to 6 vCPUs at 10240 MB", "documented")
LAMBDA_INIT_BURST_VCPUS = Constant(
    2.0, "vCPU during init", "'Lambda managed runtimes offer up to 10 seconds for function "
    "initialization with burst CPU' (awslabs.github.io/aws-lambda-web-adapter, async-init), "
    "measured as about two unthrottled vCPUs (as in local/cgroups.py)", "secondary")
LAMBDA_MAX_VCPU = Constant(6.0, "vCPU", "Lambda docs: up to 6 vCPUs", "documented")
LAMBDA_CORE_VS_HERE = Constant(
    1.0, "x the speed of one core of the machine that measured the profile", "a Lambda vCPU "
    "is taken to be as fast as one local core (both current server CPUs); chosen here",
    "assumption")
ARM64_VS_X86 = Constant(1.0, "x", "Graviton2 vs x86 per vCPU for CPU inference varies by "
                        "model; taken as equal here", "assumption")

# --- Lambda: serving ----------------------------------------------------------------------

LAMBDA_INVOKE_OVERHEAD_MS = Constant(
    8.0, "ms", "in-region Invoke API round trip to a warm function, beyond the function's "
    "duration: 5-15 ms in published measurements", "secondary")
JSON_MS_PER_MB = Constant(20.0, "ms per MB at one vCPU", "Python's json decode+encode of a "
                          "numeric payload; chosen here", "assumption")
NETWORK_MB_S = Constant(100.0, "MB/s", "payload transfer in-region; chosen here", "assumption")
SNAPSTART_RESTORE_BASE_MS = Constant(
    150.0, "ms", "Lambda SnapStart docs: 'as low as sub-second startup'; restore grows with "
    "the snapshot's resident memory; chosen here", "assumption")
SNAPSTART_RESTORE_MB_S = Constant(1000.0, "MB/s of resident memory", "chosen here",
                                  "assumption")
SNAPSTART_FIRST_INVOKE_FACTOR = Constant(
    2.0, "x the first prediction", "pages of a restored snapshot fault in on first touch "
    "(SnapStart best practices: warm up before the snapshot); chosen here", "assumption")

# --- Lambda: how often environments start -------------------------------------------------

IDLE_KEEP_S = Constant(
    420.0, "s", "idle environments are reclaimed after about 5-15 minutes (published "
    "measurements, e.g. Mikhail Shilkov, 'Cold starts in AWS Lambda'); not documented",
    "secondary")
ENV_LIFETIME_H = Constant(2.0, "hours", "busy environments are also recycled after a few "
                          "hours (published measurements); chosen here", "assumption")
INIT_PHASE_S = Constant(10.0, "s", "Lambda docs: init phase 10 s on demand, then retried "
                        "inside the first invoke under the timeout", "documented")

# --- endpoints and instances ---------------------------------------------------------------

SAGEMAKER_OVERHEAD_MS = Constant(
    10.0, "ms", "SageMaker's OverheadLatency metric for real-time endpoints is typically a "
    "few to ~20 ms", "secondary")
SAGEMAKER_SERVERLESS_COLD_MS = Constant(
    3000.0, "ms (before the model loads)", "SageMaker Serverless Inference docs: cold starts "
    "of its own, 'a few seconds' depending on the container and model", "secondary")
SAGEMAKER_SERVERLESS_MAX_MB = Constant(6144.0, "MB", "SageMaker Serverless Inference: 1024 "
                                       "to 6144 MB memory", "documented")
SAGEMAKER_SERVERLESS_IDLE_S = Constant(600.0, "s", "idle time before a serverless endpoint "
                                       "scales in; chosen here", "assumption")
MANAGED_INSTANCES_MIN = Constant(
    3.0, "instances", "Lambda docs (lambda-managed-instances-scaling): three instances are "
    "launched by default for AZ resiliency", "documented")
INSTANCE_TARGET_UTILISATION = Constant(0.6, "of vCPU", "instances are sized to run at 60 % "
                                       "CPU at the peak; chosen here", "assumption")
MODEL_MEMORY_FACTOR = Constant(
    1.5, "x the model file", "resident memory of a loaded model without a measured profile "
    "(ONNX Runtime and scikit-learn load about the file's size plus working buffers); "
    "chosen here", "assumption")
RUNTIME_BASE_MB = Constant(120.0, "MB", "Python + numpy + modelambda's runtime without a "
                           "model, without a measured profile; chosen here", "assumption")

# --- this machine (the emulator) -----------------------------------------------------------

LOCAL_HOP_MS = Constant(1.0, "ms", "a keep-alive HTTP round trip on loopback to the local "
                        "endpoint host", "assumption")

# --- how the advisor decides ---------------------------------------------------------------

FREQUENT_UPDATES_PER_MONTH = Constant(4.0, "updates per month", "weekly or more: a redeploy "
                                      "per update is then a real cost of operations",
                                      "assumption")
COST_BAND_FACTOR = Constant(1.1, "x", "options within 10 % (+ COST_BAND_USD) of the cheapest "
                            "count as equally cheap", "assumption")
COST_BAND_USD = Constant(1.0, "USD per month", "see COST_BAND_FACTOR", "assumption")
DECOUPLED_BAND_FACTOR = Constant(1.25, "x", "with frequent updates, a decoupled option "
                                 "within 25 % (+ DECOUPLED_BAND_USD) of the cheapest wins",
                                 "assumption")
DECOUPLED_BAND_USD = Constant(5.0, "USD per month", "see DECOUPLED_BAND_FACTOR", "assumption")
COLD_BAND_FACTOR = Constant(1.25, "x", "cold starts within 25 % (or COLD_BAND_MS) of the "
                            "fastest candidate's count as equally fast, and the simpler option "
                            "wins (an image needs a registry and image builds; EFS a VPC and a "
                            "file system); a hard latency need is --p99-ms", "assumption")
COLD_BAND_MS = Constant(500.0, "ms", "see COLD_BAND_FACTOR", "assumption")
COLD_SHARE_FOR_P99 = Constant(0.01, "of requests", "when at least 1 % of requests are cold "
                              "starts, the cold start is the p99", "definition")


def all_constants() -> dict[str, Constant]:
    """Every constant above by name (for ``advise --json`` and the docs)."""
    return {name: value for name, value in globals().items() if isinstance(value, Constant)}
