"""Strategies side by side, in one run: artifact sizes against the limits, build time, and
cold start through the emulator against the hand-written baseline; plus, for S3, the
boto3 ``download_file`` way, fetch throughput through a per-connection bandwidth cap, and the
refresh switch time.

Every cold-start sample is a fresh environment: a new function name on one emulator, invoked
once through the Invoke API (wall time from request to answer, process start included). The
hand-written baseline is a fresh process of the same Python 3.12 with the same dependencies
(the bundle's unpacked task root on PYTHONPATH, -S) that loads, from that task root, the
model file the build ships (offline-optimised ONNX) with onnxruntime directly and predicts.
The optimisation is a build-time gain, reported on its own line: session creation from the
raw file against the shipped one, in one process. Ratios are of medians; below 1.0 is faster
than hand-written.

Usage: python benchmarks/strategies.py [--runs N] [--models iris,minilm]
       [--strategies bundle,layer,image,s3,efs,endpoint] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cold_start import (  # noqa: E402
    HAND_IRIS,
    HAND_MINILM,
    gain_line,
    install_minilm,
    onnx_pair,
    session_gain,
)

from modelambda.local.emulator import EmulatorThread  # noqa: E402
from modelambda.local.resources import LocalServices  # noqa: E402
from modelambda.local.s3server import EmbeddedS3  # noqa: E402
from modelambda.local.services import function_for  # noqa: E402

EVENTS = {"iris": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
          "minilm": {"instances": ["serverless inference", "hello world"]}}
STRATEGY_TOML = {
    "bundle": 'kind = "bundle"', "layer": 'kind = "bundle"', "image": 'kind = "bundle"',
    "s3": 'kind = "s3"\nbucket = "bench"\nprefix = "models"',
    "efs": 'kind = "efs"\nmount_path = "/mnt/models"',
    "endpoint": 'kind = "endpoint"\nprotocol = "v2"\nurl = "http://127.0.0.1:1"',
}

BOTO3_MINILM = """
import json, sys, os
import boto3
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
s3 = boto3.client("s3")
s3.download_file("bench", sys.argv[3], "/tmp/bench-model.onnx")
root = sys.argv[2] + "/model"
tok = Tokenizer.from_file(root + "/tokenizer.json")
tok.no_padding(); tok.enable_truncation(max_length=256); tok.enable_padding(pad_id=0)
session = ort.InferenceSession("/tmp/bench-model.onnx", providers=["CPUExecutionProvider"])
enc = tok.encode_batch(json.loads(sys.argv[1])["instances"])
ids = np.array([e.ids for e in enc], dtype=np.int64)
mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
(emb,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
print(json.dumps({"predictions": emb.tolist()})[:80])
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_service(name: str, strategy: str, work: Path) -> Path:
    source = ROOT / "examples" / ("iris" if name == "iris" else "minilm-embeddings")
    target = work / f"{name}-{strategy}"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".modelambda", "model"))
    if name == "minilm":
        install_minilm(target / "model")
    spec = target / "modelambda.toml"
    text = spec.read_text()
    start = text.index("[strategy]")
    end = text.find("\n[", start + 1)
    spec.write_text(text[:start] + "[strategy]\n" + STRATEGY_TOML[strategy] + "\n"
                    + ("" if end < 0 else text[end:]))
    return target


def invoke_ms(port: int, name: str, event: dict[str, Any]) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", f"/2015-03-31/functions/{name}/invocations", json.dumps(event))
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status != 200 or response.getheader("X-Amz-Function-Error"):
        raise SystemExit(f"{name}: {response.status} {body[:300]!r}")
    return elapsed


