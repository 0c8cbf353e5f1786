"""The files a function is made of: the service directory's code and model, and modelambda's
in-function runtime, with bytecode compiled for the target interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import modelambda
from modelambda.package.archive import ArchiveError, Entry, check_name
from modelambda.spec import SPEC_FILE, ServiceSpec

# Never shipped from a service directory: build output, VCS and tool caches.
_SKIP = {".modelambda", "__pycache__", ".git", ".venv", ".pytest_cache", ".mypy_cache"}
# Read at build time, not by the function.
_BUILD_INPUTS = (SPEC_FILE, "requirements.txt")


def _inside(path: Path, root: Path) -> bool:
    real = path.resolve()
    return real == root or root in real.parents


def service_files(spec: ServiceSpec) -> tuple[list[Entry], list[Entry]]:
    """(user code and data, model files) of a service directory, as archive entries.

    A symlink that leads out of the service directory is refused: packing it would ship
    whatever it points at."""
    root = spec.root.resolve()
    model = spec.model_path
    layers = {(spec.root / rel).resolve() for rel in spec.service.layers}  # shipped as layers
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
        if any(rel.match(pattern) for pattern in spec.build.exclude_files) \
                or path.resolve() in layers:
            continue
        name = check_name(rel.as_posix())
        if path == model or model in path.parents:
            model_entries.append(Entry(name, path))
        elif rel.as_posix() not in _BUILD_INPUTS:
            user.append(Entry(name, path))
    return user, model_entries


def runtime_sources() -> list[Entry]:
    """modelambda's in-function part, as it ships: the runtime package, its limits module
    and the package marker. Nothing else of modelambda goes into a function."""
    package = Path(modelambda.__file__).parent
    entries = [Entry(f"modelambda/{name}", package / name) for name in ("__init__.py",
                                                                         "limits.py")]
    entries += [Entry(f"modelambda/runtime/{p.relative_to(package / 'runtime').as_posix()}", p)
                for p in sorted((package / "runtime").rglob("*.py"))]
    return entries


def link_or_copy(entries: Iterable[Entry], root: Path) -> None:
    for entry in entries:
        target = root / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(entry.source.resolve(), target)
        except OSError:
            shutil.copy2(entry.source, target)


def compiled_code(runtime: list[Entry], user: list[Entry], work: Path, python: str
                  ) -> tuple[list[Entry], list[Entry]]:
    """(runtime, user code) with bytecode compiled for the target interpreter.

    unchecked-hash .pyc files: Lambda unpacks with the zip's timestamps, which would make
    timestamp-checked bytecode look stale and be compiled again on every cold start."""
    shutil.rmtree(work, ignore_errors=True)
    link_or_copy(runtime, work / "runtime")
    link_or_copy(user, work / "user")
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
