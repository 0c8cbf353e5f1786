"""Stage a service directory the way Lambda unpacks a function, for the emulator.

The task root holds modelambda's in-function runtime, the service's own code and model, and
the compiled ``modelambda.json``; the dependencies (for the target runtime, from ``deps``)
form a read-only ``/opt`` like a layer, shared by every service with the same requirements.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import modelambda
from modelambda.package import deps
from modelambda.spec import ServiceSpec, compile_runtime_config

HANDLER = "modelambda.runtime.handler.handle"
_SKIP = {".modelambda", "__pycache__", ".git", ".venv", ".pytest_cache", ".mypy_cache"}


@dataclass
class Staged:
    task_dir: Path
    opt_dir: Path
    runtime_dir: Path
    handler: str = HANDLER


def _link_or_copy(source: Path, target: Path) -> None:
    real = source.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(real, target)  # same file system: instant, no extra space
    except OSError:
        shutil.copy2(real, target)


def copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part in _SKIP or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            _link_or_copy(path, target / rel)


def copy_runtime(target: Path) -> None:
    """modelambda's in-function part: the package root, limits and runtime/ (no CLI, no spec)."""
    package = Path(modelambda.__file__).parent
    for name in ("__init__.py", "limits.py"):
        _link_or_copy(package / name, target / "modelambda" / name)
    copy_tree(package / "runtime", target / "modelambda" / "runtime")


def requirements_for(spec: ServiceSpec) -> list[str]:
    wanted = deps.pinned(list(deps.BACKEND_REQUIREMENTS.get(spec.model.framework, ())))
    extra = deps.read_requirements(spec.root / "requirements.txt")
    return sorted(set(wanted) | set(deps.pinned(extra)))


def stage(spec: ServiceSpec, python: str | None) -> Staged:
    out = spec.root / ".modelambda" / "stage"
    task = out / "task"
    shutil.rmtree(task, ignore_errors=True)
    task.mkdir(parents=True)
    copy_tree(spec.root, task)
    copy_runtime(task)
    config = compile_runtime_config(spec, {"kind": "bundle", "path": spec.model.path})
    (task / "modelambda.json").write_text(json.dumps(config.to_dict(), indent=1))
    version = spec.service.runtime.removeprefix("python")
    arch = spec.service.architecture
    opt = deps.install(requirements_for(spec), version, arch, kind="deps", subdir="python",
                       python=python)
    runtime = deps.install(deps.pinned(list(deps.LAMBDA_RUNTIME_PACKAGES)), version, arch,
                           kind="lambda-runtime", python=python)
    return Staged(task_dir=task, opt_dir=opt, runtime_dir=runtime)
