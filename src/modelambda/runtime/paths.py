"""Where the function's files are, read from Lambda's environment with local overrides.

On Lambda the task root comes from ``LAMBDA_TASK_ROOT`` (``/var/task``); layers are unpacked
to ``/opt`` and writable scratch space is ``/tmp``, for which Lambda sets no variable. The
``MODELAMBDA_*`` variables let the same runtime run outside Lambda (in-process ``invoke``,
tests, the emulator's plain-process fallback) with those paths remapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    task_root: Path
    opt_dir: Path
    tmp_dir: Path
    # Maps the spec's EFS mount path (e.g. /mnt/models) to a local directory; None = as is.
    efs_dir: Path | None

    @classmethod
    def from_environment(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        efs = env.get("MODELAMBDA_EFS_DIR")
        return cls(
            task_root=Path(
                env.get("MODELAMBDA_TASK_ROOT") or env.get("LAMBDA_TASK_ROOT") or "/var/task"
            ),
            opt_dir=Path(env.get("MODELAMBDA_OPT_DIR") or "/opt"),
            tmp_dir=Path(env.get("MODELAMBDA_TMP_DIR") or "/tmp"),
            efs_dir=Path(efs) if efs else None,
        )
