"""Service specs -> functions the emulator runs.

What is built is what runs: a service is built for its strategy (``package.build``) and the
artifacts are unpacked the way Lambda unpacks them: the function zip to ``/var/task``, its
layers in order to ``/opt`` (a later layer's file replaces an earlier one's), an image's
task root used as it is. The strategy starts what it needs locally (``LocalServices``). The
environment then sees only those files plus what Lambda's Python runtime provides
(awslambdaric, boto3) at ``/var/runtime``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from modelambda import limits
from modelambda.local.interpreters import find_python, given_python
from modelambda.local.lambda_runtime import lambda_runtime
from modelambda.local.resources import LocalServices
from modelambda.local.settings import FunctionSettings
from modelambda.package.archive import unpack_zip
from modelambda.package.artifacts import HANDLER, BuildResult
from modelambda.package.build import build
from modelambda.spec import ServiceSpec, load_spec


def unpack_for_run(result: BuildResult) -> tuple[Path, Path | None]:
    """(task root, /opt) on the host for a build, unpacked as Lambda unpacks it."""
    if result.function.kind == "image-context":
        return result.image_context / "task", None
    run = result.spec.root / ".modelambda" / "run" / result.strategy.name
    task, opt = run / "task", run / "opt"
    stamp = run / ".unpacked"
    identity = " ".join(a.sha256 for a in result.artifacts)
    if stamp.is_file() and stamp.read_text() == identity:  # already unpacked, unchanged
        return task, opt if result.layers else None
    shutil.rmtree(run, ignore_errors=True)
    task.mkdir(parents=True)
    unpack_zip(result.function.path, task, max_bytes=limits.UNZIPPED_TOTAL_BYTES)
    if result.layers:
        opt.mkdir()
        for layer in result.layers:  # in order: later layers overwrite earlier ones
            unpack_zip(layer.path, opt, max_bytes=limits.UNZIPPED_TOTAL_BYTES)
    stamp.write_text(identity)
    return task, opt if result.layers else None


def function_for(service: ServiceSpec | Path | str, services: LocalServices | None = None, *,
                 strategy: str | None = None, python: str | None = None,
                 use_bwrap: bool | None = None, log: Callable[[str], None] | None = None,
                 credentials: dict[str, str] | None = None
                 ) -> tuple[FunctionSettings, ServiceSpec]:
    """Build a service for a strategy (default: its spec's), start what the strategy needs
    (``services``: the S3 of its model store, the endpoint host) and describe the function.

    ``python`` overrides the interpreter found for the spec's runtime; only an explicit user
    choice should pass it (running 3.12 code on another version hides real failures). Without
    ``services`` a strategy that needs one starts it in a ``LocalServices`` that the caller
    can no longer stop: tests and ``up`` pass their own. ``credentials``: the execution
    role's, for every environment (``aws_chain_credentials``; default: local placeholders)."""
    spec = service if isinstance(service, ServiceSpec) else load_spec(service)
    spec = spec.for_strategy(strategy)
    interpreter = given_python(python) if python else find_python(spec.service.runtime)
    result = build(spec, python=interpreter, log=log)
    task, opt = unpack_for_run(result)
    setup = spec.strategy.unit.start_local(spec, services or LocalServices())
    runtime_dir, client = lambda_runtime(spec.service.runtime.removeprefix("python"),
                                         spec.service.architecture, interpreter)
    settings = FunctionSettings(
        name=spec.service.name, handler=HANDLER, task_dir=task.resolve(),
        python=interpreter, runtime_dir=runtime_dir, runtime=spec.service.runtime,
        architecture=spec.service.architecture, opt_dir=opt.resolve() if opt else None,
        memory_mb=spec.service.memory_mb, timeout_s=spec.service.timeout_s,
        ephemeral_mb=spec.service.ephemeral_storage_mb,
        reserved_concurrency=spec.service.reserved_concurrency,
        # the spec's variables, then the strategy's (which the spec cannot replace)
        environment={**spec.service.environment, **setup.environment}, mounts=setup.mounts,
        snapstart=spec.service.snapstart, credentials=credentials,
        use_bwrap=use_bwrap, runtime_client=client,
        alias=spec.deploy.alias, event_retries=spec.service.event_retries,
        log_format=spec.service.log_format, log_level=spec.service.log_level,
        event_max_age_s=spec.service.event_max_age_s,
        on_failure=(spec.root / ".modelambda" / "on-failure.jsonl").resolve(),
        event_queue=(spec.root / ".modelambda" / "event-queue").resolve(),
    )
    return settings, spec


def aws_chain_credentials() -> tuple[dict[str, str], str]:
    """The developer's own AWS credentials (boto3's chain: environment, profile, SSO, ...),
    frozen now, as the variables a function gets, and where they came from (never the
    values). UsageError when the chain has none."""
    import boto3

    from modelambda.errors import UsageError

    session = boto3.Session()
    found = session.get_credentials()
    if found is None:
        raise UsageError("--aws-credentials: no AWS credentials found (environment, "
                         "~/.aws/credentials, a profile or SSO): configure some, or leave "
                         "the flag out for the local placeholders")
    frozen = found.get_frozen_credentials()
    variables = {"AWS_ACCESS_KEY_ID": frozen.access_key,
                 "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        variables["AWS_SESSION_TOKEN"] = frozen.token
    if session.region_name:
        variables["AWS_REGION"] = session.region_name
    return variables, f"{getattr(found, 'method', 'aws chain')}" + (
        f", profile {session.profile_name}" if session.profile_name != "default" else "")
