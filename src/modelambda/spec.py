"""The service spec, ``modelambda.toml``: parsed, checked, and compiled for the runtime.

Every value is checked, and all problems are reported together: each names the file, the
section and key, the bad value and what is allowed. ``compile_runtime_config`` turns a valid
spec into the small JSON config that ships inside the function (``runtime/config.py``).

Stdlib only (plus the runtime's own modules): the runtime compiles a spec on the fly when a
service directory is served in place.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelambda import limits
from modelambda.errors import SpecError
from modelambda.runtime import backends, storelayout
from modelambda.runtime.config import ModelConfig, PipelineConfig, RuntimeConfig
from modelambda.runtime.errors import ConfigError
from modelambda.runtime.integrity import model_root, sha256_file

SPEC_FILE = "modelambda.toml"

STRATEGIES = ("bundle", "layer", "image", "s3", "endpoint", "efs")
# Strategies whose model lives outside the function: checksums are verified at load.
REMOTE_STRATEGIES = ("s3", "efs")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ALIAS = storelayout.NAME
_MOUNT = re.compile(r"^/mnt/[A-Za-z0-9_.-]+$")
_VERSION = storelayout.NAME
_DIST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

SUFFIX_FRAMEWORKS = {
    ".onnx": "onnx", ".skops": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn",
    ".joblib": "sklearn", ".tflite": "tflite", ".ubj": "xgboost",
}


@dataclass(frozen=True)
class Service:
    name: str
    runtime: str = limits.DEFAULT_RUNTIME
    architecture: str = "x86_64"
    memory_mb: int = 1024
    timeout_s: int = 30
    ephemeral_storage_mb: int = 512
    reserved_concurrency: int | None = None
    snapstart: bool = False


@dataclass(frozen=True)
class Model:
    path: str
    framework: str
    name: str
    version: str | None = None
    class_ref: str | None = None
    trust_pickle: bool = False
    verify_checksums: bool | None = None  # None: on for s3/efs, off where the artifact is checked
    max_batch: int = 1024
    allow_nonfinite: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    preprocess: str | None = None
    postprocess: str | None = None
    setup: str | None = None


@dataclass(frozen=True)
class Strategy:
    kind: str = "bundle"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Build:
    # Distributions to leave out of the artifact although a requirement pulls them in (e.g.
    # huggingface-hub, which tokenizers depends on but never imports to tokenise).
    exclude: tuple[str, ...] = ()
    # Files of the service directory to leave out (glob patterns, relative to it).
    exclude_files: tuple[str, ...] = ()
    # Save ONNX models with onnxruntime's graph optimisations already applied, so that a
    # cold start does not spend time on them.
    optimize_onnx: bool = True


@dataclass(frozen=True)
class ServiceSpec:
    root: Path
    service: Service
    model: Model
    pipeline: Pipeline
    strategy: Strategy
    build: Build = field(default_factory=Build)

    @property
    def file(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def model_path(self) -> Path:
        return self.root / self.model.path


# --- checking ---------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, section: str, key: str, value: Any, allowed: str) -> None:
        shown = "(missing)" if value is _MISSING else f"= {value!r}"
        self.items.append(f"[{section}] {key} {shown}: {allowed}")


_MISSING: Any = object()


class _Table:
    """One TOML table: typed getters that record problems instead of raising."""

    def __init__(self, section: str, data: Any, problems: _Problems) -> None:
        self.section = section
        self.problems = problems
        if not isinstance(data, dict):
            problems.add(section, "", data, "must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def _raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key, _MISSING)

    def string(self, key: str, default: Any = _MISSING, *, pattern: re.Pattern[str] | None = None,
               allowed: str = "a string", choices: tuple[str, ...] | None = None) -> Any:
        value = self._raw(key)
        if value is _MISSING:
            if default is _MISSING:
                self.problems.add(self.section, key, value, f"required: {allowed}")
            return None if default is _MISSING else default
        ok = isinstance(value, str)
        if ok and choices is not None:
            ok = value in choices
            allowed = "one of " + ", ".join(choices)
        if ok and pattern is not None:
            ok = bool(pattern.match(value))
        if not ok:
            self.problems.add(self.section, key, value, allowed)
            return None if default is _MISSING else default
        return value

    def integer(self, key: str, default: Any, low: int, high: int, unit: str = "") -> Any:
        value = self._raw(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.add(self.section, key, value,
                              f"must be an integer from {low} to {high}{unit}")
            return default
        return value

    def boolean(self, key: str, default: bool | None) -> Any:
        value = self._raw(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.section, key, value, "must be true or false")
            return default
        return value

    def finish(self) -> None:
        """Report keys nobody asked for, with the closest known key as a hint."""
        for key in sorted(set(self.data) - self.seen):
            close = difflib.get_close_matches(key, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(self.seen)) or "none"
            self.problems.add(self.section, key, self.data[key],
                              f"unknown key{hint}; known keys: {known}")


def _module_file(root: Path, module: str) -> bool:
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _check_ref(table: _Table, key: str, root: Path, what: str) -> str | None:
    ref: str | None = table.string(key, None, pattern=_REF,
                                   allowed=f"'module:{what}' naming code in the service dir")
    if ref is not None and not _module_file(root, ref.partition(":")[0]):
        module = ref.partition(":")[0]
        table.problems.add(table.section, key, ref,
                           f"module {module!r} not found: expected "
                           f"{module.replace('.', '/')}.py in {root}")
        return None
    return ref


def _service(data: Any, root: Path, problems: _Problems) -> Service:
    t = _Table("service", data, problems)
    name = t.string("name", root.resolve().name if _NAME.match(root.resolve().name) else _MISSING,
                    pattern=_NAME, allowed="letters, digits, '-' and '_', at most 64 characters")
    service = Service(
        name=name or "invalid",
        runtime=t.string("runtime", limits.DEFAULT_RUNTIME, choices=limits.PYTHON_RUNTIMES),
        architecture=t.string("architecture", "x86_64", choices=limits.ARCHITECTURES),
        memory_mb=t.integer("memory_mb", 1024, limits.MEMORY_MB_MIN, limits.MEMORY_MB_MAX, " (MB)"),
        timeout_s=t.integer("timeout_s", 30, limits.TIMEOUT_S_MIN, limits.TIMEOUT_S_MAX, " (s)"),
        ephemeral_storage_mb=t.integer("ephemeral_storage_mb", 512, limits.EPHEMERAL_MB_MIN,
                                       limits.EPHEMERAL_MB_MAX, " (MB)"),
        reserved_concurrency=t.integer("reserved_concurrency", None, 0,
                                       limits.DEFAULT_CONCURRENCY),
        snapstart=t.boolean("snapstart", False),
    )
    t.finish()
    return service


def _model(data: Any, root: Path, service_name: str, problems: _Problems) -> Model:
    t = _Table("model", data, problems)
    path = t.string("path", allowed="the model file or directory, relative to the service dir")
    frameworks = tuple(sorted(set(backends.KNOWN_FRAMEWORKS) | set(backends.registered())))
    guessed = SUFFIX_FRAMEWORKS.get(PurePosixPath(path or "").suffix, _MISSING)
    if path is not None:
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            problems.add("model", "path", path, "must be relative to the service dir, without '..'")
            path = None
        elif not (root / path).exists():
            problems.add("model", "path", path, f"no such file or directory in {root}")
    framework = t.string("framework", guessed, choices=frameworks)
    if framework is not None and framework not in backends.registered():
        problems.add("model", "framework", framework,
                     "no backend for it is installed or built yet; available: "
                     + ", ".join(sorted(backends.registered())))
    class_ref = _check_ref(t, "class", root, "Class")
    if framework == "python" and class_ref is None and "class" not in t.data:
        problems.add("model", "class", _MISSING,
                     "framework 'python' needs class = \"module:Class\" (with load and predict)")
    options = t.data.get("options", {})
    t.seen.add("options")
    if not isinstance(options, dict):
        problems.add("model", "options", options, "must be a table of backend options")
        options = {}
    model = Model(
        path=path or "",
        framework=framework or "",
        name=t.string("name", service_name, pattern=_NAME,
                      allowed="letters, digits, '-' and '_', at most 64 characters"),
        version=t.string("version", None, pattern=_VERSION,
                         allowed="letters, digits, '.', '-' and '_', at most 64 characters"),
        class_ref=class_ref,
        trust_pickle=t.boolean("trust_pickle", False),
        verify_checksums=t.boolean("verify_checksums", None),
        max_batch=t.integer("max_batch", 1024, 1, 1_000_000),
        allow_nonfinite=t.boolean("allow_nonfinite", False),
        options=options,
    )
    t.finish()
    return model


def _pipeline(data: Any, root: Path, problems: _Problems) -> Pipeline:
    t = _Table("pipeline", data, problems)
    pipeline = Pipeline(
        preprocess=_check_ref(t, "preprocess", root, "function"),
        postprocess=_check_ref(t, "postprocess", root, "function"),
        setup=_check_ref(t, "setup", root, "function"),
    )
    t.finish()
    return pipeline


# Per-strategy keys: name -> getter(table). Each strategy's keys live here and nowhere else.
_StrategyKeys = dict[str, Callable[[_Table], Any]]
STRATEGY_KEYS: dict[str, _StrategyKeys] = {
    "bundle": {},
    "layer": {},
    "image": {},
    "s3": {
        "bucket": lambda t: t.string("bucket", pattern=_BUCKET,
                                     allowed="an S3 bucket name (3-63 lower-case letters, "
                                             "digits, '.', '-')"),
        "prefix": lambda t: t.string("prefix", "models"),
        "alias": lambda t: t.string("alias", "live", pattern=_ALIAS,
                                    allowed="letters, digits, '-' and '_'"),
        "refresh_s": lambda t: t.integer("refresh_s", 60, 0, 86400, " (s; 0 = never)"),
    },
    "efs": {
        "mount_path": lambda t: t.string("mount_path", "/mnt/models", pattern=_MOUNT,
                                         allowed="a path like /mnt/NAME (Lambda mounts EFS "
                                                 "under /mnt)"),
        "alias": lambda t: t.string("alias", "live", pattern=_ALIAS,
                                    allowed="letters, digits, '-' and '_'"),
        "refresh_s": lambda t: t.integer("refresh_s", 60, 0, 86400, " (s; 0 = never)"),
    },
    "endpoint": {
        "protocol": lambda t: t.string("protocol", "v2", choices=("v2", "sagemaker")),
        "url": lambda t: t.string("url", None, pattern=re.compile(r"^https?://\S+$"),
                                  allowed="an http(s) URL"),
        "name": lambda t: t.string("name", None, pattern=_NAME,
                                   allowed="an endpoint or model name"),
        "timeout_s": lambda t: t.integer("timeout_s", 10, 1, limits.TIMEOUT_S_MAX, " (s)"),
    },
}


def _build(data: Any, problems: _Problems) -> Build:
    t = _Table("build", data, problems)
    exclude = t.data.get("exclude", [])
    t.seen.add("exclude")
    if not (isinstance(exclude, list) and all(isinstance(x, str) and _DIST.match(x)
                                              for x in exclude)):
        problems.add("build", "exclude", exclude, "a list of distribution names to leave out")
        exclude = []
    files = t.data.get("exclude_files", [])
    t.seen.add("exclude_files")
    if not (isinstance(files, list) and all(isinstance(x, str) and x and ".." not in x
                                            for x in files)):
        problems.add("build", "exclude_files", files,
                     "a list of glob patterns, relative to the service dir")
        files = []
    optimize = t.boolean("optimize_onnx", True)
    t.finish()
    return Build(exclude=tuple(exclude), exclude_files=tuple(files), optimize_onnx=optimize)


def _strategy(data: Any, problems: _Problems) -> Strategy:
    t = _Table("strategy", data, problems)
    kind = t.string("kind", "bundle", choices=STRATEGIES)
    settings = {key: getter(t) for key, getter in STRATEGY_KEYS.get(kind, {}).items()}
    if kind == "endpoint":
        if settings.get("protocol") == "v2" and not settings.get("url"):
            problems.add("strategy", "url", _MISSING, "required for protocol 'v2'")
        if settings.get("protocol") == "sagemaker" and not settings.get("name"):
            problems.add("strategy", "name", _MISSING, "required for protocol 'sagemaker'")
    t.finish()
    return Strategy(kind=kind, settings=settings)


def _cross_checks(spec: ServiceSpec, problems: _Problems) -> None:
    service = spec.service
    if service.snapstart:
        if service.runtime not in limits.SNAPSTART_RUNTIMES:
            problems.add("service", "snapstart", True,
                         f"SnapStart needs one of {', '.join(limits.SNAPSTART_RUNTIMES)}")
        if spec.strategy.kind == "efs":
            problems.add("service", "snapstart", True, "Lambda has no SnapStart with EFS")
        if service.ephemeral_storage_mb > limits.SNAPSTART_EPHEMERAL_MB_MAX:
            problems.add("service", "snapstart", True,
                         f"Lambda has no SnapStart with ephemeral_storage_mb > "
                         f"{limits.SNAPSTART_EPHEMERAL_MB_MAX}")


def parse_spec(root: Path, data: Mapping[str, Any]) -> ServiceSpec:
    """Check a parsed TOML document; raise SpecError listing every problem."""
    problems = _Problems()
    sections = {"service", "model", "pipeline", "strategy", "build"}
    for key in sorted(set(data) - sections):
        close = difflib.get_close_matches(key, sorted(sections), n=1)
        hint = f" (did you mean [{close[0]}]?)" if close else ""
        known = ", ".join(sorted(sections))
        problems.items.append(f"[{key}]: unknown section{hint}; known: {known}")
    if "model" not in data:
        problems.items.append("[model]: required section (path = the model file)")
    service = _service(data.get("service", {}), root, problems)
    spec = ServiceSpec(
        root=root,
        service=service,
        model=_model(data.get("model", {}), root, service.name, problems),
        pipeline=_pipeline(data.get("pipeline", {}), root, problems),
        strategy=_strategy(data.get("strategy", {}), problems),
        build=_build(data.get("build", {}), problems),
    )
    _cross_checks(spec, problems)
    if problems.items:
        raise SpecError(root / SPEC_FILE, problems.items)
    return spec


def load_spec(directory: Path | str) -> ServiceSpec:
    root = Path(directory)
    file = root / SPEC_FILE
    if not root.is_dir():
        raise SpecError(file, [f"{root} is not a directory (a service dir holds {SPEC_FILE})"])
    if not file.is_file():
        raise SpecError(file, [f"no {SPEC_FILE} in {root}; write one with "
                               f"'modelambda init {root} --model PATH'"])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(file, [f"not valid TOML: {exc}"]) from exc
    return parse_spec(root, data)


# --- compiling ----------------------------------------------------------------------------


def model_files(model_path: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file of the model, keyed by path relative to the model root."""
    root = Path(model_root(str(model_path)))
    paths = sorted(p for p in model_path.rglob("*") if p.is_file()) if model_path.is_dir() \
        else [model_path]
    return {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
            for p in paths}


