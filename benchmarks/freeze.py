"""What freezing idle environments costs on the warm path, in one run.

The emulator freezes an environment (its control group) once it has been idle for
``environment.FREEZE_AFTER_S`` with the runtime back in ``/next``, and thaws it before the next
event is handed over. This measures warm invokes of a do-nothing function (1769 MB: one full
vCPU, so the quota is not what is measured) over one keep-alive ``http.client`` connection to
the Invoke API, in three modes that take turns in blocks (the machine is shared and noisy: only
ratios and differences within the run mean something):

- ``freeze``: a control group, frozen between invocations (the default);
- ``no-freeze``: the same function and environment with freezing switched off
  (``FREEZE_AFTER_S = None``): the control group's cost without the freeze/thaw;
- ``off``: a function without a control group (``cgroups=False``): the emulator as before.

Two traffic patterns: back to back (the next request comes before the freeze delay, so
freezing costs only arming and cancelling a timer) and with a gap longer than the delay
(every request finds the environment frozen and thaws it first). The freeze and thaw writes
themselves are timed on their own too.

Usage: python benchmarks/freeze.py [--samples N] [--blocks N] [--gap-ms MS] [--json FILE]
       python benchmarks/freeze.py --cpu   # also: Duration of fixed CPU work by memory size
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from modelambda import limits  # noqa: E402
from modelambda.local import cgroups, environment  # noqa: E402
from modelambda.local.emulator import EmulatorThread  # noqa: E402
from modelambda.local.interpreters import find_python  # noqa: E402
from modelambda.local.lambda_runtime import lambda_runtime  # noqa: E402
from modelambda.local.settings import FunctionSettings  # noqa: E402

INVOKE = "/2015-03-31/functions/{}/invocations"
NOOP = "def handler(event, context):\n    return 1\n"
CPU_WORK = """
import hashlib, time
BUF = b"x" * 2**20
def handler(event, context):
    start = time.process_time()
    for _ in range(event["rounds"]):
        hashlib.sha256(BUF).digest()
    return {"cpu_s": time.process_time() - start}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port)

    def invoke(self, name: str, payload: bytes = b"{}") -> tuple[float, bytes]:
        start = time.perf_counter()
        self.connection.request("POST", INVOKE.format(name), payload,
                                {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200 or response.getheader("X-Amz-Function-Error"):
            raise RuntimeError(f"{name}: {response.status} {body[:200]!r}")
        return elapsed, body


def function(task_root: Path, name: str, code: str, python: str, runtime: Path,
             memory_mb: int, **settings: Any) -> FunctionSettings:
    task = task_root / name
    task.mkdir()
    (task / "fn.py").write_text(textwrap.dedent(code))
    return FunctionSettings(name=name, handler="fn.handler", task_dir=task, python=python,
                            runtime_dir=runtime, memory_mb=memory_mb, **settings)


def freeze_writes(samples: int) -> dict[str, float]:
    """p50 of one freeze and one thaw write, on a group holding one sleeping process."""
    group = cgroups.hierarchy().create("bench-freeze", 256 * 2**20, cgroups.MIN_QUOTA_US * 100)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        group.attach(sleeper.pid)
        freezes, thaws = [], []
        for _ in range(samples):
            start = time.perf_counter()
            group.freeze()
            middle = time.perf_counter()
            group.thaw()
            freezes.append((middle - start) * 1000)
            thaws.append((time.perf_counter() - middle) * 1000)
            time.sleep(0.002)
    finally:
        sleeper.kill()
        sleeper.wait()
        while not group.remove():
            time.sleep(0.01)
    return {"freeze_ms_p50": statistics.median(freezes), "thaw_ms_p50": statistics.median(thaws)}


def warm_path(emu: EmulatorThread, samples: int, blocks: int, gap_s: float
              ) -> dict[str, dict[str, dict[str, float]]]:
    client = Client(emu.emulator.port)
    client.invoke("grouped")  # cold starts out of the way
    client.invoke("plain")
    grouped = emu.function("grouped")
    modes = {"freeze": ("grouped", environment.FREEZE_AFTER_S), "no-freeze": ("grouped", None),
             "off": ("plain", environment.FREEZE_AFTER_S)}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for pattern, gap in (("back-to-back", 0.0), (f"gap {gap_s * 1000:.0f} ms", gap_s)):
        latencies: dict[str, list[float]] = {mode: [] for mode in modes}
        found_frozen = {mode: 0 for mode in modes}
        for block in range(blocks):
            order = list(modes)[block % 3:] + list(modes)[:block % 3]  # take turns
            for mode in order:
                name, delay = modes[mode]
                environment.FREEZE_AFTER_S = delay
                for _ in range(samples // blocks):
                    if gap:
                        time.sleep(gap)
                    if name == "grouped" and grouped.environments[0].frozen:
                        found_frozen[mode] += 1
                    latencies[mode].append(client.invoke(name)[0])
        environment.FREEZE_AFTER_S = modes["freeze"][1]
        results[pattern] = {mode: {"p50_ms": statistics.median(values),
                                   "p90_ms": percentile(values, 0.9),
                                   "found_frozen": found_frozen[mode] / len(values)}
                            for mode, values in latencies.items()}
    client.connection.close()
    return results


def cpu_table(emu: EmulatorThread, task_root: Path, python: str, runtime: Path
              ) -> dict[str, Any]:
    """REPORT-side Duration of fixed single-threaded CPU work at several memory sizes."""
    sizes = (256, 512, 1024, 1769, 3538)
    for size in sizes:
        emu.add_function(function(task_root, f"cpu-{size}", CPU_WORK, python, runtime, size))
    emu.add_function(function(task_root, "cpu-off", CPU_WORK, python, runtime, 512,
                              cgroups=False))
    client = Client(emu.emulator.port)
    names = [f"cpu-{s}" for s in sizes] + ["cpu-off"]
    for name in names:
        client.invoke(name, b'{"rounds": 1}')
    probe = json.loads(client.invoke("cpu-off", b'{"rounds": 100}')[1])["cpu_s"]
    payload = json.dumps({"rounds": max(100, int(100 * 0.3 / probe))}).encode()
    durations: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(3):  # take turns; the best of three of each
        for name in names:
            elapsed, body = client.invoke(name, payload)
            durations[name].append((elapsed, json.loads(body)["cpu_s"]))
    client.connection.close()
    best = {name: min(values)[0] for name, values in durations.items()}
    return {"best_ms": best,
            # CPU seconds per wall second: the share the function really got
            "effective_vcpu": {name: min(values)[1] * 1000 / min(values)[0]
                               for name, values in durations.items()},
            "vcpu": {f"cpu-{s}": round(cgroups.vcpus(s, cgroups.machine_cores()), 3)
                     for s in sizes},
            "ratio_to_1769": {name: best[name] / best["cpu-1769"] for name in names},
            "expected_ratio": {f"cpu-{s}": limits.MEMORY_MB_PER_VCPU / min(
                s, limits.MEMORY_MB_PER_VCPU) for s in sizes}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600, help="invokes per mode and pattern")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--gap-ms", type=float, default=30.0)
    parser.add_argument("--cpu", action="store_true", help="also the CPU-by-memory table")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "freeze.json")
    args = parser.parse_args()
    found = cgroups.detection()
    if found.mode == cgroups.OFF:
        print(f"control groups unavailable here: {found.detail}")
        return 1
    python = find_python("python3.12")
    runtime, client = lambda_runtime("3.12", "x86_64", python)
    report: dict[str, Any] = {"cgroups": found.detail, "freeze_after_ms":
                              (environment.FREEZE_AFTER_S or 0) * 1000,
                              "load_average": os.getloadavg()}
    report["writes"] = freeze_writes(500)
    with tempfile.TemporaryDirectory(prefix="bench-freeze-") as tmp:
        emu = EmulatorThread(sink=lambda line: None)
        try:
            for name, use in (("grouped", None), ("plain", False)):
                emu.add_function(function(Path(tmp), name, NOOP, python, runtime, 1769,
                                          cgroups=use, runtime_client=client))
            report["warm"] = warm_path(emu, args.samples, args.blocks, args.gap_ms / 1000)
            if args.cpu:
                report["cpu"] = cpu_table(emu, Path(tmp), python, runtime)
        finally:
            emu.stop(drain_s=1)

    print(f"control groups: {found.detail}")
    print(f"load average at start: {report['load_average']}")
    print(f"freeze write p50 {report['writes']['freeze_ms_p50']:.3f} ms, thaw write p50 "
          f"{report['writes']['thaw_ms_p50']:.3f} ms")
    for pattern, modes in report["warm"].items():
        off = modes["off"]["p50_ms"]
        print(f"\nwarm invoke, {pattern} (p50 / p90 ms, found frozen, vs off):")
        for mode, row in modes.items():
            print(f"  {mode:10s} {row['p50_ms']:6.3f} / {row['p90_ms']:6.3f}   "
                  f"frozen {row['found_frozen']:4.0%}   x{row['p50_ms'] / off:.3f} "
                  f"({row['p50_ms'] - off:+.3f} ms)")
        freeze, plain = modes["freeze"]["p50_ms"], modes["no-freeze"]["p50_ms"]
        print(f"  freezing costs {freeze - plain:+.3f} ms p50 (x{freeze / plain:.3f})")
    if "cpu" in report:
        cpu = report["cpu"]
        print("\nfixed CPU work by memory size (client-side ms, best of 3; effective vCPU = "
              "CPU seconds / wall seconds, against the quota's):")
        for name, best in cpu["best_ms"].items():
            expected = cpu["expected_ratio"].get(name)
            quota = cpu["vcpu"].get(name)
            print(f"  {name:9s} {best:8.0f} ms  x{cpu['ratio_to_1769'][name]:.2f} of 1769 MB"
                  + (f" (Lambda's rule: x{expected:.2f})" if expected else " " * 24)
                  + f"  effective {cpu['effective_vcpu'][name]:.2f} vCPU"
                  + (f" (quota {quota:.2f})" if quota else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
