"""The steps of ``modelambda optimize``: a new model version beside the original.

Where the new version goes (never over anything that exists):

- a model file: beside it, its stem plus one tag per step and ``.onnx``: ``model.skops``
  ``--to onnx`` -> ``model.sklearn.onnx``; ``model.onnx --quantize int8`` ->
  ``model.int8.onnx``; both steps on ``model.json`` (XGBoost) -> ``model.xgboost.int8.onnx``;
- a model directory (the model plus e.g. a tokenizer): a sibling directory with the same tags,
  ``model/`` -> ``model.int8/``, holding the new model file and the other files as they are;
- ``--output`` names another path inside the service directory.

The new version is made and checked in ``DIR/.modelambda/optimize/`` first and moved into
place only when the check passes, so a refused version leaves nothing behind. The spec is
not edited: ``[model] path`` stays on the original until you switch it. A report of each run
(sizes, steps, the check) is kept in ``DIR/.modelambda/optimize/<new name>.json``, also for a
refused version; ``sizes.what_if`` reads it for ``advise``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelambda.optimize import OptimizeError
from modelambda.optimize.check import (
    CheckResult,
    Thresholds,
    compare,
    example_instances,
    feature_ranges,
    generated_rows,
    raise_if_failed,
)
from modelambda.spec import ServiceSpec, detect_framework

REPORT_FORMAT = 1


@dataclass
class Request:
    to: str | None = None  # "onnx"
    quantize: str | None = None  # "int8"
    check: int = 100  # inputs for the check; 0 skips it
    thresholds: Thresholds = field(default_factory=Thresholds)
    output: str | None = None  # the new version's path, relative to the service dir
    publish: bool = False  # publish the new version to ``store``
    store: Any = None  # a modelstore.Store (opened once the request is valid)
    version: str | None = None  # its version name in the store
    alias: str | None = None  # then point this alias at it


@dataclass
class Outcome:
    original: Path
    new: Path
    framework: str  # the original's
    original_bytes: int
    new_bytes: int
    steps: list[str]
    check: CheckResult | None
    report: Path
    published: str | None = None
    notes: list[str] = field(default_factory=list)


def tags(spec: ServiceSpec, request: Request) -> list[str]:
    out = []
    if request.to == "onnx":
        out.append(spec.model.framework)
    if request.quantize == "int8":
        out.append("int8")
    return out


def new_path(spec: ServiceSpec, request: Request) -> Path:
    """Where the new version goes (see the module's docstring); refused when it exists."""
    if request.output is not None:
        rel = PurePosixPath(request.output)
        if rel.is_absolute() or ".." in rel.parts or any(p.startswith(".") for p in rel.parts):
            raise OptimizeError(f"--output {request.output}: a path inside the service "
                                "directory, relative to it, without '..' or hidden parts")
        path = spec.root / request.output
        if spec.model_path.is_file() and path.suffix != ".onnx":
            raise OptimizeError(f"--output {request.output}: the new model is ONNX: name it "
                                "*.onnx")
    else:
        original = spec.model_path
        label = ".".join(tags(spec, request))
        if original.is_dir():
            path = original.with_name(f"{original.name}.{label}")
        else:
            stem = original.stem
            if spec.model.framework == "onnx" and stem.endswith(".int8"):
                stem = stem.removesuffix(".int8")
            path = original.with_name(f"{stem}.{label}.onnx")
    if path.exists() or path.is_symlink():
        raise OptimizeError(f"{path.relative_to(spec.root)} exists: optimize never replaces "
                            "a file; remove it, or name another with --output")
    return path


def _model_file(spec: ServiceSpec) -> Path:
    """The model file itself (in a model directory: the one file of the spec's framework)."""
    path = spec.model_path
    if path.is_file():
        return path
    found = sorted(p for p in path.rglob("*") if p.is_file()
                   and detect_framework(p) == spec.model.framework)
    if len(found) != 1:
        raise OptimizeError(f"{spec.model.path}/ must hold exactly one {spec.model.framework} "
                            f"model file to optimise, found {len(found)}")
    return found[0]


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def validate(spec: ServiceSpec, request: Request) -> None:
    """Everything that can be refused before any work."""
    from modelambda.optimize.convert import check_convertible
    from modelambda.optimize.quantize import ensure_onnx

    if request.to is None and request.quantize is None:
        raise OptimizeError("nothing to do: pass --to onnx, --quantize int8, or both")
    framework = spec.model.framework
    if request.to == "onnx":
        check_convertible(spec)
    elif request.quantize == "int8":
        ensure_onnx(_model_file(spec), framework)
    if request.alias is not None and not request.publish:
        raise OptimizeError("--alias needs a model store to publish to: --publish (the "
                            "spec's) or --store URL")
    if request.alias is not None and request.to == "onnx":
        raise OptimizeError(f"--alias: the service runs the {framework} backend, which cannot "
                            "load an ONNX version; publish without --alias, switch [model] to "
                            "the new file with framework = \"onnx\", rebuild, then promote")
    if request.check < 0:
        raise OptimizeError(f"--check {request.check}: a number of inputs, 0 to skip")


def optimize(spec: ServiceSpec, request: Request,
             say: Callable[[str], None] = lambda _line: None) -> Outcome:
    validate(spec, request)
    final = new_path(spec, request)
    base = spec.root / ".modelambda" / "optimize"
    work = base / f"work-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        staged, steps, notes = _make(spec, request, work, final, say)
        check = _check(spec, request, staged, final, say) if request.check else None
        report = _report(spec, request, final, staged, steps, check, written=check is None
                         or check.passed)
        if check is not None:
            raise_if_failed(check, final.relative_to(spec.root).as_posix())
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # made meanwhile: still never replaced
            raise OptimizeError(f"{final.relative_to(spec.root)} appeared meanwhile; "
                                "nothing was replaced")
        os.rename(staged, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outcome = Outcome(spec.model_path, final, spec.model.framework, size_of(spec.model_path),
                      size_of(final), steps, check, report, notes=notes)
    if request.publish:
        if request.store is None:
            raise OptimizeError("no model store to publish to")
        outcome.published = _publish(spec, request, final)
    return outcome


def _make(spec: ServiceSpec, request: Request, work: Path, final: Path,
          say: Callable[[str], None]) -> tuple[Path, list[str], list[str]]:
    """The new version in ``work`` (a file, or a directory like the original)."""
    from modelambda.optimize.convert import to_onnx
    from modelambda.optimize.quantize import quantize_int8

    source = _model_file(spec)
    staged = work / final.name
    if spec.model_path.is_dir():
        _copy_others(spec.model_path, source, staged)
        model = staged / (source.relative_to(spec.model_path).with_suffix(".onnx")
                          if spec.model.framework != "onnx" else source.relative_to(
                              spec.model_path))
    else:
        model = staged
    steps: list[str] = []
    notes: list[str] = []
    current = source
    if request.to == "onnx":
        converted = work / "converted.onnx" if request.quantize else model
        say(f"converting {source.name} ({spec.model.framework}) to ONNX")
        info = to_onnx(spec, converted)
        steps.append(f"converted to ONNX with {info.converter} ({info.model_type})")
        notes.extend(info.notes)
        current = converted
    if request.quantize == "int8":
        say(f"quantising {current.name} to int8 (dynamic, onnxruntime)")
        done = quantize_int8(current, model)
        steps.append("quantised to int8 (dynamic): " + ", ".join(done["quantized_operators"]))
        if current != source:
            current.unlink()
    return staged, steps, notes


def _copy_others(directory: Path, model: Path, target: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path == model:
            continue
        out = target / path.relative_to(directory)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, out)
        except OSError:
            shutil.copy2(path, out)


def variant(spec: ServiceSpec, path: Path) -> ServiceSpec:
    """The spec with its model at ``path`` (inside the service dir), served as ONNX."""
    options = spec.model.options if spec.model.framework == "onnx" else {}
    return dataclasses.replace(spec, model=dataclasses.replace(
        spec.model, path=path.relative_to(spec.root).as_posix(), framework="onnx",
        options=options, trust_pickle=False, version=None))


def _app(spec: ServiceSpec) -> Any:
    from modelambda.runtime.app import App
    from modelambda.runtime.paths import Paths
    from modelambda.spec import compile_runtime_config

    return App(compile_runtime_config(spec), Paths.from_environment(), log=lambda _line: None)


def _check(spec: ServiceSpec, request: Request, staged: Path, final: Path,
           say: Callable[[str], None]) -> CheckResult:
    from modelambda.runtime.errors import ModelambdaError

    try:
        original = _app(spec)
        new = _app(variant(spec, staged))
    except ModelambdaError as exc:
        raise OptimizeError(f"the check cannot load a model: {exc}") from exc
    examples = example_instances(spec)[:request.check]
    instances = list(examples)
    missing = request.check - len(instances)
    note = None
    if missing > 0 and original.pipeline.preprocess is None:
        rows = generated_rows(original.specs, missing, feature_ranges(original.backend),
                              examples)
        if rows is None:
            note = "inputs cannot be generated for this model's input schema"
        else:
            instances.extend(rows)
    elif missing > 0:
        note = "inputs cannot be generated for a model behind a preprocess hook"
    if not instances:
        raise OptimizeError("nothing to check with: the service has no request.json and "
                            f"{note or 'no inputs'}; add a request.json with "
                            "{\"instances\": [...]} or pass --check 0")
    say(f"checking {final.name} against {spec.model.path} on {len(instances)} inputs")
    result = compare(original, new, instances, len(examples), request.thresholds)
    if note is not None and missing > 0:
        result.notes.append(f"{note}: checked {len(instances)} of the {request.check} "
                            "asked for (all of request.json)")
    return result


def report_dir(spec: ServiceSpec) -> Path:
    return spec.root / ".modelambda" / "optimize"


def _report(spec: ServiceSpec, request: Request, final: Path, staged: Path, steps: list[str],
            check: CheckResult | None, *, written: bool) -> Path:
    record = {
        "format": REPORT_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "original": {"path": spec.model.path, "framework": spec.model.framework,
                     "bytes": size_of(spec.model_path)},
        "new": {"path": final.relative_to(spec.root).as_posix(), "framework": "onnx",
                "bytes": size_of(staged)},
        "to": request.to, "quantize": request.quantize, "steps": steps,
        "check": None if check is None else check.as_dict(), "written": written,
    }
    path = report_dir(spec) / f"{final.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def reports(spec: ServiceSpec) -> list[dict[str, Any]]:
    """The reports of earlier runs on this service's model, newest first."""
    found = []
    for path in sorted(report_dir(spec).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("format") == REPORT_FORMAT and \
                record.get("original", {}).get("path") == spec.model.path:
            found.append(record)
    return sorted(found, key=lambda r: str(r.get("created", "")), reverse=True)


def _publish(spec: ServiceSpec, request: Request, final: Path) -> str:
    from modelambda import modelstore

    published: str = modelstore.publish_service(variant(spec, final), request.store,
                                                version=request.version, alias=request.alias)
    return published
