"""What never runs in a function, dropped from its dependencies at build time.

Dropped: test suites, C headers and sources, static libraries, type stubs, docs, build-time
tools (PyInstaller hooks, onnxruntime's model converters and quantisers), console
scripts, bytecode for other interpreters, and whole distributions the runtime already has
(boto3/botocore) or the spec excludes. Kept, always: licence files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Distributions Lambda's Python runtime provides; left out unless the service pins them.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")

_DROP_DIRS = {"tests", "test", "__tests__", "docs", "doc", "include"}
_DROP_SUFFIXES = {".pyi", ".h", ".hpp", ".hh", ".c", ".cc", ".cpp", ".cxx", ".pxd", ".pyx",
                  ".pxi", ".a", ".lib", ".md", ".rst"}
# Build and development tools inside runtime packages (paths relative to site-packages).
# Only what nothing imports at run time: numpy/f2py stays, because ``from numpy import *``
# (scipy's array_api_compat does it) imports every name in numpy.__all__, f2py included.
_DROP_PREFIXES = ("bin/", "numpy/_pyinstaller/", "numpy/distutils/",
                  "onnxruntime/transformers/", "onnxruntime/quantization/",
                  "onnxruntime/tools/", "onnxruntime/datasets/")
_LICENCE = re.compile(r"^(licen[cs]e|copying|notice|authors|thirdpartynotices)", re.I)


@dataclass
class Slimmed:
    kept: list[tuple[str, Path]] = field(default_factory=list)
    dropped_files: int = 0
    dropped_bytes: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # distribution -> bytes left out

    def drop(self, path: Path) -> None:
        self.dropped_files += 1
        self.dropped_bytes += path.stat().st_size


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_files(site: Path) -> dict[str, set[str]]:
    """Distribution name -> the files its RECORD lists (relative to ``site``)."""
    out: dict[str, set[str]] = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = _normalise(record.parent.name.split("-")[0])
        files = {line.split(",")[0] for line in record.read_text().splitlines() if line}
        files.add(record.parent.relative_to(site).as_posix() + "/")
        out[name] = files
    return out


def _droppable(rel: str, python_tag: str) -> bool:
    path = PurePosixPath(rel)
    if _LICENCE.match(path.name) or ".dist-info/" in rel:
        return False
    if rel.startswith(_DROP_PREFIXES):
        return True
    if any(part in _DROP_DIRS for part in path.parts[:-1]):
        return True
    if path.suffix in _DROP_SUFFIXES:
        return True
    # bytecode compiled for another interpreter
    return path.suffix == ".pyc" and f".{python_tag}." not in path.name


def slim(site: Path, python_version: str, exclude: Iterable[str] = ()) -> Slimmed:
    """Decide, for every file under ``site`` (a site-packages tree), to keep it or drop it."""
    result = Slimmed()
    tag = "cpython-" + python_version.replace(".", "")
    excluded = {_normalise(name) for name in exclude}
    dist_files = distribution_files(site)
    excluded_paths: dict[str, str] = {}
    for dist in excluded:
        for rel in dist_files.get(dist, ()):
            excluded_paths[rel] = dist
    excluded_dirs = {rel: dist for rel, dist in excluded_paths.items() if rel.endswith("/")}
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        rel = path.relative_to(site).as_posix()
        owner = excluded_paths.get(rel) or next(
            (d for prefix, d in excluded_dirs.items() if rel.startswith(prefix)), None)
        if owner is None and rel.endswith(".pyc"):  # bytecode of an excluded module
            source = rel.replace("__pycache__/", "").rsplit(".", 2)[0] + ".py"
            owner = excluded_paths.get(source)
        if owner is not None:
            result.excluded[owner] = result.excluded.get(owner, 0) + path.stat().st_size
            continue
        if _droppable(rel, tag):
            result.drop(path)
            continue
        result.kept.append((rel, path))
    return result


def _rules_key(python_version: str, exclude: Iterable[str]) -> str:
    rules = repr((sorted(_DROP_DIRS), sorted(_DROP_SUFFIXES), _DROP_PREFIXES, _LICENCE.pattern,
                  python_version, sorted({_normalise(name) for name in exclude})))
    return hashlib.sha256(rules.encode()).hexdigest()[:16]


def slim_cached(site: Path, python_version: str, exclude: Iterable[str] = ()) -> Slimmed:
    """``slim``, remembered beside a complete dependency-cache entry (which never changes
    once complete: ``deps.install``): walking its thousands of files took 1.3 s of every
    ``up`` with nothing changed. Any other ``site`` is slimmed each time."""
    exclude = list(exclude)
    entry = site.parent
    if not (entry / ".complete").is_file():
        return slim(site, python_version, exclude)
    memo = entry / f".slimmed-{_rules_key(python_version, exclude)}.json"
    try:
        data = json.loads(memo.read_text())
        kept = [(rel, site / rel) for rel in data["kept"]]
        return Slimmed(kept, data["dropped_files"], data["dropped_bytes"], data["excluded"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = slim(site, python_version, exclude)
    staging = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(json.dumps({
            "kept": [rel for rel, _ in result.kept], "dropped_files": result.dropped_files,
            "dropped_bytes": result.dropped_bytes, "excluded": result.excluded}))
        staging.replace(memo)  # whole or not at all
    except OSError:  # a read-only cache is slimmed each time
        staging.unlink(missing_ok=True)
    return result
