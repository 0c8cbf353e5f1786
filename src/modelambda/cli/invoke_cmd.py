"""``modelambda invoke NAME_OR_DIR (--data JSON | --event FILE)``: call a function once.

When a running emulator serves the function (``modelambda up``; the most recently started one
if several do), or ``$MODELAMBDA_ENDPOINT`` names one, the call goes through its Invoke API,
exactly as boto3 would make it, to the function's alias (as ``--aws`` calls the deployed one)
when the emulator says which it is. Otherwise, for a service directory, the handler runs in this
process (a cold init, then the event): the same code that runs inside Lambda. With ``--aws``
the deployed function's alias is called through boto3's Lambda client (``Invoke`` with the
log tail). Either way the response payload goes to stdout as JSON and the REPORT line to
stderr; a function error prints Lambda's error payload and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HELP = "invoke a function with an inference request or a raw Lambda event"
EPILOG = """examples:
  modelambda invoke examples/iris --data '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
  modelambda invoke examples/iris --data @examples/iris/request.json
  modelambda invoke examples/iris --event tests/events/function-url.json
  modelambda invoke iris --data @examples/iris/request.json     # a running emulator's function
  modelambda invoke examples/iris --aws --data @examples/iris/request.json   # the deployed alias
  modelambda invoke iris --aws --region eu-west-1 --qualifier live --data @request.json
"""


def register(sub: Any) -> None:
    p = sub.add_parser("invoke", help=HELP, description=HELP.capitalize() + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", type=Path, metavar="NAME_OR_DIR",
                   help="a function running on the emulator, or a service directory")
    p.add_argument("--local", action="store_true",
                   help="run a service directory in this process even if an emulator runs")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", metavar="JSON",
                      help="the request as JSON, or @FILE to read it from a file (direct invoke)")
    what.add_argument("--event", type=Path, metavar="FILE",
                      help="a raw Lambda event as a JSON file (API Gateway, Function URL, ...)")
    aws = p.add_argument_group("AWS (--aws)")
    aws.add_argument("--aws", action="store_true",
                     help="call the function deployed on AWS (its alias) through boto3")
    aws.add_argument("--qualifier", metavar="ALIAS",
                     help="the alias or version to call (default: [deploy] alias for a "
                          "service directory, else 'live')")
    from modelambda.cli.deploy_cmd import add_aws_arguments

    add_aws_arguments(aws, stack=False)
    p.set_defaults(run=run)


def _read_json(text: str | bytes, what: str) -> Any:
    """JSON from the command line or a file's bytes (UTF-8, -16 or -32, as RFC 8259 allows;
    anything else is not valid JSON, said in one line)."""
    from modelambda.errors import UsageError

    try:
        return json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError included
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise UsageError(f"{what} is not usable JSON: nested too deeply") from exc


def load_payload(args: argparse.Namespace) -> Any:
    from modelambda.errors import UsageError

    if args.event is not None:
        if not args.event.is_file():
            raise UsageError(f"--event {args.event}: no such file")
        return _read_json(args.event.read_bytes(), f"--event {args.event}")
    data: str = args.data
    if data.startswith("@"):
        file = Path(data[1:])
        if not file.is_file():
            raise UsageError(f"--data {data}: no such file")
        return _read_json(file.read_bytes(), f"--data {data}")
    return _read_json(data, "--data")


class _Context:
    """The parts of Lambda's context object the runtime reads."""

    def __init__(self, function_name: str) -> None:
        import uuid

        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name


def run(args: argparse.Namespace) -> int:
    from modelambda.errors import UsageError
    from modelambda.local.state import find, running
    from modelambda.spec import load_spec

    payload = load_payload(args)
    if args.aws:
        return _aws(args, payload)
    if args.local and (args.region or args.profile or args.endpoint_url or args.qualifier):
        raise UsageError("--region, --profile, --endpoint-url and --qualifier go with --aws")
    if args.target.is_dir():
        spec = load_spec(args.target)
        emulator = None if args.local else find(spec.service.name)
        if emulator is not None:
            return _remote(emulator["url"], _qualified(emulator, spec.service.name), payload)
        return _in_process(spec, payload)
    name = str(args.target)
    if args.local:
        raise UsageError(f"--local runs a service directory, and {name} is not one")
    emulator = find(name)
    if emulator is None:
        others = running()
        if others:
            serving = "; ".join(f"{r['url']}: {', '.join(r['functions']) or 'nothing'}"
                                for r in others)
            raise UsageError(f"no running emulator serves {name!r} ({serving})")
        raise UsageError(f"{args.target} is not a service directory and no emulator is running: "
                         "start one with 'modelambda up DIR' (or set MODELAMBDA_ENDPOINT)")
    return _remote(emulator["url"], _qualified(emulator, name), payload)


