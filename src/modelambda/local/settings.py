"""A function as the emulator runs it: its files, its interpreter and its Lambda settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelambda import limits
from modelambda.local.s3server import CREDENTIALS as S3_CREDENTIALS

REGION = "us-east-1"
ACCOUNT = "000000000000"
LATEST = "$LATEST"
PUBLISHED = "1"  # the version `up` publishes of each function (SnapStart snapshots it)
# The execution role's credentials every environment gets by default: the embedded S3's
# placeholders (moto takes any), with a session token as a role's temporary ones have.
LOCAL_CREDENTIALS = {**S3_CREDENTIALS, "AWS_SESSION_TOKEN": "modelambda-local-session"}
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass
class FunctionSettings:
    name: str
    handler: str  # "module.function", as awslambdaric takes it
    task_dir: Path  # unpacked code -> /var/task
    python: str  # interpreter for the runtime version
    runtime_dir: Path  # the Lambda runtime's own packages (awslambdaric, boto3) -> /var/runtime
    runtime: str = limits.DEFAULT_RUNTIME
    architecture: str = "x86_64"
    opt_dir: Path | None = None  # unpacked layers -> /opt
    memory_mb: int = 1024
    timeout_s: float = 30
    ephemeral_mb: int = limits.EPHEMERAL_MB_MIN
    reserved_concurrency: int | None = None
    # the function's own variables: [service.environment] and what its strategy sets
    environment: dict[str, str] = field(default_factory=dict)
    # the execution role's credentials (AWS_ACCESS_KEY_ID, ..., optionally AWS_REGION): None
    # for the local placeholders (or the strategy's own, e.g. this shell's for a real S3);
    # given (``up --aws-credentials``: the developer's chain), they win over the strategy's
    credentials: dict[str, str] | None = field(default=None, repr=False)
    mounts: dict[str, Path] = field(default_factory=dict)  # EFS: mount path -> host directory
    snapstart: bool = False
    use_bwrap: bool | None = None  # None: when bwrap is installed
    # a control group per environment (CPU by memory size, hard memory limit, frozen between
    # invocations): None when available (see local/cgroups.py), False off, True required
    cgroups: bool | None = None
    # "awslambdaric" (AWS's client, as in Lambda's images) or "python" (modelambda's pure
    # Python client, for targets where awslambdaric has no wheel)
    runtime_client: str = "awslambdaric"
    init_timeout_s: float = limits.INIT_PHASE_S
    # SnapStart's init (and before-snapshot hooks): the longer of this and the timeout
    snapstart_init_s: float = limits.SNAPSTART_INIT_S
    # Asynchronous (Event) invocations: Lambda retries 0-2 times on a function error (its
    # MaximumRetryAttempts, default 2), about 1 then 2 minutes apart: here 1 s then 2 s;
    # an event older than MaximumEventAgeInSeconds (default 6 hours) is not run any more
    event_retries: int = limits.EVENT_RETRIES_MAX
    event_retry_delays_s: tuple[float, ...] = (1.0, 2.0)
    event_max_age_s: float = limits.EVENT_AGE_S_MAX
    on_failure: Path | None = None  # JSONL file: the on-failure destination
    # where accepted Event invokes not yet done are kept, in a directory per function name
    # (eventqueue.py); None: in memory only
    event_queue: Path | None = None
    region: str = REGION
    account: str = ACCOUNT
    alias: str = "live"  # points at the published version ([deploy] alias)
    log_format: str = "Text"  # AWS_LAMBDA_LOG_FORMAT: "Text" or "JSON"
    log_level: str | None = None  # AWS_LAMBDA_LOG_LEVEL in JSON format (default INFO)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def snapshot_init_timeout_s(self) -> float:
        """SnapStart's init limit: the longer of 130 s and the function's timeout (an
        on-demand init has 10 s)."""
        return max(self.snapstart_init_s, self.timeout_s)

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    def lambda_environment(self, runtime_api: str, initialization: str,
                           version: str = LATEST) -> dict[str, str]:
        """The variables Lambda sets in every environment, then the function's own."""
        group = f"/aws/lambda/{self.name}"
        env = {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
            "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[{version}]modelambda",
            "AWS_LAMBDA_LOG_FORMAT": self.log_format,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime}",
            "_HANDLER": self.handler,
            "TZ": ":UTC",
            # a function finds credentials in its environment, as on Lambda, never in the
            # developer's ~/.aws files
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_CONFIG_FILE": "/dev/null",
            "LANG": "en_US.UTF-8",
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                               "/var/task:/var/task/lib:/opt/lib",
        }
        if self.log_format == "JSON":
            env["AWS_LAMBDA_LOG_LEVEL"] = self.log_level or "INFO"
        if self.credentials is None:
            own = self.environment.get("AWS_ACCESS_KEY_ID")
            if own is None or own == LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
                env.update(LOCAL_CREDENTIALS)
        env.update(self.environment)
        if self.credentials is not None:
            for key in CREDENTIAL_VARIABLES:
                env.pop(key, None)  # no session token of other credentials left behind
            env.update(self.credentials)
            if "AWS_REGION" in self.credentials:
                env["AWS_DEFAULT_REGION"] = self.credentials["AWS_REGION"]
        return env
