"""Python packages for the function's target (runtime version and architecture), not this machine.

``pip install --target DIR --platform manylinux... --python-version 3.12 --only-binary=:all:``
fetches the wheels Lambda's interpreter can load. Each set of requirements is installed once
into a cache directory keyed by its hash, then reused; bytecode is compiled with an interpreter
of the target version when one is found, since Lambda's code directories are read-only and a
function without .pyc files compiles its imports again on every cold start.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from modelambda.errors import ModelambdaError

CACHE_FORMAT = 2  # 2: unchecked-hash bytecode

# What each framework's backend needs inside the function.
BACKEND_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "onnx": ("numpy", "onnxruntime"),
    "sklearn": ("numpy", "scikit-learn", "skops"),
    "python": ("numpy",),
    "tflite": ("numpy", "ai-edge-litert"),
    # xgboost-cpu: plain xgboost requires nvidia-nccl-cu13 on Linux (about 360 MB unpacked)
    "xgboost": ("numpy", "xgboost-cpu"),
    "lightgbm": ("numpy", "lightgbm"),
    "endpoint": ("numpy",),  # the model runs elsewhere: no framework in the function
}

# What Lambda's Python runtime itself provides: the runtime interface client, the SnapStart
# hooks package and the AWS SDK.
LAMBDA_RUNTIME_PACKAGES = ("awslambdaric", "snapshot-restore-py", "boto3")

# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34). pip matches the
# --platform tags exactly, so every tag a wheel in use carries is listed: ai-edge-litert's
# wheels are manylinux_2_27 only.
_MANYLINUX = ("manylinux2014", "manylinux_2_27", "manylinux_2_28", "manylinux_2_34")
_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


class DependencyError(ModelambdaError):
    """Packages could not be installed for the target."""


def cache_root() -> Path:
    return Path(os.environ.get("MODELAMBDA_CACHE") or Path.home() / ".cache" / "modelambda")


def installed_versions(site: Path) -> dict[str, str]:
    """Distribution name -> version of what is installed in ``site``."""
    versions = {}
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        versions[name] = version
    return versions


def pinned(names: tuple[str, ...] | list[str]) -> list[str]:
    """Pin each bare name to the version installed here, so the function runs what the
    in-process tests ran; names with their own specifier are kept as they are."""
    out = []
    for name in names:
        if re.fullmatch(r"[A-Za-z0-9._-]+", name):
            try:
                out.append(f"{name}=={metadata.version(name)}")
                continue
            except metadata.PackageNotFoundError:
                pass
        out.append(name)
    return out


def read_requirements(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if line.startswith("-"):
                raise DependencyError(f"{path}: pip options like {line.split()[0]!r} are not "
                                      "supported here; list package requirements only")
            lines.append(line)
    return lines


def platform_args(architecture: str) -> list[str]:
    arch = _ARCH[architecture]
    args = []
    for tag in _MANYLINUX:
        args += ["--platform", f"{tag}_{arch}"]
    return args


def install(requirements: list[str], python_version: str, architecture: str, *,
            kind: str, subdir: str = "", python: str | None = None,
            progress: bool = True) -> Path:
    """Install ``requirements`` for the target into a cached directory and return it.

    The packages go into ``<dir>/<subdir>`` (e.g. ``python`` for a layer's layout)."""
    key_data = json.dumps([CACHE_FORMAT, sorted(requirements), python_version, architecture,
                           subdir])
    key = hashlib.sha256(key_data.encode()).hexdigest()[:16]
    final = cache_root() / f"{kind}-py{python_version}-{architecture}-{key}"
    if (final / ".complete").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # one installer per cache entry at a time (two builds at once, or a build beside `up`):
    # the second waits, then finds the entry complete instead of replacing it under the first
    with open(final.with_name(final.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").is_file():
            return final
        return _install(requirements, python_version, architecture, final, subdir, python,
                        progress)


def _install(requirements: list[str], python_version: str, architecture: str, final: Path,
             subdir: str, python: str | None, progress: bool) -> Path:
    staging = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    target = staging / subdir if subdir else staging
    target.mkdir(parents=True)
    if progress:
        print(f"modelambda: installing {', '.join(requirements)} for python{python_version} "
              f"{architecture} (once; cached in {final.parent})", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(target), "--implementation", "cp",
               "--python-version", python_version, "--only-binary=:all:",
               *platform_args(architecture), *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise DependencyError(_explain(done.stderr, requirements, python_version, architecture))
    if python is not None:
        # Compile for the target interpreter; failures (e.g. py2-only test files) don't matter.
        # unchecked-hash: zips carry fixed timestamps, which would make timestamp-checked
        # bytecode look stale (and be compiled again) on every cold start.
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                        "unchecked-hash", str(target)], capture_output=True)
    (staging / ".complete").write_text(json.dumps({"requirements": requirements}))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


def _explain(stderr: str, requirements: list[str], python_version: str,
             architecture: str) -> str:
    missing = re.findall(r"No matching distribution found for (\S+)", stderr)
    target = f"CPython {python_version} on manylinux {architecture}"
    if missing:
        return (f"no wheel of {', '.join(missing)} for {target}: Lambda cannot build from "
                "source, so pick a version that ships such a wheel, or drop the package")
    tail = "\n".join(stderr.strip().splitlines()[-8:])
    return f"pip could not install {requirements} for {target}:\n{tail}"
