"""``modelambda endpoint serve|package DIR``: the model as an inference endpoint."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

HELP = "serve a model as an inference endpoint (SageMaker and v2), or package it for SageMaker"
EPILOG = """examples:
  modelambda endpoint serve examples/iris --port 8080
  curl -s localhost:8080/v2/models/iris/infer -d '{"inputs": [{"name": "input",
       "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'
  modelambda endpoint package examples/iris -o model.tar.gz
"""
SERVE_EPILOG = """examples:
  modelambda endpoint serve examples/iris --port 8080
  curl -s localhost:8080/ping
  curl -s localhost:8080/invocations -H 'Content-Type: application/json' \\
       -d @examples/iris/request.json
"""
PACKAGE_EPILOG = """examples:
  modelambda endpoint package examples/iris -o model.tar.gz
  aws s3 cp model.tar.gz s3://my-bucket/iris/model.tar.gz
"""


def register(sub: Any) -> None:
    p = sub.add_parser("endpoint", help=HELP, description=HELP.capitalize() + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve", help="serve on loopback until Ctrl-C",
        description="Serve the model on loopback until Ctrl-C: SageMaker's /ping and "
                    "/invocations, and the v2 protocol.",
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    serve.add_argument("--port", type=int, default=8080, help="default 8080; 0 picks a free one")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: loopback only)")
    serve.add_argument("--name", help="endpoint/model name (default: the model's)")
    serve.set_defaults(run=run)
    package = actions.add_parser(
        "package", help="write a SageMaker model.tar.gz",
        description="Write the model as a SageMaker model.tar.gz (with a manifest of sha256s).",
        epilog=PACKAGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    package.add_argument("directory", type=Path, metavar="DIR", help="the service directory")
    package.add_argument("-o", "--output", type=Path, default=Path("model.tar.gz"),
                         help="the file to write (default model.tar.gz)")
    package.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import UsageError
    from modelambda.spec import load_spec

    if args.action == "serve" and not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be 0..65535")
    spec = load_spec(args.directory)
    if args.action == "package":
        from modelambda.package.sagemaker import model_tarball

        if args.output.is_dir():
            raise UsageError(f"-o {args.output} is a directory; name the file to write, e.g. "
                             f"-o {args.output / 'model.tar.gz'}")
        try:
            digest = model_tarball(spec, args.output)
        except OSError as exc:
            raise UsageError(f"-o {args.output}: cannot write it: "
                             f"{exc.strerror or exc}") from exc
        print(f"wrote {args.output} (sha256 {digest}): upload it to S3 and create a SageMaker "
              "model with an inference image that serves it from /opt/ml/model")
        return 0
    from modelambda.local.endpoint_host import EndpointHost

    host = EndpointHost(spec, name=args.name, host=args.host, port=args.port)
    try:
        host.start()
    except OSError as exc:
        with contextlib.suppress(Exception):
            host.stop()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}; pick another --port") from exc
    print(f"serving {host.name} at {host.url}: SageMaker /ping, /invocations, "
          f"/endpoints/{host.name}/invocations; v2 /v2/models/{host.name}/infer", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    host.stop()
    return 0
