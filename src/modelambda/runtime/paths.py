"""Where the function's files are, read from Lambda's environment with local overrides.

On Lambda the task root comes from ``LAMBDA_TASK_ROOT`` (``/var/task``); layers are unpacked
to ``/opt`` and writable scratch space is ``/tmp``, for which Lambda sets no variable. The
``MODELAMBDA_*`` variables let the same runtime run outside Lambda (in-process ``invoke``,
tests, the emulator's plain-process fallback) with those paths remapped.

Paths are plain strings in the runtime: ``pathlib`` costs several milliseconds to import on
every cold start, for nothing ``os.path`` cannot do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class Paths:
    __slots__ = ("efs_dir", "opt_dir", "task_root", "tmp_dir")

    def __init__(self, task_root: str, opt_dir: str = "/opt", tmp_dir: str = "/tmp",
                 efs_dir: str | None = None) -> None:
        self.task_root = str(task_root)
        self.opt_dir = str(opt_dir)
        self.tmp_dir = str(tmp_dir)
        # Maps the spec's EFS mount path (e.g. /mnt/models) to a local directory; None = as is.
        self.efs_dir = None if efs_dir is None else str(efs_dir)

    def __repr__(self) -> str:
        return (f"Paths(task_root={self.task_root!r}, opt_dir={self.opt_dir!r}, "
                f"tmp_dir={self.tmp_dir!r}, efs_dir={self.efs_dir!r})")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        return cls(
            task_root=env.get("MODELAMBDA_TASK_ROOT") or env.get("LAMBDA_TASK_ROOT")
            or "/var/task",
            opt_dir=env.get("MODELAMBDA_OPT_DIR") or "/opt",
            tmp_dir=env.get("MODELAMBDA_TMP_DIR") or "/tmp",
            efs_dir=env.get("MODELAMBDA_EFS_DIR") or None,
        )
