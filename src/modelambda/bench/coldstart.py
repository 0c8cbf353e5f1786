"""One cold start, broken down from what the environment itself printed. Pure functions.

The sources, all from the environment's own output:

- the REPORT line of the first invocation: ``Init Duration`` (process start until the runtime
  first asks for an event) and ``Duration`` (the first prediction);
- the runtime's init record (``runtime/app.py``, message ``init``): ``init_ms`` (the App's
  init: backend import, model fetch wait, checksum, model load, pipeline setup) and
  ``fetch_ms`` (a remote model's download, which overlaps the imports);
- Python's import profile (``PYTHONPROFILEIMPORTTIME=1``, one line per import on stderr):
  awslambdaric imports the handler with ``importlib``, so the handler's own imports show as
  top-level lines, in the order they finished.

The parts, which add up to Init Duration + Duration:

- ``runtime_start``: sandbox, interpreter and runtime client start, up to the handler's
  first import (Init Duration - imports before the App - init_ms);
- ``imports``: every import from modelambda's first module on (numpy, the backend library,
  the pipeline's libraries);
- ``fetch``: the part of a remote model's download that the imports did not hide
  (fetch_ms - the imports it overlaps, at least 0);
- ``load``: the rest of the App's init (checksum, model load, pipeline setup);
- ``first_prediction``: the first invocation's Duration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)\s*$")
_REPORT_FIELD = re.compile(r"([A-Za-z ]+): ([\d.]+) (ms|MB)")
APP_MODULE = "modelambda.runtime.app"
PARTS = ("runtime_start", "imports", "fetch", "load", "first_prediction")

# The libraries each backend imports (top-level package names), to tell them from the rest.
BACKEND_LIBRARIES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime",),
    "sklearn": ("sklearn", "skops", "scipy", "joblib"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "tflite": ("ai_edge_litert", "tflite_runtime"),
    "python": (),
}


def parse_report(line: str) -> dict[str, float]:
    """``REPORT RequestId: ...\tDuration: 5.78 ms\t...`` -> {"Duration": 5.78, ...}."""
    return {name.strip(): float(value) for name, value, _ in _REPORT_FIELD.findall(line)}


@dataclass
class Imports:
    runtime_client_ms: float = 0.0  # before modelambda's first module (part of the start)
    before_app_ms: float = 0.0  # modelambda's modules up to and including runtime.app
    in_app_ms: float = 0.0  # during the App's init (the backend, the pipeline's libraries)
    backend_ms: float = 0.0  # the backend's libraries, wherever they were imported
    top: list[tuple[str, float]] = field(default_factory=list)  # biggest top-level imports

    @property
    def total_ms(self) -> float:
        return self.before_app_ms + self.in_app_ms


def parse_imports(lines: Iterable[str], framework: str) -> Imports:
    """Sum the top-level lines of Python's import profile."""
    top: list[tuple[str, float]] = []
    for line in lines:
        match = _IMPORT.match(line)
        if match and len(match.group(3)) == 1:  # depth 0
            top.append((match.group(4), int(match.group(2)) / 1000.0))
    out = Imports()
    first = next((i for i, (name, _) in enumerate(top) if name.startswith("modelambda")), None)
    if first is None:
        return out
    app = next((i for i, (name, _) in enumerate(top) if name == APP_MODULE), len(top) - 1)
    out.runtime_client_ms = sum(ms for _, ms in top[:first])
    out.before_app_ms = sum(ms for _, ms in top[first:app + 1])
    out.in_app_ms = sum(ms for _, ms in top[app + 1:])
    libraries = BACKEND_LIBRARIES.get(framework, ())
    out.backend_ms = sum(ms for name, ms in top[first:] if name.split(".")[0] in libraries)
    out.top = sorted(((n, round(ms, 1)) for n, ms in top[first:]), key=lambda t: -t[1])[:8]
    return out


def init_record(lines: Iterable[str]) -> dict[str, Any]:
    """The runtime's init record (the JSON line with message "init"), or {}."""
    for line in lines:
        if line.startswith("{") and '"message":"init"' in line:
            try:
                record: dict[str, Any] = json.loads(line)
                return record
            except ValueError:
                continue
    return {}


@dataclass
class ColdStart:
    init_ms: float  # REPORT Init Duration
    duration_ms: float  # REPORT Duration of the first invocation
    billed_ms: int
    max_memory_mb: int
    client_ms: float  # request to answer, as the caller saw it
    record: dict[str, Any]
    imports: Imports

    @property
    def cold_ms(self) -> float:
        """What Lambda reports for a cold start: Init Duration + the first Duration."""
        return self.init_ms + self.duration_ms

    def breakdown(self) -> dict[str, float]:
        record_init = float(self.record.get("init_ms") or 0.0)
        fetch_total = float(self.record.get("fetch_ms") or 0.0)
        imports = self.imports
        overlap = imports.before_app_ms + imports.backend_ms
        fetch = max(0.0, fetch_total - overlap)
        load = max(0.0, record_init - imports.in_app_ms - fetch)
        start = max(0.0, self.init_ms - imports.before_app_ms - record_init)
        return {"runtime_start": round(start, 2), "imports": round(imports.total_ms, 2),
                "fetch": round(fetch, 2), "load": round(load, 2),
                "first_prediction": round(self.duration_ms, 2)}

    def as_dict(self) -> dict[str, Any]:
        return {"cold_ms": round(self.cold_ms, 2), "init_ms": round(self.init_ms, 2),
                "duration_ms": round(self.duration_ms, 2), "billed_ms": self.billed_ms,
                "max_memory_mb": self.max_memory_mb, "client_ms": round(self.client_ms, 2),
                "fetch_total_ms": self.record.get("fetch_ms"),
                "record_init_ms": self.record.get("init_ms"),
                "breakdown": self.breakdown(), "imports": asdict(self.imports)}


def cold_start(lines: Sequence[str], report: str, client_ms: float, framework: str
               ) -> ColdStart:
    """A cold start from the environment's output before its first START line (``lines``,
    without the ``[env]`` prefix) and the first invocation's REPORT line."""
    fields = parse_report(report)
    return ColdStart(init_ms=fields.get("Init Duration", 0.0),
                     duration_ms=fields.get("Duration", 0.0),
                     billed_ms=int(fields.get("Billed Duration", 0)),
                     max_memory_mb=int(fields.get("Max Memory Used", 0)),
                     client_ms=client_ms, record=init_record(lines),
                     imports=parse_imports(lines, framework))
