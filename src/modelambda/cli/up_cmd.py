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
  modelambda up examples/iris --strategy s3        # any of the six strategies, no spec edit

then, from another terminal:
  curl -s http://127.0.0.1:9000/fn/iris/ -d @examples/iris/request.json
  modelambda invoke iris --data @examples/iris/request.json   # the alias, as deployed
  python -c "import boto3; print(boto3.client('lambda', endpoint_url='http://127.0.0.1:9000',
      region_name='us-east-1', aws_access_key_id='local', aws_secret_access_key='local')
      .invoke(FunctionName='iris:live', Payload=open('examples/iris/request.json', 'rb').read())
      ['Payload'].read())"
  (the emulator accepts any credentials; boto3 only needs some to sign with)

each function runs as $LATEST, as version 1 and as its alias ([deploy] alias, default live,
pointing at 1), as Lambda does after a deploy: 'iris' alone is $LATEST (no SnapStart there);
'iris:live', 'iris:1', Qualifier= and ARNs name the others; the Function URL is the alias's.
"""


def register(sub: Any) -> None:
    from modelambda import strategies

    p = sub.add_parser("up", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directories", type=Path, nargs="+", metavar="DIR", help="service directories")
    p.add_argument("--strategy", choices=strategies.names(),
                   help="build and run this strategy's artifacts, with local defaults for what "
                        "the spec does not name (default: the spec's [strategy])")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="endpoint strategy: call this server (e.g. a running MLServer) "
                        "instead of starting the local endpoint host")
    p.add_argument("--port", type=int, default=9000, help="port of the front door (default 9000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--max-environments", type=int, default=8, metavar="N",
                   help="concurrency limit for functions without reserved_concurrency "
                        "(default 8)")
    p.add_argument("--idle-timeout", type=float, default=300.0, metavar="S",
                   help="reap environments idle for this many seconds (default 300)")
    p.add_argument("--python", metavar="PATH",
                   help="run with this interpreter even if it is not the spec's runtime version")
    p.add_argument("--no-sandbox", action="store_true",
                   help="plain processes instead of bubblewrap (less isolation)")
    p.add_argument("--no-cgroups", action="store_true",
                   help="no control groups: every environment gets the whole machine's CPU at any "
                        "memory size and memory is polled, not enforced (default: on where "
                        "cgroups are writable; MODELAMBDA_CGROUPS=off does the same)")
    p.add_argument("--no-warmup", action="store_true",
                   help="do not send each service's request.json once at start")
    p.add_argument("--aws-credentials", action="store_true",
                   help="give every environment your own AWS credentials (boto3's chain, "
                        "read once at start) as its execution role's, so hooks reach real AWS "
                        "services; default: local placeholders, which the embedded S3 takes"
                        )
    p.set_defaults(run=run)


def _check_port(host: str, port: int) -> None:
    """Fail before any build when the port is taken (a build can take minutes)."""
    import socket

    from modelambda.errors import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: must be 0..65535")
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another "
                             "--port") from exc


def exposure_warning(host: str, aws_credentials: bool) -> str | None:
    """The line ``up`` prints when it listens beyond loopback: nothing it serves asks who is
    calling (``[deploy] url_auth`` is enforced by AWS, not here)."""
    import ipaddress

    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name
        if host == "localhost":
            return None
    line = (f"modelambda up: WARNING: listening on {host}, beyond loopback: anyone who can "
            "reach it can invoke your functions, their Function URLs and the console, with "
            "no authentication (url_auth applies on AWS only)")
    if aws_credentials:
        line += "; and the functions hold your AWS credentials (--aws-credentials)"
    return line


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import UsageError
    from modelambda.local.resources import LocalServices
    from modelambda.local.services import aws_chain_credentials, function_for
    from modelambda.spec import load_spec

    _check_port(args.host, args.port)
    warning = exposure_warning(args.host, args.aws_credentials)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    from modelambda.local.eventloop import loop_factory

    try:
        make_loop = loop_factory()  # uvloop when installed; checked before any build
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    credentials = None
    if args.aws_credentials:
        credentials, source = aws_chain_credentials()
        print(f"modelambda: environments get your AWS credentials ({source})", flush=True)
    # parsed once, checked for the chosen strategy before anything is built or started
    specs = [load_spec(directory).for_strategy(args.strategy) for directory in args.directories]
    names = [spec.service.name for spec in specs]
    if len(set(names)) != len(names):
        raise UsageError(f"two services have the same name: {names}")
    with LocalServices(endpoint_url=args.endpoint_url,
                       log=lambda line: print(line, flush=True)) as services:
        functions = []
        for spec in specs:
            settings, spec = function_for(spec, services, python=args.python,
                                          use_bwrap=False if args.no_sandbox else None,
                                          log=lambda line: print(f"build: {line}", flush=True),
                                          credentials=credentials)
            functions.append((settings, spec))
        with asyncio.Runner(loop_factory=make_loop) as runner:
            return runner.run(_serve(args, functions, services))


async def _serve(args: argparse.Namespace, functions: list[Any], services: Any) -> int:
    from modelambda.local import state
    from modelambda.local.console import Service
    from modelambda.local.emulator import Emulator
    from modelambda.local.results import Invocation

    emulator = Emulator(args.host, args.port, max_environments=args.max_environments,
                        idle_timeout_s=args.idle_timeout,
                        cgroups=False if args.no_cgroups else None)
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
        emulator.add_function(settings, [spec.model.name], Service.of(spec, services))
        pad = " " * len(settings.name)
        print(f"{settings.name}: strategy {spec.strategy.kind}\n"
              f"{pad}  Invoke API {emulator.url} (FunctionName={settings.name}:"
              f"{settings.alias} -> version 1; {settings.name} = $LATEST)\n"
              f"{pad}  Function URL {emulator.url}/fn/{settings.name}/\n"
              f"{pad}  v2 protocol {emulator.url}/v2/models/{spec.model.name}/infer", flush=True)
    print(emulator.isolation_line(), flush=True)
    extras: dict[str, Any] = {"aliases": {s.name: s.alias for s, _ in functions}}
    if services.s3_url:
        extras["s3_url"] = services.s3_url
    state.register(emulator.url, [s.name for s, _ in functions], extras)
    try:
        if not args.no_warmup:
            for settings, spec in functions:
                request = spec.root / "request.json"
                if request.is_file():
                    start = time.perf_counter()
                    function = emulator.functions[settings.name]
                    # what callers use: the alias (its Function URL too)
                    result = await function.invoke(Invocation(
                        request.read_bytes(), version=function.aliases[settings.alias],
                        function_arn=f"{settings.arn}:{settings.alias}"))
                    ms = (time.perf_counter() - start) * 1000
                    status = "ERROR " if result.function_error else ""
                    print(f"{settings.name} answered {request} ({ms:.0f} ms, cold): {status}"
                          f"{_short(result.payload)}", flush=True)
        print(f"modelambda: ready on {emulator.url} ({len(functions)} function(s)); "
              f"console {emulator.url}/ ; Ctrl-C to stop", flush=True)
        await stop.wait()
        print("modelambda: stopping: draining in-flight requests", flush=True)
    finally:
        await emulator.stop()
        state.unregister(emulator.url)
    print("modelambda: stopped", flush=True)
    return 0


def _short(payload: bytes, limit: int = 200) -> str:
    try:
        text = json.dumps(json.loads(payload))
    except ValueError:
        text = payload.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
