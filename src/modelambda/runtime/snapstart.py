"""SnapStart hooks the runtime registers when Lambda initialises for a snapshot.

Before the snapshot: warm the model (one prediction on synthetic input), so that lazy
allocations and first-run work land in the snapshot instead of the first request. After each
restore: re-seed the random generators, since every environment restored from one snapshot
would otherwise draw the same "random" numbers.
"""

from __future__ import annotations

import os
import random
import sys
from typing import TYPE_CHECKING, Any

from modelambda.runtime import logs

if TYPE_CHECKING:
    from modelambda.runtime.app import App


def reseed() -> None:
    random.seed(os.urandom(32))
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))


def register(app: App) -> bool:
    """Register the hooks with snapshot-restore-py (which Lambda's runtime provides)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError as exc:
        app.log(logs.event_record("snapstart hooks not registered", {
            "function_name": app.config.function_name, "error": str(exc),
            "effect": "no warm-up before the snapshot, no re-seed after restores"},
            level="WARNING"))
        return False

    def before_snapshot() -> Any:
        app.warm_up()

    register_before_snapshot(before_snapshot)
    register_after_restore(reseed)
    return True
