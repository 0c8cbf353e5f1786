"""``modelambda build``: the artifacts of one strategy, checked against Lambda's limits.

    build(spec_or_dir, "bundle")  ->  DIR/.modelambda/build/bundle/function.zip + manifest.json

Stages, each a function below: resolve and slim the dependencies for the target (``deps``,
``slim``); gather the service's code and model and compile the code for the target interpreter
(``files``); let the strategy lay the files out (``strategies/<name>.py``); check the sizes
(``checks``) before writing any archive; write reproducible archives (``archive``) or the image
context; import the handler from the built files in the target interpreter (``importcheck``);
record everything in ``manifest.json``. A build whose inputs have not changed is reused
(``reuse``).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelambda
from modelambda import limits
from modelambda.package import checks, deps, files, importcheck, reuse
from modelambda.package.archive import ArchiveError, Entry, unpack_zip
from modelambda.package.artifacts import HANDLER, Artifact, BuildResult, Parts
from modelambda.package.onnxopt import optimized_onnx
from modelambda.package.slim import RUNTIME_PROVIDED, Slimmed, slim_cached
from modelambda.runtime.config import RuntimeConfig
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import ServiceSpec, function_config, load_spec, runtime_settings
from modelambda.strategies.base import Strategy

MANIFEST_FORMAT = 1

Log = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass
class Target:
    """What the function is built for."""

    python_version: str  # "3.12"
    architecture: str
    interpreter: str  # a python of that version on this machine, for bytecode and the check


# --- inputs -----------------------------------------------------------------------------------


def requirements_for(spec: ServiceSpec) -> list[str]:
    """The packages the spec's strategy needs in the function plus the service's
    requirements.txt, pinned to the versions installed here where possible."""
    key = spec.strategy.unit.requirements_key(spec)
    wanted = deps.pinned(list(deps.BACKEND_REQUIREMENTS.get(key, ())))
    extra = deps.read_requirements(spec.root / "requirements.txt")
    return sorted(set(wanted) | set(deps.pinned(extra)))


def _left_out(spec: ServiceSpec) -> list[str]:
    """Distributions to leave out of the artifact: what Lambda's runtime provides (unless the
    service pins it) and the spec's ``[build] exclude``."""
    own = " ".join(deps.read_requirements(spec.root / "requirements.txt")).lower()
    return [*(d for d in RUNTIME_PROVIDED if f"{d}==" not in own), *spec.build.exclude]


def _dependencies(spec: ServiceSpec, target: Target, say: Log) -> tuple[Path, Slimmed]:
    requirements = requirements_for(spec)
    say(f"dependencies for python{target.python_version} {target.architecture}: "
        f"{', '.join(requirements)}")
    site = deps.install(requirements, target.python_version, target.architecture, kind="deps",
                        subdir="python", python=target.interpreter) / "python"
    slimmed = slim_cached(site, target.python_version, _left_out(spec))
    say(f"slimmed: dropped {slimmed.dropped_files} files ({slimmed.dropped_bytes:,} bytes)"
        + (f"; left out {', '.join(sorted(slimmed.excluded))}" if slimmed.excluded else ""))
    return site, slimmed


def _model(spec: ServiceSpec, model: list[Entry], work: Path) -> list[Entry]:
    """The model files the function or its store holds, ONNX files offline-optimised."""
    model = spec.strategy.unit.model_entries(spec, model)
    if spec.model.framework == "onnx" and spec.build.optimize_onnx:
        model = optimized_onnx(model, work)
    return model


def publishable_model(spec: ServiceSpec, work: Path) -> dict[str, Path]:
    """The model's files as a store version holds them (relative to the model itself),
    ONNX files offline-optimised as in a build."""
    _, model = files.service_files(spec)
    if spec.model.framework == "onnx" and spec.build.optimize_onnx:
        model = optimized_onnx(model, work)
    return {_model_relative(spec, e.name): e.source for e in model}


def _model_relative(spec: ServiceSpec, name: str) -> str:
    """An archive name relative to the model: inside a model directory, or the file's name."""
    if spec.model_path.is_dir():
        return name.removeprefix(f"{spec.model.path}/")
    return Path(name).name