def _qualified(emulator: dict[str, Any], name: str) -> str:
    """``name:alias`` when the emulator's record names the function's alias (``up`` does)."""
    alias = (emulator.get("aliases") or {}).get(name)
    return f"{name}:{alias}" if isinstance(alias, str) and alias else name


def _remote(url: str, name: str, payload: Any) -> int:
    """Call the emulator's Invoke API with Tail logs; print payload and REPORT line."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    from modelambda.errors import UsageError

    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations",
        data=json.dumps(payload).encode(), method="POST",
        headers={"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=960) as response:
            body, headers = response.read(), response.headers
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise UsageError(f"{exc.headers.get('x-amzn-ErrorType', exc.code)}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise UsageError(f"cannot reach the emulator at {url}: {exc.reason}") from exc
    print(body.decode("utf-8", "replace"))
    log = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode("utf-8", "replace")
    report = [line for line in log.splitlines() if line.startswith("REPORT")]
    if report:
        print(report[-1], file=sys.stderr)
    return 1 if headers.get("X-Amz-Function-Error") else 0


def _in_process(spec: Any, payload: Any) -> int:
    from modelambda.runtime.app import App
    from modelambda.runtime.errors import ModelambdaError
    from modelambda.runtime.paths import Paths
    from modelambda.spec import compile_runtime_config

    def to_stderr(line: str) -> None:
        print(line, file=sys.stderr)

    start = time.perf_counter()
    app = App(compile_runtime_config(spec), Paths.from_environment(), log=to_stderr)
    init_ms = (time.perf_counter() - start) * 1000
    context = _Context(spec.service.name)
    start = time.perf_counter()
    try:
        result = app.handle(payload, context)
        failed = False
    except ModelambdaError as exc:
        result = {"errorMessage": str(exc), "errorType": exc.error_type,
                  "requestId": context.aws_request_id,
                  "stackTrace": traceback.format_tb(exc.__traceback__)}
        failed = True
    duration_ms = (time.perf_counter() - start) * 1000
    print(json.dumps(result))
    print(f"REPORT RequestId: {context.aws_request_id}\tDuration: {duration_ms:.2f} ms\t"
          f"Init Duration: {init_ms:.2f} ms\t(in-process)", file=sys.stderr)
    return 1 if failed else 0


def _aws(args: argparse.Namespace, payload: Any) -> int:
    """Invoke the deployed alias with the log tail: payload on stdout, REPORT on stderr."""
    import base64

    from modelambda.cli.deploy_cmd import make_clients
    from modelambda.errors import UsageError
    from modelambda.spec import load_spec

    if args.local:
        raise UsageError("--local and --aws exclude each other")
    if args.target.is_dir():
        spec: Any = load_spec(args.target)
        name, qualifier = spec.service.name, args.qualifier or spec.deploy.alias
    else:
        from modelambda.spec import Deploy

        spec = argparse.Namespace(deploy=Deploy())
        name, qualifier = str(args.target), args.qualifier or Deploy().alias
    clients = make_clients(args, spec)
    try:
        clients.require_credentials()
        started = time.perf_counter()
        response = clients.client("lambda").invoke(
            FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload).encode(),
            LogType="Tail")
        body = response["Payload"].read()
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        clients.close()
    print(body.decode("utf-8", "replace"))
    log = base64.b64decode(response.get("LogResult") or "").decode("utf-8", "replace")
    report = [line for line in log.splitlines() if line.startswith("REPORT")]
    if report:
        print(report[-1], file=sys.stderr)
    version = response.get("ExecutedVersion", "?")
    print(f"invoke: {name}:{qualifier} (version {version}) in {clients.describe()}: "
          f"{elapsed_ms:.1f} ms round trip" + ("" if report else "; no REPORT line in the "
                                                "log tail"), file=sys.stderr)
    return 1 if response.get("FunctionError") else 0
