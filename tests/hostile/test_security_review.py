"""The security review, each point a test.

- Every server binds loopback only by default: the emulator's front, each environment's
  Runtime API, the embedded S3 (moto's server, a child process), the local endpoint host; and
  ``up`` / ``endpoint serve`` default to 127.0.0.1. Read from /proc: every listening socket of
  this process tree, so a server added later without a host is caught too.
- Credentials never leak: the developer's own keys do not reach a function (it gets the local
  placeholders) nor a build manifest or template, and given credentials are in no log line,
  /health, tail log or error message. (Secrets in AWS errors: ``tests/cli/test_aws_errors.py``.)
- From inside an environment (a handler that tries, under bwrap): writing anywhere but /tmp,
  reading any home directory or ~/.aws, fail. Reaching another environment's Runtime API is
  refused: ``tests/emulator/test_fidelity.py::test_a_runtime_api_serves_only_its_own_environment``.
- Function URL auth is AWS_IAM unless ``[deploy] url_auth = "NONE"``:
  ``tests/deploy/test_template.py`` (default and NONE) and ``tests/unit/test_spec.py``; locally
  nothing is authenticated, so ``up`` beyond loopback says so (and that the functions hold your
  credentials with ``--aws-credentials``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelambda.cli.main import build_parser, main
from modelambda.cli.up_cmd import exposure_warning
from modelambda.local.endpoint_host import EndpointHost
from modelambda.local.s3server import EmbeddedS3
from modelambda.local.settings import FunctionSettings
from modelambda.spec import load_spec
from tests.emulator.conftest import Emu
from tests.hostile.frontdoor import FrontDoor
from tests.hostile.listening import listening

LOOPBACK = ("127.0.0.1", "::1")


def test_every_server_binds_loopback_only_by_default(
        iris_emu: Emu, door: FrontDoor, plain_services: dict[str, Path]) -> None:
    # GIVEN every kind of server modelambda starts, each with its defaults (iris served by
    # a warm environment: ``door`` has invoked it)
    s3 = EmbeddedS3().start()
    endpoint = EndpointHost(load_spec(plain_services["iris"])).start()
    try:
        environments = iris_emu.thread.function("iris").environments
        assert environments
        expected = {iris_emu.thread.emulator.port: "emulator", s3.port: "embedded S3",
                    endpoint.server.port: "endpoint host",
                    **{e.api.port: f"Runtime API of {e.id}" for e in environments}}
        # WHEN every listening socket of this process and its children is read from /proc
        sockets = listening()
    finally:
        endpoint.stop()
        s3.stop()
    # THEN each of them is there, and nothing listens beyond loopback
    ports = {port for _, port, _ in sockets}
    assert set(expected) <= ports, (expected, sockets)
    exposed = [(host, port, expected.get(port, f"pid {pid}")) for host, port, pid in sockets
               if host not in LOOPBACK]
    assert exposed == []


@pytest.mark.parametrize("argv", [["up", "svc"], ["endpoint", "serve", "svc"]])
def test_the_cli_binds_loopback_unless_told(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).host == "127.0.0.1"


def test_up_beyond_loopback_says_nothing_is_authenticated() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert exposure_warning(host, aws_credentials=True) is None
    line = exposure_warning("0.0.0.0", aws_credentials=False)
    assert line is not None and "no authentication" in line and "credentials" not in line
    with_keys = exposure_warning("192.0.2.10", aws_credentials=True)
    assert with_keys is not None and "hold your AWS credentials" in with_keys


DEVELOPER = {"AWS_ACCESS_KEY_ID": "AKIADEVELOPERS0WN0KEY",
             "AWS_SECRET_ACCESS_KEY": "developers-own-secret-never-in-a-function",
             "AWS_SESSION_TOKEN": "developers-own-session-token"}
GIVEN = {"AWS_ACCESS_KEY_ID": "AKIAGIVENROLE0KEY000",
         "AWS_SECRET_ACCESS_KEY": "given-role-secret-never-in-a-log",
         "AWS_SESSION_TOKEN": "given-role-session-token-never-in-a-log"}

PRINT_NOTHING = """
import os
def handler(event, context):
    if event.get("fail"):
        raise ValueError("failing as asked")
    return sorted(k for k in os.environ if k.startswith("AWS_"))