def version_of(files: Mapping[str, Mapping[str, Any]]) -> str:
    """The default model version: a short hash over the model files' hashes."""
    digest = hashlib.sha256()
    for rel, info in sorted(files.items()):
        digest.update(f"{rel}\0{info['sha256']}\n".encode())
    return digest.hexdigest()[:12]


def backend_options(model: Model) -> dict[str, Any]:
    options = dict(model.options)
    if model.framework == "sklearn" and model.trust_pickle:
        options["trust_pickle"] = True
    if model.class_ref:
        options["class"] = model.class_ref
    return options


def compile_runtime_config(
    spec: ServiceSpec, source: Mapping[str, Any] | None = None, *,
    files: Mapping[str, Mapping[str, Any]] | None = None,
) -> RuntimeConfig:
    """The runtime config for this spec.

    ``source`` says where the built artifact puts the model (e.g. ``{"kind": "layer", "path":
    "model/model.onnx"}``); without it the service directory is served in place.
    """
    files = files if files is not None else model_files(spec.model_path)
    try:
        backend = backends.resolve(spec.model.framework)
    except ConfigError as exc:
        raise SpecError(spec.file, [f"[model] framework = {spec.model.framework!r}: {exc}"]) \
            from exc
    if source is None:
        source = {"kind": "local", "path": str(spec.model_path.resolve())}
        code_root: str | None = str(spec.root.resolve())
    else:
        code_root = None
    verify = spec.model.verify_checksums
    if verify is None:
        verify = spec.strategy.kind in REMOTE_STRATEGIES
    return RuntimeConfig(
        function_name=spec.service.name,
        model=ModelConfig(
            name=spec.model.name,
            version=spec.model.version or version_of(files),
            framework=spec.model.framework,
            backend=backend,
            options=backend_options(spec.model),
            files=files,
            verify_checksums=verify,
            max_batch=spec.model.max_batch,
            allow_nonfinite=spec.model.allow_nonfinite,
        ),
        source={**spec.strategy.settings, **source},
        pipeline=PipelineConfig(spec.pipeline.preprocess, spec.pipeline.postprocess,
                                spec.pipeline.setup),
        code_root=code_root,
    )
