"""``modelambda build``: the artifacts of one strategy, checked against Lambda's limits.

    build(DIR, "bundle")  ->  DIR/.modelambda/build/bundle/function.zip + manifest.json
    build(DIR, "layer")   ->  function.zip (config + user code) + layer-1-dependencies.zip
                              (python/...) + layer-2-model.zip (model/...), in /opt order
    build(DIR, "image")   ->  context/ (Dockerfile + task/) for docker/podman build

Stages: resolve the dependencies for the target (``deps``), slim them (``slim``), compile the
function's own code for the target interpreter, lay the files out per strategy, check the
sizes (``checks``) before writing any archive, write reproducible archives (``archive``), and
record everything in ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import modelambda
from modelambda.errors import UsageError
from modelambda.package import checks, deps
from modelambda.package.archive import ArchiveError, Entry, check_name, sha256_of, write_zip
from modelambda.package.slim import RUNTIME_PROVIDED, slim
from modelambda.spec import ServiceSpec, compile_runtime_config, load_spec

BUILD_STRATEGIES = ("bundle", "layer", "image", "s3", "efs", "endpoint")
ENDPOINT_BACKEND = "modelambda.runtime.backends.endpoint:EndpointBackend"
# Strategies whose model is not in the function: it is published to a model store.
STORE_STRATEGIES = ("s3", "efs")
HANDLER = "modelambda.runtime.handler.handle"
MANIFEST_FORMAT = 1
_SKIP = {".modelambda", "__pycache__", ".git", ".venv", ".pytest_cache", ".mypy_cache"}
BASE_IMAGES = {"x86_64": "public.ecr.aws/lambda/python:{version}",
               "arm64": "public.ecr.aws/lambda/python:{version}-arm64"}


@dataclass
class Artifact:
    name: str
    kind: str  # "function" | "layer" | "image-context"
    path: Path
    entries: list[Entry]
    contents: str = ""
    sha256: str = ""
    zipped_bytes: int = 0

    @property
    def unzipped_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def describe(self, root: Path) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "contents": self.contents,
            "path": self.path.relative_to(root).as_posix(), "sha256": self.sha256,
            "zipped_bytes": self.zipped_bytes, "unzipped_bytes": self.unzipped_bytes,
            "files": [{"path": e.name, "size": e.size} for e in
                      sorted(self.entries, key=lambda e: e.name)],
        }


@dataclass
class BuildResult:
    spec: ServiceSpec
    strategy: str
    out: Path
    function: Artifact
    layers: list[Artifact] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def image_context(self) -> Path:
        return self.out / "context"


# --- gathering files -------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    real = path.resolve()
    return real == root or root in real.parents


def service_files(spec: ServiceSpec) -> tuple[list[Entry], list[Entry]]:
    """(user code and data, model files) of a service directory, as archive entries.

    A symlink that leads out of the service directory is refused: packing it would ship
    whatever it points at."""
    root = spec.root.resolve()
    model = spec.model_path
    user, model_entries = [], []
    for path in sorted(spec.root.rglob("*")):
        rel = path.relative_to(spec.root)
        if any(part in _SKIP or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink() and not _inside(path, root):
            raise ArchiveError(f"{rel} is a symlink to {path.resolve()}, outside the service "
                               "directory: copy the file in instead")
        if not path.is_file():
            continue
        if any(rel.match(pattern) for pattern in spec.build.exclude_files):
            continue
        name = check_name(rel.as_posix())
        in_model = path == model or model in path.parents
        if in_model:
            model_entries.append(Entry(name, path))
        elif rel.as_posix() not in ("modelambda.toml", "requirements.txt"):
            user.append(Entry(name, path))
    return user, model_entries


def _copy(entries: Iterable[Entry], root: Path) -> None:
    for entry in entries:
        target = root / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(entry.source.resolve(), target)
        except OSError:
            shutil.copy2(entry.source, target)


def compiled_code(user: list[Entry], work: Path, python: str) -> tuple[list[Entry], list[Entry]]:
    """(modelambda runtime, user code) with bytecode compiled for the target interpreter.

    unchecked-hash .pyc files: Lambda unpacks with the zip's timestamps, which would make
    timestamp-checked bytecode look stale and be compiled again on every cold start."""
    shutil.rmtree(work, ignore_errors=True)
    package = Path(modelambda.__file__).parent
    runtime = [Entry(f"modelambda/{name}", package / name) for name in ("__init__.py",
                                                                        "limits.py")]
    runtime += [Entry(f"modelambda/runtime/{p.relative_to(package / 'runtime').as_posix()}", p)
                for p in sorted((package / "runtime").rglob("*.py"))]
    _copy(runtime, work / "runtime")
    _copy(user, work / "user")
    done = subprocess.run([python, "-m", "compileall", "-q", "--invalidation-mode",
                           "unchecked-hash", str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ArchiveError("your code does not compile for the target interpreter:\n"
                           + (done.stdout + done.stderr).strip()[-2000:])

    def entries(sub: str) -> list[Entry]:
        base = work / sub
        return [Entry(p.relative_to(base).as_posix(), p)
                for p in sorted(base.rglob("*")) if p.is_file()]

    return entries("runtime"), entries("user")


def optimized_onnx(model: list[Entry], work: Path) -> list[Entry]:
    """Model entries with each .onnx file replaced by its offline-optimised form.

    onnxruntime applies its graph optimisations at every session creation; saved once here
    (at the "extended" level, which does not depend on the CPU's instruction set), a cold
    start skips that work. The same onnxruntime version is pinned into the function."""
    try:
        import onnxruntime as ort
    except ImportError:
        return model
    out = []
    for entry in model:
        if not entry.name.endswith(".onnx"):
            out.append(entry)
            continue
        target = work / "optimized" / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        ort.InferenceSession(str(entry.source), options, providers=["CPUExecutionProvider"])
        out.append(Entry(entry.name, target))
    return out


def model_source(spec: ServiceSpec, strategy: str) -> dict[str, Any]:
    """Where the function finds its model, for the runtime config of a strategy."""
    if strategy == "layer":
        return {"kind": "layer", "path": f"model/{spec.model.path}"}
    if strategy in STORE_STRATEGIES:
        verify = spec.model.verify_checksums
        # S3 downloads are checked by default; EFS reads are trusted unless the spec asks,
        # since hashing a large file on every cold start costs a full read of it.
        return {"kind": strategy, "model": spec.model.name,
                "verify": strategy == "s3" if verify is None else verify}
    return {"kind": strategy, "path": spec.model.path}


def _shipped_model(spec: ServiceSpec, strategy: str, model: list[Entry], work: Path
                   ) -> list[Entry]:
    """The model files the function itself carries, for a strategy."""
    if strategy == "endpoint":  # the endpoint serves the model; keep e.g. a tokenizer
        from modelambda.spec import SUFFIX_FRAMEWORKS

        return [e for e in model if Path(e.name).suffix not in SUFFIX_FRAMEWORKS]
    if spec.model.framework == "onnx" and spec.build.optimize_onnx:
        return optimized_onnx(model, work)
    return model


def runtime_config(spec: ServiceSpec, strategy: str) -> Any:
    """The compiled config a strategy's function runs with."""
    config = compile_runtime_config(spec, model_source(spec, strategy))
    if strategy == "endpoint":
        settings = spec.strategy.settings if spec.strategy.kind == "endpoint" else {}
        config.model.backend = ENDPOINT_BACKEND
        config.model.options = {"protocol": settings.get("protocol", "v2"),
                                "url": settings.get("url"),
                                "name": settings.get("name") or spec.model.name,
                                "timeout_s": settings.get("timeout_s", 10)}
    return config


def publishable_model(spec: ServiceSpec, work: Path) -> dict[str, Path]:
    """The model's files as a store version holds them (relative to the model itself),
    ONNX files offline-optimised as in a build."""
    _, model = service_files(spec)
    if spec.model.framework == "onnx" and spec.build.optimize_onnx:
        model = optimized_onnx(model, work)
    prefix = f"{spec.model.path}/" if spec.model_path.is_dir() else ""
    return {(e.name.removeprefix(prefix) if prefix else Path(e.name).name): e.source
            for e in model}


def requirements_for(spec: ServiceSpec, strategy: str | None = None) -> list[str]:
    """The backend's packages plus the service's requirements.txt, pinned where possible."""
    backend = "endpoint" if strategy == "endpoint" else spec.model.framework
    wanted = deps.pinned(list(deps.BACKEND_REQUIREMENTS.get(backend, ())))
    extra = deps.read_requirements(spec.root / "requirements.txt")
    return sorted(set(wanted) | set(deps.pinned(extra)))


def _requirements(spec: ServiceSpec, strategy: str) -> tuple[list[str], list[str]]:
    """(requirements to install, distributions to leave out of the artifact)."""
    wanted = requirements_for(spec, strategy)
    own = " ".join(deps.read_requirements(spec.root / "requirements.txt")).lower()
    exclude = [d for d in RUNTIME_PROVIDED if f"{d}==" not in own]  # pinned: keep it
    return wanted, [*exclude, *spec.build.exclude]


def _installed_versions(site: Path) -> dict[str, str]:
    versions = {}
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        versions[name] = version
    return versions


def _contributors(groups: dict[str, int]) -> list[checks.Contributor]:
    return sorted((checks.Contributor(name, size) for name, size in groups.items()),
                  key=lambda c: -c.bytes)


def _package_of(rel: str) -> str:
    top = rel.split("/", 1)[0]
    for suffix in (".libs", ".dist-info", ".data"):
        if top.endswith(suffix):
            top = top[: -len(suffix)].split("-")[0]
    return f"package {top.removesuffix('.py')}"


# --- the build --------------------------------------------------------------------------------


def build(directory: Path | str, strategy: str, *, architecture: str | None = None,
          python: str | None = None, image_base_bytes: int = checks.BASE_IMAGE_BYTES,
          log: Callable[[str], None] | None = None, force: bool = False) -> BuildResult:
    from modelambda.local.interpreters import find_python

    say = log or (lambda _line: None)
    if strategy not in BUILD_STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: build makes {', '.join(BUILD_STRATEGIES)}")
    spec = load_spec(directory)
    arch = architecture or spec.service.architecture
    version = spec.service.runtime.removeprefix("python")
    interpreter = python or find_python(spec.service.runtime)
    out = spec.root / ".modelambda" / "build" / strategy
    started = time.monotonic()

    requirements, exclude = _requirements(spec, strategy)
    say(f"dependencies for python{version} {arch}: {', '.join(requirements)}")
    site = deps.install(requirements, version, arch, kind="deps", subdir="python",
                        python=interpreter) / "python"
    slimmed = slim(site, version, exclude)
    say(f"slimmed: dropped {slimmed.dropped_files} files ({slimmed.dropped_bytes:,} bytes)"
        + (f"; left out {', '.join(sorted(slimmed.excluded))}" if slimmed.excluded else ""))
    dep_entries = [Entry(rel, path) for rel, path in slimmed.kept]
    user, model = service_files(spec)
    fingerprint = _fingerprint(spec, strategy, arch, interpreter, site, exclude, user, model,
                               image_base_bytes)
    cached = None if force else _cached(spec, strategy, out, fingerprint)
    if cached is not None:
        say(f"unchanged since the last build: reusing {out}")
        return cached
    work = out.parent / f".code-{strategy}"
    runtime, user_code = compiled_code(user, work, interpreter)
    model = _shipped_model(spec, strategy, model, work)

    config = runtime_config(spec, strategy)
    # the checksums describe the files shipped (optimised), the version the model itself
    prefix = f"{spec.model.path}/" if spec.model_path.is_dir() else ""
    config.model.files = {e.name.removeprefix(prefix) if prefix else Path(e.name).name:
                          {"sha256": sha256_of(e.source), "size": e.size} for e in model}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config_file = out / "modelambda.json"
    config_file.write_text(json.dumps(config.to_dict(), indent=1, sort_keys=True) + "\n")
    config_entry = Entry("modelambda.json", config_file)

    groups: dict[str, int] = {}
    for rel, path in slimmed.kept:
        key = _package_of(rel)
        groups[key] = groups.get(key, 0) + path.stat().st_size
    for entry in model:
        groups[f"model {entry.name}"] = entry.size
    groups["modelambda runtime"] = sum(e.size for e in runtime)
    for entry in user_code:
        groups[f"file {entry.name}"] = groups.get(f"file {entry.name}", 0) + entry.size

    function, layers = _layout(strategy, out, dep_entries, runtime, user_code, model,
                               config_entry)
    report = checks.SizeReport(contributors=_contributors(groups))
    if strategy == "image":
        report.checks = checks.image_checks(function.unzipped_bytes, image_base_bytes)
    else:
        report.checks = checks.zip_checks(function.unzipped_bytes, 0,
                                          [(a.name, a.unzipped_bytes, 0) for a in layers])
    # the s3 source keeps ONNX files in memory and writes the other model files to /tmp
    tmp_needed = sum(e.size for e in model if not e.name.endswith(".onnx")) \
        if strategy == "s3" else 0
    report.checks.append(checks.tmp_check(tmp_needed, spec.service.ephemeral_storage_mb))
    model_bytes = sum(e.size for e in model)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "modelambda": modelambda.__version__,
        "service": spec.service.name, "strategy": strategy, "runtime": spec.service.runtime,
        "inputs_fingerprint": fingerprint,
        "architecture": arch, "handler": HANDLER, "model": config.model.to_dict(),
        "dependencies": _installed_versions(site),
        "left_out": {"distributions": slimmed.excluded,
                     "slimmed_files": slimmed.dropped_files,
                     "slimmed_bytes": slimmed.dropped_bytes},
    }

    def finish(ok: bool) -> None:
        manifest["ok"] = ok
        manifest["limits"] = [c.as_dict() for c in report.checks]
        manifest["contributors"] = [{"name": c.name, "bytes": c.bytes}
                                    for c in report.contributors[:10]]
        manifest["artifacts"] = [a.describe(out) for a in (function, *layers)]
        manifest["build_seconds"] = round(time.monotonic() - started, 2)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    if report.failures:  # refuse before writing (let alone uploading) any archive
        finish(ok=False)
        raise checks.LimitExceeded(checks.explain(report, strategy, model_bytes), report)

    if strategy == "image":
        _write_context(function, spec, version, arch)
    else:
        for artifact in (function, *layers):
            say(f"writing {artifact.name} ({artifact.unzipped_bytes:,} bytes unzipped)")
            artifact.sha256 = write_zip(artifact.path, artifact.entries)
            artifact.zipped_bytes = artifact.path.stat().st_size
        report.checks = [c for c in report.checks if "direct upload" not in c.name]
        report.checks[1:1] = [c for c in checks.zip_checks(
            function.unzipped_bytes, function.zipped_bytes,
            [(a.name, a.unzipped_bytes, a.zipped_bytes) for a in layers])
            if "direct upload" in c.name]
    finish(ok=True)
    return BuildResult(spec, strategy, out, function, layers, manifest)