def process_ms(python: str, code: str, args: list[str], pythonpath: str,
               env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run([python, "-S", "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})})
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or '"predictions"' not in done.stdout:
        raise SystemExit(f"baseline failed: {done.stderr[-2000:]}")
    return elapsed


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def run_model(name: str, strategies: list[str], runs: int, work: Path, emu: EmulatorThread,
              s3: EmbeddedS3) -> dict[str, Any]:
    event = EVENTS[name]
    results: dict[str, Any] = {}
    settings_of: dict[str, Any] = {}
    roots: dict[str, Path] = {}
    # the embedded S3 for the s3 strategy; the local endpoint host for the endpoint strategy
    services = LocalServices(s3=s3, log=log)
    for strategy in strategies:
        root = roots[strategy] = make_service(name, strategy, work)
        start = time.perf_counter()
        settings, _ = function_for(root, services, strategy=strategy)
        build_s = time.perf_counter() - start
        manifest = json.loads((root / ".modelambda" / "build" / strategy /
                               "manifest.json").read_text())
        settings_of[strategy] = settings
        results[strategy] = {
            "build_s_warm_cache": round(build_s, 1),
            "artifacts": [{k: a[k] for k in ("name", "zipped_bytes", "unzipped_bytes")}
                          for a in manifest["artifacts"]],
            "limits": [{k: c[k] for k in ("name", "value", "limit", "margin", "ok")}
                       for c in manifest["limits"]],
        }
        log(f"{name}/{strategy}: built in {build_s:.1f} s")
    # the baselines read the model files the bundle ships, from its unpacked task root
    bundle_task = Path(settings_of["bundle"].task_dir)
    python = settings_of["bundle"].python
    hand = HAND_IRIS if name == "iris" else HAND_MINILM
    samples: dict[str, list[float]] = {s: [] for s in strategies}
    samples["hand-written"] = []
    boto3_samples: list[float] = []
    runtime_dir = str(settings_of["bundle"].runtime_dir)
    for i in range(runs):  # interleaved, so noise hits all alike
        samples["hand-written"].append(process_ms(
            python, hand, [json.dumps(event), str(bundle_task)], str(bundle_task)))
        for strategy in (strategies if i % 2 == 0 else strategies[::-1]):
            fresh = dataclasses.replace(settings_of[strategy],
                                        name=f"{name}-{strategy}-{i}")
            emu.add_function(fresh)
            samples[strategy].append(invoke_ms(emu.emulator.port, fresh.name, event))
            emu.remove_function(fresh.name)  # frees its environment
        if name == "minilm" and "s3" in strategies:
            version = json.loads(s3.client().get_object(
                Bucket="bench", Key="models/all-MiniLM-L6-v2/aliases/live")["Body"].read()
            )["version"]
            key = f"models/all-MiniLM-L6-v2/versions/{version}/model.onnx"
            boto3_samples.append(process_ms(
                python, BOTO3_MINILM, [json.dumps(event), str(bundle_task), key],
                f"{bundle_task}:{runtime_dir}", s3.environment()))
    services.stop()
    gain = session_gain(python, *onnx_pair(roots["bundle"], bundle_task), runs,
                        str(bundle_task))
    log(gain_line(name, gain))
    base = statistics.median(samples["hand-written"])
    cold = {"hand-written_ms": median(samples["hand-written"])}
    for strategy in strategies:
        cold[f"{strategy}_ms"] = median(samples[strategy])
        cold[f"{strategy}_ratio"] = round(statistics.median(samples[strategy]) / base, 3)
    if boto3_samples:
        cold["boto3_download_file_ms"] = median(boto3_samples)
        cold["boto3_download_file_ratio"] = round(statistics.median(boto3_samples) / base, 3)
        cold["s3_vs_bundle"] = round(statistics.median(samples["s3"]) /
                                     statistics.median(samples["bundle"]), 3)
        cold["boto3_vs_bundle"] = round(statistics.median(boto3_samples) /
                                        statistics.median(samples["bundle"]), 3)
    return {"strategies": results, "cold_start": cold, "build_optimisation": gain,
            "runs": runs}


# --- S3 fetch throughput through a per-connection bandwidth cap ------------------------------


class ThrottlingProxy:
    """A TCP proxy that caps each connection's download rate (S3 gives ~90 MB/s per
    connection; scaled down here to what two cores push through Python)."""

    def __init__(self, target_port: int, bytes_per_s: float) -> None:
        self.target_port = target_port
        self.rate = bytes_per_s
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    throttle: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
                if throttle:
                    await asyncio.sleep(len(chunk) / self.rate)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer, False),
                             self._pipe(up_reader, writer, True))

    def start(self) -> ThrottlingProxy:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self.loop).result()
        self.port = server.sockets[0].getsockname()[1]
        return self


