"""``modelambda init``: write a commented ``modelambda.toml`` and a ``request.json`` for a model.

The framework is guessed from the file; input names, dtypes and shapes are read from the model
where the format allows (ONNX: from the graph; skops: the estimator's feature count, read from
the file's schema without loading it, so also for types skops does not trust), and the example
request is built from them. When the inputs cannot be read, no request.json is written (a
placeholder would be a request the model refuses); the notes say what to write instead.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelambda import limits
from modelambda.errors import UsageError
from modelambda.runtime.backends.base import TensorSpec
from modelambda.spec import SPEC_FILE, SUFFIX_FRAMEWORKS


@dataclass
class Scaffolded:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request: Path | None = None  # the example request, when there is one
    untrusted: list[str] = field(default_factory=list)  # skops types to trust before loading


def _function_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-")
    return (name or "model")[: limits.FUNCTION_NAME_MAX]


def _untrusted_skops_types(model: Path) -> list[str]:
    try:
        import skops.io as sio
    except ImportError:
        return []
    try:
        return list(sio.get_untrusted_types(file=model))
    except Exception:  # not a skops file: the backend says so when it loads it
        return []


def _find_feature_count(node: Any) -> int | None:
    """The first ``n_features_in_`` in a skops schema tree (an estimator's, or a pipeline's
    first step's), depth first."""
    if isinstance(node, dict):
        content = node.get("content")
        if isinstance(content, dict) and isinstance(content.get("content"), dict):
            found = content["content"].get("n_features_in_")
            if isinstance(found, dict):  # a JsonNode: {"content": "4", "is_json": true}
                try:
                    value = json.loads(found["content"]) if found.get("is_json") else \
                        found["content"]
                except (KeyError, TypeError, ValueError):
                    value = None
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
        for value in node.values():
            count = _find_feature_count(value)
            if count is not None:
                return count
    elif isinstance(node, list):
        for value in node:
            count = _find_feature_count(value)
            if count is not None:
                return count
    return None


# a skops schema.json is a few KB; a bigger one is not read (it could be a zip bomb)
SCHEMA_MAX_BYTES = 8 * 1024 * 1024


def skops_feature_count(model: Path) -> int | None:
    """The estimator's feature count from a skops file's schema.json: no object is created,
    so nothing in the file runs and no type needs to be trusted."""
    try:
        with zipfile.ZipFile(model) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > SCHEMA_MAX_BYTES:  # read whole into memory: not a bomb's
                return None
            schema = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, RuntimeError, NotImplementedError, EOFError,
            zlib.error, zipfile.BadZipFile):  # RuntimeError: an encrypted entry
        return None
    return _find_feature_count(schema)


def _read_inputs(model: Path, framework: str, notes: list[str]) -> list[TensorSpec] | None:
    """Ask the model for its inputs; None (with a note) when the format or install can't say."""
    if framework == "sklearn" and model.suffix == ".skops" and model.is_file():
        count = skops_feature_count(model)
        if count is not None:  # what SklearnBackend.inputs() says once loaded
            return [TensorSpec("input", "float64", (None, count))]
    try:
        if framework == "onnx":
            from modelambda.runtime.backends.onnx import OnnxBackend

            onnx_backend = OnnxBackend()
            onnx_backend.load(str(model))
            return list(onnx_backend.inputs())
        if framework == "sklearn" and model.suffix == ".skops" and not _untrusted_skops_types(
                model):
            from modelambda.runtime.backends.sklearn import SklearnBackend

            sk_backend = SklearnBackend()
            sk_backend.load(str(model))
            return list(sk_backend.inputs())
    except ImportError as exc:
        notes.append(f"could not read the model's inputs ({exc}); install modelambda[{framework}]")
    except Exception as exc:  # a model we cannot load is reported, the spec is still written
        notes.append(f"could not read the model's inputs: {exc}")
    return None


def _example_value(spec: TensorSpec) -> Any:
    if spec.dtype == "str":
        return "hello world"
    dims = [d if d is not None else 1 for d in (spec.shape or (None, 1))[1:]]
    value: Any = 0 if spec.dtype and spec.dtype[0] in "iu" else 0.0
    for size in reversed(dims):
        value = [value] * size
    return value


def example_request(inputs: list[TensorSpec]) -> dict[str, Any]:
    if len(inputs) == 1:
        return {"instances": [_example_value(inputs[0])]}
    return {"instances": [{s.name: _example_value(s) for s in inputs}]}


