"""Spec fuzzing: random and mutated ``modelambda.toml`` files.

A full iris spec (every section) is mutated: values replaced by any TOML value, keys dropped or
invented, sections replaced by scalars, the text cut short or sprinkled with stray bytes. Every
outcome is a valid spec or a ``SpecError`` whose problems are one line each; the same holds when
the spec is served by every other strategy and compiled for the runtime. Through the CLI, a
refused spec is exit code 2 and an error message, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelambda import strategies
from modelambda.cli.main import main
from modelambda.errors import ModelambdaError, SpecError
from modelambda.spec import compile_runtime_config, load_spec
from tests.hostile.conftest import examples
from tests.hostile.fuzz import IRIS

BASE: dict[str, Any] = {
    "service": {"name": "iris", "runtime": "python3.12", "architecture": "x86_64",
                "memory_mb": 512, "timeout_s": 10, "ephemeral_storage_mb": 512,
                "reserved_concurrency": 4, "snapstart": False, "tracing": False,
                "log_format": "JSON", "log_level": "INFO", "layers": [],
                "environment": {"GREETING": "hi"},
                "events": {"maximum_retry_attempts": 1, "maximum_event_age_s": 120}},
    "model": {"path": "model.onnx", "framework": "onnx", "name": "iris", "version": "1",
              "verify_checksums": True, "max_batch": 64, "allow_nonfinite": False,
              "options": {}},
    "pipeline": {},
    "strategy": {"kind": "bundle"},
    "build": {"exclude_files": ["model.skops", "train.py"], "exclude": [],
              "optimize_onnx": True},
    "deploy": {"stack_name": "iris-stack", "region": "us-east-1", "url_auth": "AWS_IAM",
               "alias": "live", "log_retention_days": 30, "tags": {"team": "ml"}},
}
STRATEGY_KEYS = {"bucket": "models", "prefix": "p", "alias": "live", "refresh_s": 30,
                 "create_bucket": True, "mount_path": "/mnt/models", "vpc_id": "vpc-1",
                 "protocol": "v2", "url": "http://127.0.0.1:1", "name": "ep", "timeout_s": 5,
                 "repository": "repo", "model_image": "img", "instance_type": "ml.m5.large",
                 "serverless_memory_mb": 2048, "serverless_max_concurrency": 2}


def toml_value(value: Any) -> str:
    """A TOML literal for ``value`` (basic strings share JSON's escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(document: dict[str, Any]) -> str:
    top = [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
           for k, v in document.items() if not isinstance(v, dict)]
    tables = [f"[{json.dumps(k, ensure_ascii=False)}]\n" + "".join(
        f"{json.dumps(key, ensure_ascii=False)} = {toml_value(value)}\n"
        for key, value in v.items()) for k, v in document.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(tables)


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
KEY = st.sampled_from(sorted({k for t in BASE.values() for k in t} | set(STRATEGY_KEYS))) | TEXT
SCALAR = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats() | TEXT
          | st.sampled_from(["bundle", "layer", "image", "s3", "endpoint", "efs", "sklearn",
                             "python", "model.skops", "../etc/passwd", "/etc/passwd", "",
                             "python3.99", "arm64", "NONE", "pipeline:preprocess", "x:y",
                             "model.onnx/..", "train.py", "a" * 200])
          | st.datetimes().map(lambda d: d.replace(microsecond=0)) | st.dates())
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)


@st.composite
def mutated_spec(draw: st.DrawFn) -> str:
    document = json.loads(json.dumps(BASE))
    kind = draw(st.sampled_from(strategies.names()))
    document["strategy"] = {"kind": kind, **draw(st.dictionaries(
        st.sampled_from(sorted(STRATEGY_KEYS)), st.just(None), max_size=4).map(
        lambda keys: {k: STRATEGY_KEYS[k] for k in keys}))}
    for _ in range(draw(st.integers(1, 5))):
        section = draw(st.sampled_from(sorted(document)) | TEXT)
        action = draw(st.sampled_from(["set", "set", "set", "drop", "scalar-section",
                                       "drop-section"]))
        if action == "drop-section":
            document.pop(section, None)
        elif action == "scalar-section":
            document[section] = draw(SCALAR)
        else:
            table = document.setdefault(section, {})
            if not isinstance(table, dict):
                continue
            key = draw(KEY)
            if action == "drop":
                table.pop(key, None)
            else:
                table[key] = draw(VALUE)
    text = to_toml(document)
    damage = draw(st.sampled_from(["none", "none", "cut", "stray"]))
    if damage == "cut":
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "stray":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["=", "[", "]]", "\"", "\x00", "\\u", "\n[x"
                                                 "]\n", "ä", "'''"])) + text[at:]
    return text


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("spec-fuzz") / "iris"
    shutil.copytree(IRIS, target, ignore=shutil.ignore_patterns(".modelambda"))
    return target


def check_spec(service: Path, text: str | bytes) -> SpecError | None:
    """Load ``text`` as the spec, serve it by every strategy, compile it: problems are a
    SpecError (each one line) or another ModelambdaError, nothing else. Returns the error."""
    spec_file = service / "modelambda.toml"
    if isinstance(text, bytes):
        spec_file.write_bytes(text)
    else:
        spec_file.write_text(text, encoding="utf-8")
    try:
        spec = load_spec(service)
        for name in strategies.names():
            compile_runtime_config(spec.for_strategy(name))
    except SpecError as exc:
        assert exc.problems and all(p and "\n" not in p for p in exc.problems), exc.problems
        return exc
    except ModelambdaError as exc:
        assert "\n" not in str(exc)
    return None


@settings(max_examples=examples(0.6))
@given(text=mutated_spec())
def test_a_mutated_spec_is_valid_or_refused_line_by_line(service: Path, text: str) -> None:
    check_spec(service, text)


@given(data=st.binary(max_size=200))
def test_random_bytes_are_refused_as_a_spec(service: Path, data: bytes) -> None:
    assert check_spec(service, data) is not None


@contextlib.contextmanager
def stderr_text() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(io.StringIO()):
        yield buffer


@settings(max_examples=examples(0.3))
@given(text=mutated_spec())
def test_a_refused_spec_is_an_error_message_through_the_cli(service: Path, text: str) -> None:
    if check_spec(service, text) is None:
        return  # a valid spec would be built: not what this checks
    with stderr_text() as err:
        code = main(["build", str(service)])
    lines = err.getvalue().splitlines()
    assert code == 2 and lines and lines[0].startswith("modelambda build: error: "), lines
    assert all(line.startswith("  - ") for line in lines[1:]), lines
    assert "Traceback" not in err.getvalue()