def _user_layers(spec: ServiceSpec, out: Path, first: int) -> list[Artifact]:
    """The spec's own layer zips (``[service] layers``), after modelambda's, unpacked with
    the archive rules (no '..', no absolute paths, no symlinks or special files, at most
    250 MB) and written again reproducibly, so they ship and count like any built layer."""
    staging = out.parent / f".layers-{out.name}"
    shutil.rmtree(staging, ignore_errors=True)
    layers = []
    for index, rel in enumerate(spec.service.layers, start=first):
        unpacked = staging / str(index)
        unpacked.mkdir(parents=True)
        try:
            unpack_zip(spec.root / rel, unpacked, max_bytes=limits.UNZIPPED_TOTAL_BYTES)
        except (ArchiveError, zipfile.BadZipFile, OSError) as exc:
            raise ArchiveError(f"[service] layers: {rel}: {exc}") from exc
        part = re.sub(r"[^A-Za-z0-9]+", "-", Path(rel).stem).strip("-") or "layer"
        name = f"layer-{index}-{part}.zip"
        layers.append(Artifact(
            name, "layer", out / name,
            [Entry(p.relative_to(unpacked).as_posix(), p)
             for p in sorted(unpacked.rglob("*")) if p.is_file()],
            f"your layer {rel} (/opt)"))
    return layers


def runtime_config(spec: ServiceSpec, strategy: str | None = None) -> RuntimeConfig:
    """The compiled config the function of ``strategy`` (default: the spec's) runs with."""
    return function_config(spec.for_strategy(strategy))


# --- sizes ------------------------------------------------------------------------------------


def _package_of(rel: str) -> str:
    top = rel.split("/", 1)[0]
    for suffix in (".libs", ".dist-info", ".data"):
        if top.endswith(suffix):
            top = top[: -len(suffix)].split("-")[0]
    return f"package {top.removesuffix('.py')}"


def _contributors(parts: Parts) -> list[checks.Contributor]:
    groups: dict[str, int] = {}
    for entry in parts.dependencies:
        key = _package_of(entry.name)
        groups[key] = groups.get(key, 0) + entry.size
    for entry in parts.model:
        groups[f"model {entry.name}"] = entry.size
    groups["modelambda runtime"] = sum(e.size for e in parts.runtime)
    for entry in parts.user_code:
        groups[f"file {entry.name}"] = groups.get(f"file {entry.name}", 0) + entry.size
    return sorted((checks.Contributor(name, size) for name, size in groups.items()),
                  key=lambda c: -c.bytes)


def _size_report(spec: ServiceSpec, function: Artifact, layers: list[Artifact],
                 parts: Parts, *, zipped: bool, image_base_bytes: int) -> checks.SizeReport:
    unit = spec.strategy.unit
    own = [checks.Contributor(a.contents.removesuffix(" (/opt)"), a.unzipped_bytes)
           for a in layers if a.contents.startswith("your layer ")]
    report = checks.SizeReport(contributors=sorted([*_contributors(parts), *own],
                                                   key=lambda c: -c.bytes))
    report.checks = unit.size_checks(function, layers, zipped=zipped,
                                     image_base_bytes=image_base_bytes)
    report.checks.append(checks.tmp_check(unit.tmp_needed(parts.model),
                                          spec.service.ephemeral_storage_mb))
    return report


# --- the build --------------------------------------------------------------------------------