"""


def test_the_developers_credentials_never_reach_a_function(
        emu: Emu, make_function: Callable[..., FunctionSettings],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in DEVELOPER.items():
        monkeypatch.setenv(key, value)
    emu.add(make_function("""
import os
def handler(event, context):
    return dict(os.environ)
"""))
    answer = emu.client.invoke(FunctionName="fn", Payload=b"{}", LogType="Tail")
    seen = json.loads(answer["Payload"].read())
    text = json.dumps(seen) + base64.b64decode(answer["LogResult"]).decode() + \
        "\n".join(emu.lines)
    assert seen["AWS_ACCESS_KEY_ID"] != DEVELOPER["AWS_ACCESS_KEY_ID"]  # the placeholders
    assert not [v for v in DEVELOPER.values() if v in text]


def test_given_credentials_are_in_no_log_health_or_error(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    """``up --aws-credentials`` gives a function the developer's chain as its role: the
    function has them (as on Lambda) but nothing the emulator says shows them."""
    emu.add(make_function(PRINT_NOTHING, credentials=GIVEN))
    texts = []
    for payload in (b"{}", b'{"fail": true}', b"not json"):
        try:
            answer = emu.client.invoke(FunctionName="fn", Payload=payload, LogType="Tail")
            texts += [answer["Payload"].read().decode(),
                      base64.b64decode(answer.get("LogResult", "")).decode()]
        except Exception as exc:  # botocore's error for the non-JSON payload
            texts.append(str(exc))
    texts.append(json.dumps(emu.thread.describe()))
    texts += emu.lines
    assert "AWS_SECRET_ACCESS_KEY" in texts[0]  # the function has its role's variables
    leaked = [v for v in GIVEN.values() for t in texts if v in t]
    assert leaked == []


def test_credentials_in_the_environment_reach_no_manifest_or_template(
        plain_services: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    for key, value in DEVELOPER.items():
        monkeypatch.setenv(key, value)
    service = plain_services["iris"]
    template = tmp_path / "template.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["template", str(service), "-o", str(template)])
    assert code == 0, err.getvalue()
    manifests = sorted((service / ".modelambda" / "build").rglob("*.json"))
    assert manifests  # the build's manifest.json, its reuse record, ...
    texts = [template.read_text(), out.getvalue(), err.getvalue(),
             *(path.read_text() for path in manifests)]
    assert not [v for v in DEVELOPER.values() for t in texts if v in t]


# Everything a function may try to write outside /tmp; on Lambda only /tmp is writable.
WRITE_TARGETS = ["/var/x", "/var/task/x", "/var/runtime/x", "/opt/x", "/etc/x", "/x",
                 "/usr/x", "/root/x", "/home/x", "/dev/shm/x", "/dev/x", "/mnt/x"]


def test_inside_an_environment_only_tmp_is_writable_and_no_home_is_readable(
        emu: Emu, make_function: Callable[..., FunctionSettings], python312: str) -> None:
    emu.add(make_function("""
import os
def handler(event, context):
    wrote = {}
    for path in event["write"]:
        try:
            with open(path, "w") as handle:
                handle.write("x")
            wrote[path] = "written"
        except OSError as exc:
            wrote[path] = type(exc).__name__
    seen = {}
    for path in event["read"]:
        try:
            seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else \\
                open(path).read()[:20]
        except OSError as exc:
            seen[path] = type(exc).__name__
    return {"wrote": wrote, "seen": seen}
"""))
    home = os.path.expanduser("~")
    reads = [home, os.path.join(home, ".aws"), os.path.join(home, ".aws", "credentials"),
             "/root", "/home"]
    answer = emu.client.invoke(FunctionName="fn", Payload=json.dumps(
        {"write": [*WRITE_TARGETS, os.path.join(home, "x"), "/tmp/x"], "read": reads}))
    body: dict[str, Any] = json.loads(answer["Payload"].read())
    wrote = body["wrote"]
    assert wrote.pop("/tmp/x") == "written"
    assert {path: how for path, how in wrote.items() if how == "written"} == {}
    # each home is an empty directory inside, or not there at all; the one exception is the
    # way to the interpreter when it is installed in a home (e.g. pyenv's ~/.pyenv)
    interpreter = Path(os.path.realpath(python312)).parents[1]
    for path, seen in body["seen"].items():
        allowed = [interpreter.relative_to(path).parts[0]] \
            if interpreter.is_relative_to(path) else []
        assert seen in (allowed, "FileNotFoundError"), (path, seen)