def _fingerprint(spec: ServiceSpec, strategy: str, arch: str, python: str, site: Path,
                 exclude: list[str], user: list[Entry], model: list[Entry],
                 image_base_bytes: int) -> str:
    """What a build's output depends on: when it is unchanged, the last build is reused
    (``up`` restarts in a second instead of re-zipping 100+ MB)."""
    import hashlib

    package = Path(modelambda.__file__).parent
    runtime = [Entry(p.relative_to(package).as_posix(), p)
               for p in sorted(package.glob("runtime/**/*.py"))]
    parts = [modelambda.__version__, strategy, arch, python, str(site), *sorted(exclude),
             str(image_base_bytes), spec.file.read_text(encoding="utf-8")]
    for entry in (*runtime, *user, *model):
        info = entry.source.stat()
        parts.append(f"{entry.name}\0{info.st_size}\0{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cached(spec: ServiceSpec, strategy: str, out: Path, fingerprint: str
            ) -> BuildResult | None:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if manifest.get("inputs_fingerprint") != fingerprint or not manifest.get("ok"):
        return None
    artifacts = []
    for described in manifest["artifacts"]:
        path = out / described["path"]
        if not path.exists() or (path.is_file() and sha256_of(path) != described["sha256"]):
            return None
        artifacts.append(Artifact(described["name"], described["kind"], path, [],
                                  described["contents"], described["sha256"],
                                  described["zipped_bytes"]))
    return BuildResult(spec, strategy, out, artifacts[0], artifacts[1:], manifest)