def build(service: ServiceSpec | Path | str, strategy: str | None = None, *,
          architecture: str | None = None, python: str | None = None,
          image_base_bytes: int = checks.BASE_IMAGE_BYTES, log: Log | None = None,
          force: bool = False, check_imports: bool = True) -> BuildResult:
    """Build ``service`` (a parsed spec or its directory) for ``strategy`` (default: the
    spec's) into ``DIR/.modelambda/build/<strategy>/``."""
    from modelambda.local.interpreters import find_python, given_python

    say = log or _quiet
    spec = service if isinstance(service, ServiceSpec) else load_spec(service)
    spec = spec.for_strategy(strategy)
    unit = spec.strategy.unit
    target = Target(spec.service.runtime.removeprefix("python"),
                    architecture or spec.service.architecture,
                    given_python(python) if python else find_python(spec.service.runtime))
    out = spec.root / ".modelambda" / "build" / unit.name
    started = time.monotonic()

    site, slimmed = _dependencies(spec, target, say)
    dependencies = [Entry(rel, path) for rel, path in slimmed.kept]
    user, model = files.service_files(spec)
    runtime = [*files.runtime_sources(), *unit.shipped_code()]
    own_layers = [Entry(rel, spec.root / rel) for rel in spec.service.layers]
    fingerprint = reuse.fingerprint(
        spec, [unit.name, repr(sorted(runtime_settings(spec).items())), target.architecture,
               target.interpreter, str(image_base_bytes), *_left_out(spec),
               repr(spec.service.layers)],
        [*dependencies, *runtime, *user, *model, *own_layers])
    cached = None if force else reuse.cached(spec, unit, out, fingerprint)
    if cached is not None and check_imports and cached.manifest.get("import_check") == "skipped":
        cached = None  # made without the import check: build again, with it
    if cached is not None:
        say(f"unchanged since the last build: reusing {out}")
        return cached

    work = out.parent / f".code-{unit.name}"
    runtime, user_code = files.compiled_code(runtime, user, work, target.interpreter)
    model = _model(spec, model, work)
    config = function_config(spec, files={
        _model_relative(spec, e.name): {"sha256": sha256_file(e.source), "size": e.size}
        for e in model})  # the checksums describe the files shipped (optimised)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config_file = out / "modelambda.json"
    config_file.write_text(json.dumps(config.to_dict(), indent=1, sort_keys=True) + "\n")
    parts = Parts(dependencies, runtime, user_code, model, Entry("modelambda.json", config_file))
    function, layers = unit.layout(parts, out)
    layers = [*layers, *_user_layers(spec, out, len(layers) + 1)]
    result = BuildResult(spec, unit, out, function, layers, model_entries=model)
    manifest = _manifest(result, target, config, site, slimmed, fingerprint)

    report = _size_report(spec, function, layers, parts, zipped=False,
                          image_base_bytes=image_base_bytes)
    if report.failures:  # refuse before writing (let alone uploading) any archive
        _finish(result, report, started, ok=False)
        raise checks.LimitExceeded(checks.explain(report, unit.size_fixes(
            sum(e.size for e in model))), report, out / "manifest.json")
    for artifact in result.artifacts:
        say(f"writing {artifact.name} ({artifact.unzipped_bytes:,} bytes unzipped)")
    unit.write(function, layers, spec, target.architecture)
    report = _size_report(spec, function, layers, parts, zipped=True,
                          image_base_bytes=image_base_bytes)
    if check_imports:
        say(f"import check: the handler's init in python{target.python_version}, from the "
            "built files")
        try:
            importcheck.check(result, target.interpreter, _lambda_runtime_dir(target))
        except importcheck.ImportCheckFailed:
            _finish(result, report, started, ok=False)
            raise
    manifest["import_check"] = unit.import_check if check_imports else "skipped"
    _finish(result, report, started, ok=True)
    return result


def _lambda_runtime_dir(target: Target) -> Path | None:
    """What Lambda's Python runtime provides at /var/runtime (boto3 among it), installed for
    the target as the emulator installs it; None where it cannot be (the check then runs
    without it)."""
    try:
        return deps.install(deps.pinned(list(deps.LAMBDA_RUNTIME_PACKAGES)),
                            target.python_version, target.architecture, kind="lambda-runtime",
                            python=target.interpreter)
    except deps.DependencyError:
        return None


def _manifest(result: BuildResult, target: Target, config: RuntimeConfig, site: Path,
              slimmed: Slimmed, fingerprint: str) -> dict[str, Any]:
    spec = result.spec
    result.manifest = {
        "format": MANIFEST_FORMAT, "modelambda": modelambda.__version__,
        "service": spec.service.name, "strategy": result.strategy.name,
        "strategy_settings": dict(spec.strategy.settings),
        "runtime": spec.service.runtime, "inputs_fingerprint": fingerprint,
        "architecture": target.architecture, "handler": HANDLER,
        "model": config.model.to_dict(), "dependencies": deps.installed_versions(site),
        "left_out": {"distributions": slimmed.excluded, "slimmed_files": slimmed.dropped_files,
                     "slimmed_bytes": slimmed.dropped_bytes},
    }
    return result.manifest


def _finish(result: BuildResult, report: checks.SizeReport, started: float, *, ok: bool
            ) -> None:
    manifest = result.manifest
    manifest["ok"] = ok
    manifest["limits"] = [c.as_dict() for c in report.checks]
    manifest["contributors"] = [{"name": c.name, "bytes": c.bytes}
                                for c in report.contributors[:10]]
    manifest["artifacts"] = [a.describe(result.out) for a in result.artifacts]
    manifest["build_seconds"] = round(time.monotonic() - started, 2)
    (result.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


__all__ = ["MANIFEST_FORMAT", "Strategy", "build", "publishable_model", "requirements_for",
           "runtime_config"]
