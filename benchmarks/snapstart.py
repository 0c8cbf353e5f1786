"""SnapStart-style start against a cold start, through the emulator, in one run.

MiniLM (bundle). Cold: every sample is a new function (fresh environment: process start,
imports, model load). SnapStart: one function with ``snapstart = true``, whose template ran
init once; every sample forces a new environment, which is forked from the template, runs the
after-restore hooks and answers. Both are timed from the invoke request to the answer.

Usage: python benchmarks/snapstart.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from strategies import EVENTS, invoke_ms, make_service  # noqa: E402

from modelambda.local.emulator import EmulatorThread  # noqa: E402
from modelambda.local.services import function_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "snapstart.json")
    args = parser.parse_args()
    event = EVENTS["minilm"]
    with tempfile.TemporaryDirectory() as tmp:
        settings, _ = function_for(make_service("minilm", "bundle", Path(tmp)))
        emu = EmulatorThread(sink=lambda _line: None, max_environments=4, idle_timeout_s=60)
        try:
            snap = dataclasses.replace(settings, name="snap", snapstart=True,
                                       reserved_concurrency=2)
            function = emu.add_function(snap)
            start = time.perf_counter()
            # SnapStart restores published versions: the alias (version 1), not $LATEST
            invoke_ms(emu.emulator.port, "snap:live", event)  # waits for the snapshot too
            first_ms = (time.perf_counter() - start) * 1000
            cold, restored = [], []
            for i in range(args.runs):
                fresh = dataclasses.replace(settings, name=f"cold-{i}")
                emu.add_function(fresh)
                cold.append(invoke_ms(emu.emulator.port, fresh.name, event))
                emu.remove_function(fresh.name)
                for env in list(function.environments):  # force the next one to restore
                    emu.call(function._retire(env))
                restored.append(invoke_ms(emu.emulator.port, "snap:live", event))
            snapshot_ms = function.template.snapshot_ms if function.template else None
        finally:
            emu.stop(drain_s=1)
    result = {
        "runs": args.runs, "cold_ms": round(statistics.median(cold), 1),
        "snapstart_ms": round(statistics.median(restored), 1),
        "ratio": round(statistics.median(restored) / statistics.median(cold), 3),
        "snapshot_creation_ms": round(snapshot_ms or 0, 1),
        "first_invoke_with_snapshot_ms": round(first_ms, 1),
        "cold_samples": [round(x, 1) for x in cold],
        "snapstart_samples": [round(x, 1) for x in restored],
    }
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