def _layout(strategy: str, out: Path, dep_entries: list[Entry], runtime: list[Entry],
            user_code: list[Entry], model: list[Entry], config_entry: Entry
            ) -> tuple[Artifact, list[Artifact]]:
    """Which file goes into which artifact, at which path, for each strategy."""
    if strategy == "bundle":
        return Artifact("function.zip", "function", out / "function.zip",
                        [*dep_entries, *runtime, *user_code, *model, config_entry],
                        "code, dependencies, model and config"), []
    if strategy == "endpoint":
        return Artifact("function.zip", "function", out / "function.zip",
                        [*dep_entries, *runtime, *user_code, *model, config_entry],
                        "code, dependencies, config and the model's non-model files (e.g. "
                        "a tokenizer); the model is served by the endpoint"), []
    if strategy in STORE_STRATEGIES:
        return Artifact("function.zip", "function", out / "function.zip",
                        [*dep_entries, *runtime, *user_code, config_entry],
                        f"code, dependencies and config; the model is in the {strategy} "
                        "model store"), []
    if strategy == "layer":
        # Dependencies and model in separate layers, model last: a new model version
        # publishes one new layer and leaves the dependencies' layer as it was.
        return Artifact("function.zip", "function", out / "function.zip",
                        [*user_code, config_entry], "config and user code"), [
            Artifact("layer-1-dependencies.zip", "layer", out / "layer-1-dependencies.zip",
                     [Entry(f"python/{e.name}", e.source) for e in [*dep_entries, *runtime]],
                     "python packages and the modelambda runtime (/opt/python)"),
            Artifact("layer-2-model.zip", "layer", out / "layer-2-model.zip",
                     [Entry(f"model/{e.name}", e.source) for e in model],
                     "the model (/opt/model)"),
        ]
    return Artifact("context", "image-context", out / "context",
                    [Entry(f"task/{e.name}", e.source) for e in
                     [*dep_entries, *runtime, *user_code, *model, config_entry]],
                    "docker build context: Dockerfile + task root"), []


DOCKERFILE = """\
# Built by modelambda {version}: the {service} function on AWS's Lambda Python base image.
# docker build --platform {platform} -t {service} .   (or: podman build ...)
FROM {base}
COPY task/ ${{LAMBDA_TASK_ROOT}}/
CMD ["{handler}"]
"""


def _write_context(artifact: Artifact, spec: ServiceSpec, version: str, arch: str) -> None:
    context = artifact.path
    context.mkdir(parents=True, exist_ok=True)
    _copy(artifact.entries, context)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(DOCKERFILE.format(
        version=modelambda.__version__, service=spec.service.name,
        platform="linux/amd64" if arch == "x86_64" else "linux/arm64",
        base=BASE_IMAGES[arch].format(version=version), handler=HANDLER))
    artifact.entries.append(Entry("Dockerfile", dockerfile))
    # The context's identity: a hash over its files' names and hashes (sorted).
    digest = "\n".join(f"{e.name} {sha256_of(context / e.name)}"
                       for e in sorted(artifact.entries, key=lambda e: e.name))
    import hashlib

    artifact.sha256 = hashlib.sha256(digest.encode()).hexdigest()
