"""The service spec, ``modelambda.toml``: parsed, checked, and compiled for the runtime.

Every value is checked, and all problems are reported together: each names the file, the
section and key, the bad value and what is allowed. ``function_config`` turns a valid
spec into the small JSON config that ships inside the function (``runtime/config.py``).

Stdlib only (plus the runtime's own modules and the strategy registry): each strategy reads
its own ``[strategy]`` keys (``strategies/<kind>.py``); this module reads the rest.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from modelambda import limits, strategies
from modelambda.errors import SpecError
from modelambda.runtime import backends, storelayout
from modelambda.runtime.config import ModelConfig, PipelineConfig, RuntimeConfig
from modelambda.runtime.errors import ConfigError
from modelambda.runtime.integrity import model_root, sha256_file
from modelambda.spectable import MISSING as _MISSING
from modelambda.spectable import Problems as _Problems
from modelambda.spectable import Table as _Table
from modelambda.spectable import shown_name as _shown_name

SPEC_FILE = "modelambda.toml"

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = storelayout.NAME
_DIST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# S3 bucket names (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# CloudFormation stack names: a letter, then letters, digits and hyphens; at most 128.
STACK_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
# AWS regions, e.g. us-east-1, eu-central-2, us-gov-west-1, cn-north-1.
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
# Lambda alias names (not all digits); SAM's AutoPublishAlias takes the same.
ALIAS = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$")
# CloudWatch Logs' retention settings (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)
LOG_FORMATS = ("Text", "JSON")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")  # ApplicationLogLevel
URL_AUTH = ("AWS_IAM", "NONE")
TAGS_MAX = 50  # user tags per resource

SUFFIX_FRAMEWORKS = {
    ".onnx": "onnx", ".skops": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn",
    ".joblib": "sklearn", ".tflite": "tflite", ".ubj": "xgboost", ".lgb": "lightgbm",
}
# Suffixes too common to name a framework (a tokenizer is .json, notes are .txt): a file
# with one of them is recognised by its content (``detect_framework``), else the spec names
# the framework.
_XGBOOST_JSON = re.compile(rb'^\s*\{\s*"learner"\s*:')
_XGBOOST_TAIL = re.compile(rb'"version"\s*:\s*\[[0-9,\s]+\]\s*\}\s*$')
_LIGHTGBM_TEXT = re.compile(rb"^tree\r?\nversion=v[0-9]")


def detect_framework(path: Path) -> str | None:
    """The framework of a model file, by suffix, else by content for ``.json`` (XGBoost's
    JSON schema: ``{"learner": ..., "version": [...]}``) and ``.txt`` (LightGBM's text model:
    ``tree`` then ``version=v...``); None when it cannot be told."""
    by_suffix = SUFFIX_FRAMEWORKS.get(path.suffix)
    if by_suffix is not None or path.suffix not in (".json", ".txt"):
        return by_suffix
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
            handle.seek(max(0, path.stat().st_size - 256))
            tail = handle.read()
    except OSError:
        return None
    if path.suffix == ".json" and _XGBOOST_JSON.match(head) and _XGBOOST_TAIL.search(tail):
        return "xgboost"
    if path.suffix == ".txt" and _LIGHTGBM_TEXT.match(head):
        return "lightgbm"
    return None


@dataclass(frozen=True)
class Service:
    name: str
    runtime: str = limits.DEFAULT_RUNTIME
    architecture: str = "x86_64"
    memory_mb: int = 1024
    timeout_s: int = 30
    ephemeral_storage_mb: int = 512
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None  # on the deployed alias
    snapstart: bool = False
    tracing: bool = False  # X-Ray active tracing
    log_format: str = "Text"  # or "JSON" (Lambda's LoggingConfig)
    log_level: str | None = None  # the application log level (JSON only); None: INFO
    # your own layer zips (relative to the service dir), unpacked to /opt after modelambda's
    layers: tuple[str, ...] = ()
    # [service.environment]: the function's own variables (Lambda's Environment)
    environment: Mapping[str, str] = field(default_factory=dict)
    # [service.events]: asynchronous (Event) invocations (Lambda's EventInvokeConfig)
    event_retries: int = limits.EVENT_RETRIES_MAX  # MaximumRetryAttempts, 0..2
    event_max_age_s: int = limits.EVENT_AGE_S_MAX  # MaximumEventAgeInSeconds, 60..21600


@dataclass(frozen=True)
class Model:
    path: str
    framework: str
    name: str
    version: str | None = None
    class_ref: str | None = None
    trust_pickle: bool = False
    verify_checksums: bool | None = None  # None: the strategy's default (Strategy.verify_checksums)
    max_batch: int = 1024
    allow_nonfinite: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    preprocess: str | None = None
    postprocess: str | None = None
    setup: str | None = None


@dataclass(frozen=True)
class StrategySpec:
    """The ``[strategy]`` table: which strategy, and its settings with defaults filled in."""

    kind: str = "bundle"
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> strategies.base.Strategy:
        """The strategy object that answers for this kind (``strategies/<kind>.py``)."""
        return strategies.get(self.kind)


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
class Deploy:
    """The ``[deploy]`` table: how ``modelambda template`` and ``deploy`` put the service on
    AWS. None = the default (see ``ServiceSpec.stack_name``, the deploy's region)."""

    stack_name: str | None = None
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    url_auth: str = "AWS_IAM"  # the function URL's auth; "NONE" makes it public
    alias: str = "live"  # the alias every caller and the function URL use
    log_retention_days: int = 30
    artifact_bucket: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    root: Path
    service: Service
    model: Model
    pipeline: Pipeline
    strategy: StrategySpec
    build: Build = field(default_factory=Build)
    deploy: Deploy = field(default_factory=Deploy)

    @property
    def file(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def model_path(self) -> Path:
        return self.root / self.model.path

    @property
    def stack_name(self) -> str:
        """``[deploy] stack_name``, else ``modelambda-<service name>`` made valid for
        CloudFormation (letters, digits and hyphens)."""
        return self.deploy.stack_name or default_stack_name(self.service.name)

    def for_strategy(self, name: str | None) -> ServiceSpec:
        """This spec served by another strategy: the spec's ``[strategy]`` when it names
        ``name`` (or ``name`` is None), else that strategy's local defaults. Its cross-checks
        run either way (e.g. SnapStart and EFS)."""
        if name is None or name == self.strategy.kind:
            return self
        unit = strategies.get(name)
        chosen = replace(self, strategy=StrategySpec(name, unit.local_settings(self)))
        problems = _Problems()
        unit.check(chosen, problems)
        if problems.items:
            raise SpecError(self.file, [f"--strategy {name}: {item}" for item in problems.items])
        return chosen


def default_stack_name(service_name: str) -> str:
    return f"modelambda-{service_name}".replace("_", "-")[:128]


# --- checking ---------------------------------------------------------------------------


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
    name = t.string("name", root.resolve().name if NAME.match(root.resolve().name) else _MISSING,
                    pattern=NAME, allowed="letters, digits, '-' and '_', at most 64 characters")
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
        provisioned_concurrency=t.integer("provisioned_concurrency", None, 0,
                                          limits.DEFAULT_CONCURRENCY),
        snapstart=t.boolean("snapstart", False),
        tracing=t.boolean("tracing", False),
        log_format=t.string("log_format", "Text", choices=LOG_FORMATS),
        log_level=t.string("log_level", None, choices=LOG_LEVELS),
        layers=_layers(t, root),
        environment=_environment(t),
        **_events(t),
    )
    t.finish()
    return service


def _layers(service: _Table, root: Path) -> tuple[str, ...]:
    """``[service] layers``: zip files in the service dir, at most Lambda's 5 layers."""
    service.seen.add("layers")
    value = service.data.get("layers", [])
    rule = (f"a list of at most {limits.LAYERS_MAX} layer zips, relative to the service dir "
            "(without '..')")
    if not (isinstance(value, list) and len(value) <= limits.LAYERS_MAX
            and all(isinstance(v, str) and v for v in value)):
        service.problem("layers", value, rule)
        return ()
    found = []
    for rel in value:
        path = PurePosixPath(rel)
        if path.is_absolute() or ".." in path.parts:
            service.problem("layers", rel, rule)
        elif not (root / rel).is_file():
            service.problem("layers", rel, f"no such file in {root}")
        elif not zipfile.is_zipfile(root / rel):
            service.problem("layers", rel, "not a zip file (a Lambda layer is a zip)")
        else:
            found.append(rel)
    return tuple(found)


_ENV_NAME = re.compile(limits.ENV_VAR_NAME)


def _environment(service: _Table) -> dict[str, str]:
    """``[service.environment]``: names and string values Lambda accepts, none of the names
    Lambda (or modelambda's runtime) sets itself, 4 KB in all."""
    service.seen.add("environment")
    data = service.data.get("environment", {})
    problems = service.problems
    if not isinstance(data, dict):
        problems.add("service", "environment", data, "must be a table of NAME = \"value\"")
        return {}
    variables: dict[str, str] = {}
    for key, value in data.items():
        if not _ENV_NAME.match(key):
            problems.add("service.environment", key, value, "a variable name: a letter, then "
                         "letters, digits and '_' (at least 2 characters)")
        elif key in limits.RESERVED_ENV_VARS:
            problems.add("service.environment", key, value,
                         "reserved: Lambda sets it in every environment and refuses it in a "
                         "function's configuration")
        elif key.startswith("MODELAMBDA_"):
            problems.add("service.environment", key, value,
                         "reserved: modelambda's runtime reads MODELAMBDA_* as the build and "
                         "the strategy set them")
        elif not isinstance(value, str):
            problems.add("service.environment", key, value,
                         "a string (Lambda's variables are strings: quote it)")
        else:
            variables[key] = value
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > limits.ENV_VARS_BYTES_MAX:
        problems.add("service", "environment", f"{len(variables)} variables, {size} bytes",
                     f"Lambda takes at most {limits.ENV_VARS_BYTES_MAX} bytes of names and "
                     "values in all")
    return variables


def _events(service: _Table) -> dict[str, Any]:
    """``[service.events]``: retries and maximum age of asynchronous (Event) invocations."""
    service.seen.add("events")
    t = _Table("service.events", service.data.get("events", {}), service.problems)
    values = {
        "event_retries": t.integer("maximum_retry_attempts", limits.EVENT_RETRIES_MAX, 0,
                                   limits.EVENT_RETRIES_MAX),
        "event_max_age_s": t.integer("maximum_event_age_s", limits.EVENT_AGE_S_MAX,
                                     limits.EVENT_AGE_S_MIN, limits.EVENT_AGE_S_MAX, " (s)"),
    }
    t.finish()
    return values


def _model(data: Any, root: Path, service_name: str, problems: _Problems) -> Model:
    t = _Table("model", data, problems)
    path = t.string("path", allowed="the model file or directory, relative to the service dir")
    frameworks = tuple(sorted(set(backends.KNOWN_FRAMEWORKS) | set(backends.registered())))
    guessed: Any = SUFFIX_FRAMEWORKS.get(PurePosixPath(path or "").suffix, _MISSING)
    if path is not None:
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            problems.add("model", "path", path, "must be relative to the service dir, without '..'")
            path = None
        elif not (root / path).exists():
            problems.add("model", "path", path, f"no such file or directory in {root}")
        elif guessed is _MISSING and (root / path).is_file():
            guessed = detect_framework(root / path) or _MISSING
    if guessed is _MISSING and "framework" not in t.data and path is not None and \
            PurePosixPath(path).suffix in (".json", ".txt") and (root / path).is_file():
        problems.add("model", "framework", _MISSING,
                     f"required: a {PurePosixPath(path).suffix} file can be many things and "
                     "its content is not a model format modelambda recognises; name it, e.g. "
                     'framework = "xgboost" (.json, .ubj) or "lightgbm" (.txt)')
        guessed = None
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
        name=t.string("name", service_name, pattern=NAME,
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


def _tags(t: _Table) -> dict[str, str]:
    value = t.data.get("tags", {})
    t.seen.add("tags")
    rule = (f"a table of at most {TAGS_MAX} tags: keys of 1 to 128 characters not starting "
            "with 'aws:', string values of at most 256")
    if not (isinstance(value, dict) and len(value) <= TAGS_MAX and all(
            isinstance(k, str) and 1 <= len(k) <= 128 and not k.lower().startswith("aws:")
            and isinstance(v, str) and len(v) <= 256 for k, v in value.items())):
        t.problem("tags", value, rule)
        return {}
    return dict(value)


def _deploy(data: Any, problems: _Problems) -> Deploy:
    t = _Table("deploy", data, problems)
    retention = t.data.get("log_retention_days", 30)
    t.seen.add("log_retention_days")
    if (isinstance(retention, bool) or not isinstance(retention, int)
            or retention not in LOG_RETENTION_DAYS):
        t.problem("log_retention_days", retention,
                  "one of CloudWatch's retention settings: "
                  + ", ".join(map(str, LOG_RETENTION_DAYS)))
        retention = 30
    deploy = Deploy(
        stack_name=t.string("stack_name", None, pattern=STACK_NAME,
                            allowed="a CloudFormation stack name: a letter, then letters, "
                                    "digits and '-', at most 128 characters"),
        region=t.string("region", None, pattern=REGION, allowed="an AWS region, e.g. us-east-1"),
        tags=_tags(t),
        url_auth=t.string("url_auth", "AWS_IAM", choices=URL_AUTH),
        alias=t.string("alias", "live", pattern=ALIAS,
                       allowed="a Lambda alias name: letters, digits, '-' and '_', at most "
                               "128, not only digits"),
        log_retention_days=retention,
        artifact_bucket=t.string("artifact_bucket", None, pattern=BUCKET,
                                 allowed="an S3 bucket name (3-63 lower-case letters, digits, "
                                         "'.', '-')"),
    )
    t.finish()
    return deploy


def _strategy(data: Any, problems: _Problems) -> StrategySpec:
    """``[strategy]``: its ``kind`` here, every other key read by that strategy's module."""
    t = _Table("strategy", data, problems)
    kind = t.string("kind", "bundle", choices=strategies.names())
    settings = strategies.get(kind).read(t) if kind in strategies.names() else {}
    t.finish()
    return StrategySpec(kind=kind, settings=settings)


def _cross_checks(spec: ServiceSpec, problems: _Problems) -> None:
    service = spec.service
    provisioned = service.provisioned_concurrency or 0
    if service.reserved_concurrency is not None and provisioned > service.reserved_concurrency:
        problems.add("service", "provisioned_concurrency", provisioned,
                     f"at most reserved_concurrency ({service.reserved_concurrency}): Lambda "
                     "provisions environments out of the function's reserved concurrency")
    if service.log_level is not None and service.log_format != "JSON":
        problems.add("service", "log_level", service.log_level,
                     'Lambda filters by log level in JSON format only: set log_format = "JSON"')
    if service.snapstart:
        if provisioned:
            problems.add("service", "snapstart", True,
                         "Lambda has no SnapStart with provisioned concurrency "
                         f"(provisioned_concurrency = {provisioned}); choose one")
        if service.runtime not in limits.SNAPSTART_RUNTIMES:
            problems.add("service", "snapstart", True,
                         f"SnapStart needs one of {', '.join(limits.SNAPSTART_RUNTIMES)}")
        if service.ephemeral_storage_mb > limits.SNAPSTART_EPHEMERAL_MB_MAX:
            problems.add("service", "snapstart", True,
                         f"Lambda has no SnapStart with ephemeral_storage_mb > "
                         f"{limits.SNAPSTART_EPHEMERAL_MB_MAX}")
    if spec.strategy.kind in strategies.names():
        spec.strategy.unit.check(spec, problems)


def parse_spec(root: Path, data: Mapping[str, Any]) -> ServiceSpec:
    """Check a parsed TOML document; raise SpecError listing every problem."""
    problems = _Problems()
    sections = {"service", "model", "pipeline", "strategy", "build", "deploy"}
    for key in sorted(set(data) - sections):
        close = difflib.get_close_matches(key, sorted(sections), n=1)
        hint = f" (did you mean [{close[0]}]?)" if close else ""
        known = ", ".join(sorted(sections))
        problems.items.append(f"[{_shown_name(key)}]: unknown section{hint}; known: {known}")
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
        deploy=_deploy(data.get("deploy", {}), problems),
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


def verify_checksums(spec: ServiceSpec) -> bool:
    """Whether the function checks its model files' sha256 at load: ``[model]
    verify_checksums``, else the strategy's default. The one place this is decided."""
    chosen = spec.model.verify_checksums
    return spec.strategy.unit.verify_checksums if chosen is None else chosen


def compile_runtime_config(
    spec: ServiceSpec, source: Mapping[str, Any] | None = None, *,
    files: Mapping[str, Mapping[str, Any]] | None = None,
) -> RuntimeConfig:
    """The runtime config for this spec with the model at ``source``.

    ``source`` says where the model is (e.g. ``{"kind": "layer", "path": "model/model.onnx"}``);
    without it the service directory is served in place (in-process invoke, the endpoint
    host). A built function's config comes from ``function_config``.
    """
    # the version is the model's own (its source files' hashes); ``files`` may describe the
    # files as shipped (ONNX optimised), which the checksums check
    source_files = model_files(spec.model_path)
    files = files if files is not None else source_files
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
    return RuntimeConfig(
        function_name=spec.service.name,
        model=ModelConfig(
            name=spec.model.name,
            version=spec.model.version or version_of(source_files),
            framework=spec.model.framework,
            backend=backend,
            options=backend_options(spec.model),
            files=files,
            verify_checksums=verify_checksums(spec),
            max_batch=spec.model.max_batch,
            allow_nonfinite=spec.model.allow_nonfinite,
        ),
        source={**runtime_settings(spec), **source},
        pipeline=PipelineConfig(spec.pipeline.preprocess, spec.pipeline.postprocess,
                                spec.pipeline.setup),
        code_root=code_root,
    )


def runtime_settings(spec: ServiceSpec) -> dict[str, Any]:
    """The ``[strategy]`` settings the function's config carries: all but the ones only
    deploy reads (``Strategy.deploy_keys``: a VPC's subnets, a SageMaker instance type)."""
    skip = spec.strategy.unit.deploy_keys
    return {k: v for k, v in spec.strategy.settings.items() if k not in skip}


def function_config(spec: ServiceSpec, *,
                    files: Mapping[str, Mapping[str, Any]] | None = None) -> RuntimeConfig:
    """The config a built function runs with, for the spec's strategy (``for_strategy``
    picks another): the strategy says where the model is and may change the backend."""
    unit = spec.strategy.unit
    config = compile_runtime_config(spec, unit.source(spec), files=files)
    unit.configure(config, spec)
    return config
