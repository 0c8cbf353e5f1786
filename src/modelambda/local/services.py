"""Service directories -> functions the emulator runs, and where a running emulator is found.

What is built is what runs: a service is built for its strategy (``package.build``) and the
artifacts are unpacked the way Lambda unpacks them: the function zip to ``/var/task``, its
layers in order to ``/opt`` (a later layer's file replaces an earlier one's), an image's
task root used as it is. The environment then sees only those files plus what Lambda's Python
runtime provides (awslambdaric, boto3) at ``/var/runtime``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from modelambda import limits
from modelambda.errors import UsageError
from modelambda.local.interpreters import find_python
from modelambda.local.lambda_runtime import lambda_runtime
from modelambda.local.s3server import EmbeddedS3
from modelambda.local.settings import FunctionSettings
from modelambda.package.archive import unpack_zip
from modelambda.package.build import (
    BUILD_STRATEGIES,
    HANDLER,
    STORE_STRATEGIES,
    BuildResult,
    build,
)
from modelambda.spec import ServiceSpec


def unpack_for_run(result: BuildResult) -> tuple[Path, Path | None]:
    """(task root, /opt) on the host for a build, unpacked as Lambda unpacks it."""
    if result.strategy == "image":
        return result.image_context / "task", None
    run = result.spec.root / ".modelambda" / "run" / result.strategy
    task, opt = run / "task", run / "opt"
    stamp = run / ".unpacked"
    identity = " ".join(a.sha256 for a in (result.function, *result.layers))
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


_AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def s3_environment(s3: EmbeddedS3 | None) -> dict[str, str]:
    """How the function reaches S3: the embedded server, or this shell's AWS settings."""
    if s3 is not None:
        return s3.environment()
    return {k: os.environ[k] for k in _AWS_VARIABLES if os.environ.get(k)}


def publish_for_run(spec: ServiceSpec, strategy: str, s3: EmbeddedS3 | None,
                    log: Callable[[str], None]) -> tuple[dict[str, str], dict[str, Path]]:
    """Put the service's model in its store; (environment, EFS mounts) the function needs."""
    from modelambda.modelstore import DirStore, S3Store, publish_service

    settings = spec.strategy.settings
    alias = str(settings.get("alias", "live"))
    if strategy == "s3":
        env = s3_environment(s3)
        if s3 is not None:
            s3.ensure_bucket(settings["bucket"])
            client = s3.client()
        else:
            import boto3

            client = boto3.client("s3")
        store = S3Store(settings["bucket"], settings.get("prefix", ""), client)
        version = publish_service(spec, store, alias=alias, exist_ok=True)
        log(f"model {spec.model.name} version {version} is {alias!r} in {store.describe()}")
        return env, {}
    root = spec.root / ".modelambda" / "efs"
    version = publish_service(spec, DirStore(root), alias=alias, exist_ok=True)
    mount = str(settings.get("mount_path", "/mnt/models"))
    log(f"model {spec.model.name} version {version} is {alias!r} in {root} (mounted at {mount})")
    return {}, {mount: root.resolve()}


def function_for(directory: Path, *, strategy: str | None = None, python: str | None = None,
                 use_bwrap: bool | None = None, log: Callable[[str], None] | None = None,
                 s3: EmbeddedS3 | None = None, endpoint_url: str | None = None
                 ) -> tuple[FunctionSettings, ServiceSpec]:
    """Build a service directory for a strategy and describe it as a function to run.

    For ``s3`` and ``efs`` the model is published to the store first (the embedded S3 when
    ``s3`` is given, else the one this shell's AWS settings name; a local directory mounted
    at the mount path for EFS). ``python`` overrides the interpreter found for the spec's
    runtime; only an explicit user choice should pass it (running 3.12 code on another
    version hides real failures)."""
    from modelambda.spec import load_spec

    say = log or (lambda _line: None)
    spec = load_spec(directory)
    chosen = strategy or spec.strategy.kind
    if chosen not in BUILD_STRATEGIES:
        raise UsageError(f"strategy {chosen!r} does not run locally yet; use --strategy with "
                         f"one of {', '.join(BUILD_STRATEGIES)}")
    if chosen in (*STORE_STRATEGIES, "endpoint") and spec.strategy.kind != chosen:
        raise UsageError(f"--strategy {chosen} needs [strategy] kind = \"{chosen}\" in "
                         f"{spec.file} (with its bucket or mount path)")
    interpreter = python or find_python(spec.service.runtime)
    result = build(directory, chosen, python=interpreter, log=log)
    task, opt = unpack_for_run(result)
    environment, mounts = (publish_for_run(spec, chosen, s3, say)
                           if chosen in STORE_STRATEGIES else ({}, {}))
    if chosen == "endpoint":
        if endpoint_url:  # e.g. the local endpoint host `up` started
            environment["MODELAMBDA_ENDPOINT_URL"] = endpoint_url
        if spec.strategy.settings.get("protocol") == "sagemaker":
            environment.update(s3_environment(None))  # credentials to sign with
            environment.setdefault("AWS_REGION", "us-east-1")
            if endpoint_url:
                from modelambda.local.s3server import CREDENTIALS

                environment.update(CREDENTIALS)
    version = spec.service.runtime.removeprefix("python")
    runtime_dir, client = lambda_runtime(version, spec.service.architecture, interpreter)
    settings = FunctionSettings(
        name=spec.service.name, handler=HANDLER, task_dir=task.resolve(),
        python=interpreter, runtime_dir=runtime_dir, runtime=spec.service.runtime,
        architecture=spec.service.architecture, opt_dir=opt.resolve() if opt else None,
        memory_mb=spec.service.memory_mb, timeout_s=spec.service.timeout_s,
        ephemeral_mb=spec.service.ephemeral_storage_mb,
        reserved_concurrency=spec.service.reserved_concurrency, environment=environment,
        mounts=mounts, snapstart=spec.service.snapstart, use_bwrap=use_bwrap,
        runtime_client=client,
        on_failure=(spec.root / ".modelambda" / "on-failure.jsonl").resolve(),
    )
    return settings, spec
