"""What Lambda's Python runtime provides at /var/runtime, installed for a target."""

from __future__ import annotations

import sys
from pathlib import Path

from modelambda.package import deps


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