def fetch_throughput(s3: EmbeddedS3, quick: bool) -> dict[str, Any]:
    from modelambda.runtime.aws.s3 import S3Client

    size = (48 if quick else 96) * 1024 * 1024
    client = s3.client()
    client.put_object(Bucket="bench", Key="blob", Body=os.urandom(size))
    rate = 25 * 1024 * 1024  # per connection
    proxy = ThrottlingProxy(s3.port, rate).start()
    env = s3.environment()
    ours = S3Client(endpoint=f"http://127.0.0.1:{proxy.port}", region="us-east-1")
    from modelambda.runtime.aws.sigv4 import Credentials

    ours.credentials = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    start = time.perf_counter()
    assert len(ours.fetch("bench", "blob", size)) == size
    parallel = time.perf_counter() - start
    start = time.perf_counter()
    assert len(ours.fetch("bench", "blob", size, part_bytes=size + 1)) == size
    single = time.perf_counter() - start
    return {"object_mb": size // 2**20, "cap_mb_s_per_connection": rate // 2**20,
            "parallel_ranged_mb_s": round(size / parallel / 2**20, 1),
            "single_stream_mb_s": round(size / single / 2**20, 1),
            "speedup": round(single / parallel, 2)}


def refresh_switch(s3: EmbeddedS3, work: Path) -> dict[str, Any]:
    """Promote a new version under a warm in-process app: time to load it beside the old,
    the requests' latency meanwhile, and the swap between two requests."""
    from modelambda import modelstore
    from modelambda.package.build import runtime_config
    from modelambda.runtime.app import App
    from modelambda.runtime.paths import Paths
    from modelambda.spec import load_spec

    root = make_service("minilm", "s3", work / "refresh")
    spec = load_spec(root)
    store = modelstore.S3Store("bench", "refresh", s3.client())
    modelstore.publish_service(spec, store, version="v1", alias="live")
    modelstore.publish_service(spec, store, version="v2")
    for key, value in s3.environment().items():
        os.environ[key] = value
    config = runtime_config(spec, "s3")
    config.source["prefix"] = "refresh"
    config.code_root = str(root)
    app = App(config, Paths(task_root=str(root), tmp_dir=str(work / "tmp")), log=lambda _: None)
    event = EVENTS["minilm"]
    modelstore.promote(store, spec.model.name, "v2", "live")
    latencies, start = [], time.perf_counter()
    app._next_check = 0.0
    while True:
        t = time.perf_counter()
        version = app.handle(event)["model_version"]
        latencies.append((time.perf_counter() - t) * 1000)
        if version == "v2":
            break
    return {"promote_to_first_new_answer_ms": round((time.perf_counter() - start) * 1000, 1),
            "requests_served_meanwhile": len(latencies) - 1,
            "p50_latency_while_loading_ms": round(statistics.median(latencies), 2),
            "max_latency_while_loading_ms": round(max(latencies), 2)}


