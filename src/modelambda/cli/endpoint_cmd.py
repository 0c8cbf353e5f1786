"""``modelambda endpoint serve|package DIR``: the model as an inference endpoint."""

from __future__ import annotations

import argparse
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


def register(sub: Any) -> None:
    p = sub.add_parser("endpoint", help=HELP, description=HELP.capitalize() + ".",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve on loopback until Ctrl-C")
    serve.add_argument("directory", type=Path, metavar="DIR")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--name", help="endpoint/model name (default: the model's)")
    serve.set_defaults(run=run)
    package = actions.add_parser("package", help="write a SageMaker model.tar.gz")
    package.add_argument("directory", type=Path, metavar="DIR")
    package.add_argument("-o", "--output", type=Path, default=Path("model.tar.gz"))
    package.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelambda.spec import load_spec

    spec = load_spec(args.directory)
    if args.action == "package":
        from modelambda.package.sagemaker import model_tarball

        digest = model_tarball(spec, args.output)
        print(f"wrote {args.output} (sha256 {digest}): upload it to S3 and create a SageMaker "
              "model with an inference image that serves it from /opt/ml/model")
        return 0
    from modelambda.local.endpoint_host import EndpointHost

    host = EndpointHost(spec, name=args.name, host=args.host, port=args.port).start()
    print(f"serving {host.name} at {host.url}: SageMaker /ping, /invocations, "
          f"/endpoints/{host.name}/invocations; v2 /v2/models/{host.name}/infer", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    host.stop()
    return 0