def render_spec(name: str, model_rel: str, framework: str,
                inputs: list[TensorSpec] | None, untrusted: list[str] | None = None) -> str:
    lines = [
        f"# modelambda service spec for {model_rel}, written by `modelambda init`.",
        "# Every key is checked: unknown keys and out-of-range values are errors.",
        "",
        "[service]",
        f'name = "{name}"              # the function name: letters, digits, - and _, max 64',
        f'runtime = "{limits.DEFAULT_RUNTIME}"       # {", ".join(limits.PYTHON_RUNTIMES)}',
        'architecture = "x86_64"      # or "arm64"',
        "memory_mb = 1024             # 128..10240; 1769 MB = one full vCPU",
        "timeout_s = 30               # 1..900",
        "ephemeral_storage_mb = 512   # /tmp size, 512..10240",
        "# reserved_concurrency = 10  # at most this many environments at once, then 429",
        "# snapstart = false          # pre-initialised environments (not with EFS)",
        "",
        "[model]",
        f'path = "{model_rel}"',
        f'framework = "{framework}"          # onnx | sklearn | python (xgboost, lightgbm, '
        "tflite: named, no backend yet)",
        '# name = "..."               # default: the service name',
        "# version = \"1\"              # default: a hash of the model files",
        "# max_batch = 1024           # instances per request",
        "# allow_nonfinite = false    # accept NaN/inf inputs (for models that handle them)",
    ]
    if framework == "sklearn" and Path(model_rel).suffix in (".pkl", ".pickle", ".joblib"):
        lines += [
            "# This is a pickle: loading one runs any code inside it. Prefer skops or ONNX;",
            "# set this only for a file you made yourself:",
            "# trust_pickle = true",
        ]
    if framework == "python":
        lines.append('class = "model:Model"        # your class with load(path) and predict(batch)')
    if inputs:
        lines.append("# The model's inputs, as read from it:")
        lines += [f"#   {s.describe()}" for s in inputs]
        if len(inputs) > 1:
            lines.append("# Each instance is an object keyed by these input names.")
    if untrusted:
        lines += [
            "",
            "# skops does not trust these types by default. Review them; if you trust the file,",
            "# uncomment the next two lines to allow them when loading:",
            "# [model.options]",
            f"# trusted_types = {json.dumps(untrusted)}",
        ]
    lines += [
        "",
        "# [pipeline]                 # optional hooks in your own modules",
        '# setup = "pipeline:setup"               # setup(model_path), once per environment',
        '# preprocess = "pipeline:preprocess"     # instances -> model inputs',
        '# postprocess = "pipeline:postprocess"   # model outputs -> predictions',
        "",
        "[strategy]",
        'kind = "bundle"              # bundle | layer | image | s3 | endpoint | efs',
        "",
    ]
    return "\n".join(lines)


def scaffold(directory: Path, model: Path, *, name: str | None = None,
             framework: str | None = None, force: bool = False) -> Scaffolded:
    result = Scaffolded()
    if not model.exists():
        raise UsageError(f"--model {model}: no such file or directory")
    spec_file = directory / SPEC_FILE
    if spec_file.exists() and not force:
        raise UsageError(f"{spec_file} exists; pass --force to overwrite it")
    framework = framework or SUFFIX_FRAMEWORKS.get(model.suffix)
    if framework is None:
        raise UsageError(
            f"cannot tell the framework of {model.name} from its suffix; pass --framework "
            "(onnx, sklearn or python)"
        )
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise UsageError(f"--name {name!r}: letters, digits, '-' and '_', at most 64 characters")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        model_rel = model.resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:  # outside the service dir: copy it in
        target = directory / model.name
        if model.is_dir():
            shutil.copytree(model, target, dirs_exist_ok=True)
        else:
            shutil.copy2(model, target)
        model_rel = model.name
        result.files.append(target)
    untrusted = _untrusted_skops_types(directory / model_rel) if framework == "sklearn" else []
    result.untrusted = untrusted
    if untrusted:
        result.notes.append(
            f"{model_rel} holds types skops does not trust by default: {', '.join(untrusted)}. "
            f"The model will not load until you trust them: if you trust the file, uncomment "
            f"[model.options] and trusted_types in {spec_file}")
    inputs = _read_inputs(directory / model_rel, framework, result.notes)
    spec_file.write_text(render_spec(name or _function_name(directory), model_rel, framework,
                                     inputs, untrusted), encoding="utf-8")
    result.files.append(spec_file)
    request = directory / "request.json"
    if inputs and (not request.exists() or force):
        request.write_text(json.dumps(example_request(inputs)) + "\n", encoding="utf-8")
        result.files.append(request)
    elif not inputs and not request.exists():
        result.notes.append(
            f"the model's inputs could not be read, so no request.json was written: write "
            f"{request} as {{\"instances\": [ROW, ...]}}, one ROW per input the model takes")
    result.request = request if request.exists() else None
    if framework == "sklearn" and model.suffix in (".pkl", ".pickle", ".joblib"):
        result.notes.append("the model is a pickle: convert it to skops or ONNX, or set "
                            "trust_pickle = true in [model] if you made it yourself")
    return result