def print_table(results: dict[str, Any]) -> None:
    out = []
    for name in ("iris", "minilm"):
        if name not in results:
            continue
        model = results[name]
        cold = model["cold_start"]
        out.append(f"\n{name}: cold start through the emulator, median of {model['runs']} "
                   "fresh environments; ratio = strategy / hand-written")
        out.append(f"   {'strategy':14s} {'cold ms':>9s} {'ratio':>6s} {'build s':>8s}  "
                   "artifacts (unzipped MB)")
        out.append(f"   {'hand-written':14s} {cold['hand-written_ms']:9.1f} {1:6.3f}")
        for strategy, built in model["strategies"].items():
            sizes = ", ".join(f"{a['name']} {a['unzipped_bytes'] / 2**20:.1f}"
                              for a in built["artifacts"])
            out.append(f"   {strategy:14s} {cold[f'{strategy}_ms']:9.1f} "
                       f"{cold[f'{strategy}_ratio']:6.3f} {built['build_s_warm_cache']:8.1f}"
                       f"  {sizes}")
        if "boto3_download_file_ms" in cold:
            out.append(f"   {'boto3 download':14s} {cold['boto3_download_file_ms']:9.1f} "
                       f"{cold['boto3_download_file_ratio']:6.3f}")
            out.append(f"   s3 / bundle {cold['s3_vs_bundle']:.3f}; boto3 download_file / "
                       f"bundle {cold['boto3_vs_bundle']:.3f}")
        out.append("   " + gain_line(name, model["build_optimisation"]).removeprefix(name)
                   .strip())
        out.append("   (every baseline loads the file the build ships, so this gain is in "
                   "both sides)")
    fetch = results.get("s3_fetch")
    if fetch:
        out.append(f"\nS3 fetch of {fetch['object_mb']} MB through a "
                   f"{fetch['cap_mb_s_per_connection']} MB/s per-connection cap: parallel "
                   f"ranged {fetch['parallel_ranged_mb_s']} MB/s, one stream "
                   f"{fetch['single_stream_mb_s']} MB/s (x{fetch['speedup']})")
    refresh = results.get("refresh")
    if refresh:
        out.append(f"refresh: promote to first answer from the new version "
                   f"{refresh['promote_to_first_new_answer_ms']} ms, "
                   f"{refresh['requests_served_meanwhile']} requests served meanwhile "
                   f"(p50 {refresh['p50_latency_while_loading_ms']} ms, max "
                   f"{refresh['max_latency_while_loading_ms']} ms)")
    print("\n".join(out), flush=True)


S3_GOAL = 1.25  # issue 13: the s3 strategy's cold start at most 1.25x the bundle's (MiniLM)


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The ``summary`` rows ``performance.py`` reads: ``s3_vs_bundle_minilm``."""
    cold = results.get("minilm", {}).get("cold_start", {})
    if "s3_vs_bundle" not in cold:
        return {}
    from cold_start import summary_row

    return {"s3_vs_bundle_minilm": summary_row(
        cold["s3_vs_bundle"], S3_GOAL,
        f"MiniLM through the emulator: s3 {cold['s3_ms']} ms / bundle {cold['bundle_ms']} ms, "
        f"embedded S3 (moto) on loopback, median of {results['minilm']['runs']}; boto3 "
        f"download_file way {cold['boto3_vs_bundle']}x")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--runs", type=int, default=None,
                        help="cold-start samples per strategy and model (5; 3 with --quick)")
    parser.add_argument("--models", default=None, help="iris,minilm (minilm with --quick)")
    parser.add_argument("--strategies", default=None,
                        help="comma-separated, must include bundle (all six; bundle,s3 with "
                             "--quick)")
    parser.add_argument("--quick", action="store_true",
                        help="what the summary needs: MiniLM, bundle and s3, 3 samples, a "
                             "48 MB object for the S3 fetch instead of 96 MB")
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "strategies.json")
    args = parser.parse_args()
    args.runs = args.runs or (3 if args.quick else 5)
    args.models = args.models or ("minilm" if args.quick else "iris,minilm")
    args.strategies = args.strategies or ("bundle,s3" if args.quick else
                                          "bundle,layer,image,s3,efs,endpoint")
    strategies = args.strategies.split(",")
    if "bundle" not in strategies:
        parser.error("--strategies must include bundle: the baselines read its task root")
    results: dict[str, Any] = {"load_average_start": os.getloadavg()}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s3 = EmbeddedS3().start()
        s3.ensure_bucket("bench")
        emu = EmulatorThread(sink=lambda _line: None, max_environments=4, idle_timeout_s=5)
        try:
            for name in args.models.split(","):
                results[name] = run_model(name, strategies, args.runs, work, emu, s3)
                log(json.dumps({name: results[name]["cold_start"]}))
            results["s3_fetch"] = fetch_throughput(s3, args.quick)
            log(json.dumps({"s3_fetch": results["s3_fetch"]}))
            if "minilm" in results:
                results["refresh"] = refresh_switch(s3, work)
                log(json.dumps({"refresh": results["refresh"]}))
        finally:
            emu.stop(drain_s=1)
            s3.stop()
    results["summary"] = summary(results)
    results["load_average_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
