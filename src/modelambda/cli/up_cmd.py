"""``modelambda up DIR [DIR...]``: run services on the local Lambda emulator until stopped."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

HELP = "run services locally on the Lambda emulator (Invoke API + Function URLs)"
EPILOG = """examples:
  modelambda up examples/iris
  modelambda up examples/iris examples/minilm-embeddings --port 9000
  modelambda up examples/iris --strategy layer

then, from another terminal:
  curl -s http://127.0.0.1:9000/fn/iris/ -d @examples/iris/request.json
  modelambda invoke iris --data @examples/iris/request.json
  python -c "import boto3; print(boto3.client('lambda', endpoint_url='http://127.0.0.1:9000',
      region_name='us-east-1').invoke(FunctionName='iris', Payload=b'...')['Payload'].read())"
"""


def register(sub: Any) -> None:
    p = sub.add_parser("up", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directories", type=Path, nargs="+", metavar="DIR", help="service directories")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="endpoint strategy: call this server (e.g. a running MLServer) "
                        "instead of starting the local endpoint host")
    p.add_argument("--strategy", choices=("bundle", "layer", "image", "s3", "efs", "endpoint"),
                   help="build and run this strategy's artifacts (default: the spec's)")
    p.add_argument("--port", type=int, default=9000, help="port of the front door (default 9000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--max-environments", type=int, default=8, metavar="N",
                   help="concurrency limit for functions without reserved_concurrency")
    p.add_argument("--idle-timeout", type=float, default=300.0, metavar="S",
                   help="reap environments idle for this many seconds (default 300)")
    p.add_argument("--python", metavar="PATH",
                   help="run with this interpreter even if it is not the spec's runtime version")
    p.add_argument("--no-sandbox", action="store_true",
                   help="plain processes instead of bubblewrap (less isolation)")
    p.add_argument("--no-warmup", action="store_true",
                   help="do not send each service's request.json once at start")
    p.set_defaults(run=run)


def _needs_embedded_s3(args: argparse.Namespace) -> bool:
    """The s3 strategy runs against the embedded S3 unless this shell names an endpoint."""
    import os

    from modelambda.spec import load_spec

    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return False
    return any((args.strategy or load_spec(d).strategy.kind) == "s3" for d in args.directories)


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import UsageError
    from modelambda.local.s3server import EmbeddedS3
    from modelambda.local.services import function_for

    if args.port < 0 or args.port > 65535:
        raise UsageError(f"--port {args.port}: must be 0..65535")
    s3 = EmbeddedS3().start() if _needs_embedded_s3(args) else None
    if s3 is not None:
        print(f"embedded S3 (moto) at {s3.url}", flush=True)
    hosts: list[Any] = []
    try:
        functions = []
        for directory in args.directories:
            endpoint_url = args.endpoint_url or _endpoint_host(args, directory, hosts)
            settings, spec = function_for(directory, strategy=args.strategy,
                                          python=args.python,
                                          use_bwrap=False if args.no_sandbox else None,
                                          log=lambda line: print(f"build: {line}", flush=True),
                                          s3=s3, endpoint_url=endpoint_url)
            functions.append((settings, spec))
        names = [s.name for s, _ in functions]
        if len(set(names)) != len(names):
            raise UsageError(f"two services have the same name: {names}")
        return asyncio.run(_serve(args, functions))
    finally:
        for host in hosts:
            host.stop()
        if s3 is not None:
            s3.stop()


def _endpoint_host(args: argparse.Namespace, directory: Path, hosts: list[Any]) -> str | None:
    """For the endpoint strategy, start the local endpoint host serving the model."""
    from modelambda.local.endpoint_host import EndpointHost
    from modelambda.spec import load_spec

    spec = load_spec(directory)
    if (args.strategy or spec.strategy.kind) != "endpoint":
        return None
    host = EndpointHost(spec, name=spec.strategy.settings.get("name")).start()
    hosts.append(host)
    print(f"{spec.service.name}: local endpoint host at {host.url} (SageMaker and v2)",
          flush=True)
    return host.url


async def _serve(args: argparse.Namespace, functions: list[Any]) -> int:
    from modelambda.local.emulator import Emulator
    from modelambda.local.results import Invocation
    from modelambda.local.state import clear_state, write_state

    emulator = Emulator(args.host, args.port, max_environments=args.max_environments,
                        idle_timeout_s=args.idle_timeout)
    try:
        await emulator.start()
    except OSError as exc:
        print(f"modelambda up: cannot listen on {args.host}:{args.port}: {exc.strerror}; "
              "pick another --port", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for settings, spec in functions:
        emulator.add_function(settings, [spec.model.name])
        print(f"{settings.name}: Invoke API {emulator.url} (FunctionName={settings.name})\n"
              f"{' ' * len(settings.name)}  Function URL {emulator.url}/fn/{settings.name}/\n"
              f"{' ' * len(settings.name)}  v2 protocol {emulator.url}/v2/models/"
              f"{spec.model.name}/infer", flush=True)
    write_state(emulator.url, [s.name for s, _ in functions])
    try:
        if not args.no_warmup:
            for settings, spec in functions:
                request = spec.root / "request.json"
                if request.is_file():
                    start = time.perf_counter()
                    result = await emulator.functions[settings.name].invoke(
                        Invocation(request.read_bytes()))
                    ms = (time.perf_counter() - start) * 1000
                    status = "ERROR " if result.function_error else ""
                    print(f"{settings.name} answered {request} ({ms:.0f} ms, cold): {status}"
                          f"{_short(result.payload)}", flush=True)
        print(f"modelambda: ready on {emulator.url} ({len(functions)} function(s)); "
              "Ctrl-C to stop", flush=True)
        await stop.wait()
        print("modelambda: stopping: draining in-flight requests", flush=True)
    finally:
        await emulator.stop()
        clear_state()
    print("modelambda: stopped", flush=True)
    return 0


def _short(payload: bytes, limit: int = 200) -> str:
    try:
        text = json.dumps(json.loads(payload))
    except ValueError:
        text = payload.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
