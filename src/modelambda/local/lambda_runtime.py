"""What Lambda's Python runtime provides at /var/runtime, installed for a target, plus the
files of modelambda's own runtime client that run there.

The runtime client files (``pyric.py``, the pure-Python client, and ``snapstart_boot.py``,
SnapStart's template process) are copied into the runtime directory, which every environment
sees at ``/var/runtime``: the sandbox hides /tmp, /var and $HOME, so the path this
modelambda is installed at (a clone in /tmp, a CI venv under /var) is never needed inside it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

from modelambda.package import deps

CLIENT_FILES = ("pyric.py", "snapstart_boot.py")  # beside this module; stdlib (+ awslambdaric)
CLIENT_DIR_PREFIX = ".modelambda-client-"  # not an importable name: shadows nothing


def lambda_runtime(version: str, architecture: str, python: str) -> tuple[Path, str]:
    """What Lambda's Python runtime provides (awslambdaric, snapshot-restore-py, boto3),
    installed for the target; where awslambdaric has no wheel, modelambda's pure-Python
    client takes its place."""
    try:
        return deps.install(deps.pinned(list(deps.LAMBDA_RUNTIME_PACKAGES)), version,
                            architecture, kind="lambda-runtime", python=python), "awslambdaric"
    except deps.DependencyError as exc:
        print(f"modelambda: awslambdaric cannot be installed for python{version} "
              f"{architecture} ({exc}); using modelambda's pure-Python runtime client",
              file=sys.stderr)
        rest = [p for p in deps.LAMBDA_RUNTIME_PACKAGES if p != "awslambdaric"]
        return deps.install(deps.pinned(rest), version, architecture, kind="lambda-runtime",
                            python=python), "python"


@functools.cache
def _client_sources() -> tuple[str, dict[str, bytes]]:
    """(content hash, file name -> bytes) of the runtime client files of this installation."""
    here = Path(__file__).resolve().parent
    files = {name: (here / name).read_bytes() for name in CLIENT_FILES}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:16], files


def ship_client(runtime_dir: str | os.PathLike[str]) -> str:
    """Put this installation's runtime client files into ``runtime_dir`` (once per content:
    two modelambda versions sharing a runtime directory each get their own) and return the
    directory's name inside it: the files run as ``/var/runtime/<name>/<file>``."""
    key, files = _client_sources()
    name = CLIENT_DIR_PREFIX + key
    target = Path(runtime_dir) / name
    if all((target / file).is_file() for file in files):
        return name
    staging = target.with_name(f"{name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file, data in files.items():
        (staging / file).write_bytes(data)
    try:
        staging.rename(target)  # whole or not at all
    except OSError:  # another process shipped the same files first
        shutil.rmtree(staging, ignore_errors=True)
        if not all((target / file).is_file() for file in files):
            raise
    return name
