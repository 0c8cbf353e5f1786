"""Find a Python interpreter for a Lambda runtime id (python3.12 -> a CPython 3.12 binary).

Looked for, in order: ``$MODELAMBDA_PYTHON_<MAJOR>_<MINOR>``, ``python3.X`` on PATH, then
pyenv's versions directory. No silent fallback to another version: running a 3.12 function on
3.11 hides exactly the import and wheel problems the emulator is there to show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from modelambda.errors import UsageError


def version_of(runtime: str) -> str:
    if not runtime.startswith("python3."):
        raise UsageError(f"runtime {runtime!r} is not a Python runtime")
    return runtime.removeprefix("python")


def _reports(binary: str, version: str) -> bool:
    try:
        # -I -S: no site, no environment: the version is all that is asked (and faster)
        out = subprocess.run([binary, "-I", "-S", "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


@cache
def find_python(runtime: str) -> str:
    """The path of an interpreter for ``runtime``; UsageError saying how to get one."""
    version = version_of(runtime)
    candidates: list[str] = []
    override = os.environ.get(f"MODELAMBDA_PYTHON_{version.replace('.', '_')}")
    if override:
        candidates.append(override)
    pyenv_roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))]
    on_path = shutil.which(f"python{version}")
    if on_path and Path(on_path).parent.name == "shims" \
            and (Path(on_path).parent.parent / "versions").is_dir():
        # a pyenv shim: a shell script that runs `pyenv exec` (about a second here, every
        # time, and an error when the version is installed but not selected); the binary it
        # would run is in its root's versions directory, looked at next
        pyenv_roots.insert(0, Path(on_path).parent.parent)
    elif on_path:
        candidates.append(on_path)
    for pyenv_root in dict.fromkeys(pyenv_roots):
        for found in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
            candidates.append(str(found / "bin" / f"python{version}"))
    for candidate in candidates:
        # the binary must report the version (a python3.12 on PATH may be anything)
        if Path(candidate).is_file() and _reports(candidate, version):
            return candidate
    raise UsageError(
        f"no Python {version} found for runtime {runtime}: install it (e.g. 'pyenv install "
        f"{version}' or your OS's python{version} package), or point "
        f"MODELAMBDA_PYTHON_{version.replace('.', '_')} at one"
    )


def given_python(path: str) -> str:
    """An interpreter the user named with ``--python``: it must exist and run."""
    resolved = shutil.which(path) or path
    try:
        done = subprocess.run([resolved, "-c", "import sys; print(sys.version_info[0])"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--python {path}: cannot run it ({exc}); name a Python 3 "
                         "interpreter") from exc
    if done.returncode != 0 or done.stdout.strip() != "3":
        raise UsageError(f"--python {path}: not a working Python 3 interpreter")
    return resolved
