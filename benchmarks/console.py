"""What the console costs the emulator, in-process, against baselines in the same run.

1. The hook on every invocation (``Function.observer``: the console's ``InvocationLog``): one
   append of references to a ring buffer, and with a browser connected one ``Event.set``.
   Timed per call with and without a connected browser, against the in-process iris
   prediction (``App.handle``, what the invocation it records costs at the least) and against
   an empty method call. Rounds take turns.
2. The memory of a full record: 10,000 invocations of iris's request.json with realistic
   results (the request is the Function URL's 1.3 KB event, five log lines), measured with
   ``tracemalloc``, then the same after 10,000 more (it must not grow), and the byte budget
   holding against 6 MB payloads.
3. One live update (what the pusher builds at most twice a second while a browser is
   connected): the JSON of 8 functions' state and 200 new invocations.

The end-to-end numbers (the emulator's warm Invoke API with and without a console client
connected) are in ``emulator.py``'s warm table: "console open (live)".

Usage: python benchmarks/console.py [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from modelambda.local.console import api  # noqa: E402
from modelambda.local.console.live import event  # noqa: E402
from modelambda.local.console.store import MAX_INVOCATIONS, InvocationLog  # noqa: E402
from modelambda.local.results import Invocation, InvocationResult  # noqa: E402

IRIS = ROOT / "examples" / "iris"
ROUNDS, PER_ROUND = 20, 5000


def result(n: int, payload: bytes = b'{"predictions": [0, 2], "model_version": "1"}'
           ) -> InvocationResult:
    rid = f"{n:08d}-0000-0000-0000-000000000000"
    out = InvocationResult(request_id=rid, payload=payload, duration_ms=1.5, memory_mb=512,
                           max_memory_mb=60, environment="iris-1", version="1")
    out.logs = [f"START RequestId: {rid} Version: 1", '{"level":"INFO","message":"predict"}',
                f"END RequestId: {rid}", out.report_line()]
    return out


def url_event() -> bytes:
    body = (IRIS / "request.json").read_text()
    headers = {"host": "127.0.0.1:9000", "content-type": "application/json",
               "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0", "accept": "*/*"}
    return json.dumps({"version": "2.0", "routeKey": "$default", "rawPath": "/",
                       "headers": headers, "body": body, "isBase64Encoded": False,
                       "requestContext": {"http": {"method": "POST", "path": "/"},
                                          "requestId": "x" * 36}}).encode()


def hook_cost() -> dict[str, Any]:
    from modelambda.runtime.app import App
    from modelambda.runtime.paths import Paths
    from modelambda.spec import compile_runtime_config, load_spec

    app = App(compile_runtime_config(load_spec(IRIS)), Paths.from_environment(),
              log=lambda _: None)
    request = json.loads((IRIS / "request.json").read_text())
    function: Any = SimpleNamespace(settings=SimpleNamespace(name="iris"))
    payload = url_event()
    results = [result(i) for i in range(PER_ROUND)]
    invocations = [Invocation(payload) for _ in range(PER_ROUND)]
    loop = asyncio.new_event_loop()
    wake = asyncio.Event()  # what a connected browser's stream waits on
    samples: dict[str, list[float]] = {"empty_call": [], "hook_no_browser": [],
                                       "hook_browser_connected": [], "iris_app_handle": []}

    class Empty:
        def invoked(self, *args: Any) -> None:
            pass

    empty = Empty()
    for _ in range(ROUNDS):
        for kind in samples:
            log = InvocationLog()
            log.on_append = wake.set if kind == "hook_browser_connected" else None
            target = empty.invoked if kind == "empty_call" else log.invoked
            n = 50 if kind == "iris_app_handle" else PER_ROUND
            start = time.perf_counter()
            if kind == "iris_app_handle":
                for _ in range(n):
                    app.handle(request, None)
            else:
                for i in range(n):
                    target(function, invocations[i], results[i], False)
            samples[kind].append((time.perf_counter() - start) / n * 1e6)
    loop.close()
    out = {kind: {"median_us": round(statistics.median(v), 3), "min_us": round(min(v), 3)}
           for kind, v in samples.items()}
    base = out["iris_app_handle"]["median_us"]
    for kind in ("hook_no_browser", "hook_browser_connected"):
        out[kind]["over_empty_call_us"] = round(
            out[kind]["median_us"] - out["empty_call"]["median_us"], 3)
        out[kind]["fraction_of_iris_predict"] = round(out[kind]["median_us"] / base, 5)
    return out


def memory() -> dict[str, Any]:
    function: Any = SimpleNamespace(settings=SimpleNamespace(name="iris"))
    payload = url_event()
    tracemalloc.start()
    log = InvocationLog()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(MAX_INVOCATIONS):
        log.invoked(function, Invocation(payload), result(i), False)
    full = tracemalloc.get_traced_memory()[0]
    for i in range(MAX_INVOCATIONS):
        log.invoked(function, Invocation(payload), result(i), False)
    again = tracemalloc.get_traced_memory()[0]
    big = InvocationLog()
    six_mb = b"x" * (6 * 1024 * 1024)
    for i in range(40):  # 240 MB of responses offered; the budget keeps 64 MB
        big.invoked(function, Invocation(b"{}"), result(i, six_mb), False)
    tracemalloc.stop()
    return {"invocations": MAX_INVOCATIONS, "record_mb": round((full - before) / 2**20, 1),
            "after_10000_more_mb": round((again - before) / 2**20, 1),
            "per_invocation_bytes": round((full - before) / MAX_INVOCATIONS),
            "six_mb_payloads_offered": 40, "six_mb_payloads_kept": len(big.records),
            "budget_mb": big.max_bytes // 2**20}


def update_cost() -> dict[str, Any]:
    function: Any = SimpleNamespace(settings=SimpleNamespace(name="iris"))
    log = InvocationLog()
    payload = url_event()
    for i in range(MAX_INVOCATIONS):
        log.invoked(function, Invocation(payload), result(i), False)
    env = {"id": "iris-1", "version": "1", "state": "idle", "invocations": 1200, "cold": False,
           "rss_mb": 61.2, "max_rss_mb": 63.0, "init_ms": 812.4, "idle_s": 0.1,
           "frozen": True, "extensions": [], "restored": False, "age_s": 300.0,
           "end_reason": None}
    functions = [{"name": f"fn{i}", "memory_mb": 512, "environments": [env] * 8, "retired": []}
                 for i in range(8)]
    times = []
    size = 0
    for _ in range(200):
        start = time.perf_counter()
        new = [api.summary(r) for r, _ in zip(log.newest(None, log.seq - 200), range(200),
                                              strict=False)]
        message = event("update", {"functions": functions, "invocations": new,
                                   "last": log.seq})
        times.append((time.perf_counter() - start) * 1000)
        size = len(message)
    return {"median_ms": round(statistics.median(times), 3), "bytes": size,
            "per_second_at_2hz_ms": round(2 * statistics.median(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description="what the console costs the emulator")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "console.json")
    args = parser.parse_args()
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "load_average_start": os.getloadavg(), "hook": hook_cost(),
               "memory": memory(), "update": update_cost(),
               "load_average_end": os.getloadavg()}
    hook = results["hook"]
    print("1. per invocation (median of rounds)")
    for kind, row in hook.items():
        extra = (f"  (+{row['over_empty_call_us']:.3f} us over an empty call; "
                 f"{row['fraction_of_iris_predict'] * 100:.3f}% of iris's in-process predict)"
                 if "over_empty_call_us" in row else "")
        print(f"   {kind:26s} {row['median_us']:9.3f} us{extra}")
    m = results["memory"]
    print(f"2. record of {m['invocations']} invocations: {m['record_mb']} MB "
          f"({m['per_invocation_bytes']} B each); after {m['invocations']} more: "
          f"{m['after_10000_more_mb']} MB; {m['six_mb_payloads_offered']} 6 MB responses "
          f"-> {m['six_mb_payloads_kept']} kept (budget {m['budget_mb']} MB)")
    u = results["update"]
    print(f"3. one live update (8 functions x 8 environments, 200 new invocations): "
          f"{u['median_ms']} ms, {u['bytes']} bytes; at 2 a second {u['per_second_at_2hz_ms']} "
          "ms of each second")
    print(f"load average {results['load_average_start'][0]:.2f} -> "
          f"{results['load_average_end'][0]:.2f} on {os.cpu_count()} CPUs")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
