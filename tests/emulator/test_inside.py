"""What a function sees inside its environment, as on Lambda: its own variables, the execution
role's credentials (so boto3 in a hook works), its own layers under /opt, external
extensions, and the log format and level."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelambda.local.s3server import EmbeddedS3
from modelambda.local.settings import LOCAL_CREDENTIALS, FunctionSettings
from tests.emulator.conftest import Emu


def call(emu: Emu, name: str = "fn", payload: Any = None, **kwargs: Any) -> Any:
    response = emu.client.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kwargs)
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


@pytest.fixture(scope="module")
def s3() -> Iterator[EmbeddedS3]:
    server = EmbeddedS3().start()
    yield server
    server.stop()


# A hook that uses boto3 as on Lambda: no credentials in code, the client finds them (and the
# region) in the environment.
BOTO3_HOOK = """
import os
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="made-by-the-hook")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    return {"buckets": names, "greeting": os.environ["GREETING"],
            "seen": {k: os.environ.get(k) for k in (
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_REGION")}}
"""


def test_variables_and_the_roles_credentials_reach_boto3_in_a_hook(
        emu: Emu, make_function: Callable[..., FunctionSettings], s3: EmbeddedS3) -> None:
    emu.add(make_function(BOTO3_HOOK, environment={
        "GREETING": "hello", "AWS_ENDPOINT_URL_S3": s3.url}))
    body = call(emu)
    assert body["greeting"] == "hello"
    assert "made-by-the-hook" in body["buckets"]
    assert body["seen"] == {**LOCAL_CREDENTIALS, "AWS_REGION": "us-east-1"}
    # never in the emulator's own log
    assert not any(LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"] in line for line in emu.lines)


def test_given_credentials_replace_the_placeholders_and_the_strategys(
        make_function: Callable[..., FunctionSettings]) -> None:
    mine = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "eu-west-1"}
    settings = make_function("def handler(e, c):\n    return 1\n", credentials=mine,
                             environment={"AWS_ACCESS_KEY_ID": "modelambda-local",
                                          "AWS_SECRET_ACCESS_KEY": "local", "X": "1"})
    env = settings.lambda_environment("127.0.0.1:1", "on-demand")
    assert {k: env.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                    "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                                    "X")} == {
        **mine, "AWS_SESSION_TOKEN": None, "AWS_DEFAULT_REGION": "eu-west-1", "X": "1"}
    assert "secret" not in repr(settings)
    # a strategy that passes this shell's credentials (a real S3): kept, no placeholder token
    shell = make_function("def handler(e, c):\n    return 1\n", name="shell", environment={
        "AWS_ACCESS_KEY_ID": "AKIDSHELL", "AWS_SECRET_ACCESS_KEY": "s"})
    env = shell.lambda_environment("127.0.0.1:1", "on-demand")
    assert env["AWS_ACCESS_KEY_ID"] == "AKIDSHELL" and "AWS_SESSION_TOKEN" not in env


def test_up_aws_credentials_reads_the_chain_without_showing_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelambda.errors import UsageError
    from modelambda.local.services import aws_chain_credentials

    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDCHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "chain-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    variables, source = aws_chain_credentials()
    assert variables == {"AWS_ACCESS_KEY_ID": "AKIDCHAIN", "AWS_SECRET_ACCESS_KEY":
                         "chain-secret", "AWS_SESSION_TOKEN": "chain-token",
                         "AWS_REGION": "ap-south-1"}
    assert source == "env"  # where they came from, never what they are
    assert "AKIDCHAIN" not in source and "chain-secret" not in source
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UsageError, match="no AWS credentials found"):
        aws_chain_credentials()


def test_the_log_format_and_level_reach_the_runtime(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    emu.add(make_function("""
import logging, os
def handler(event, context):
    logging.getLogger().info("quiet")
    logging.getLogger().warning("loud")
    return [os.environ.get("AWS_LAMBDA_LOG_FORMAT"), os.environ.get("AWS_LAMBDA_LOG_LEVEL")]
""", log_format="JSON", log_level="WARN"))
    import base64

    response = emu.client.invoke(FunctionName="fn", Payload=b"{}", LogType="Tail")
    assert json.loads(response["Payload"].read()) == ["JSON", "WARN"]
    log = base64.b64decode(response["LogResult"]).decode()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [r["message"] for r in records] == ["loud"]  # awslambdaric's JSON, filtered
    assert records[0]["level"] == "WARNING" and records[0]["requestId"]


# A typical external extension: registers for INVOKE and SHUTDOWN, then loops on next; after
# each INVOKE it works 0.3 s more (e.g. flushing telemetry), which Lambda bills to the
# invocation; on SHUTDOWN it writes where it can be seen and exits.
EXTENSION = """#!{python} -S
import json, os, sys, time, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
request = urllib.request.Request(base + "/register", method="POST",
                                 data=json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}).encode(),
                                 headers={{"Lambda-Extension-Name": "recorder"}})
with urllib.request.urlopen(request) as answer:
    me = answer.headers["Lambda-Extension-Identifier"]
    print("recorder registered for", json.loads(answer.read())["functionName"], flush=True)
while True:
    request = urllib.request.Request(base + "/event/next",
                                     headers={{"Lambda-Extension-Identifier": me}})
    with urllib.request.urlopen(request) as answer:
        event = json.loads(answer.read())
    print("recorder got", event["eventType"], event.get("requestId", ""), flush=True)
    if event["eventType"] == "SHUTDOWN":
        with open("/mnt/out/shutdown", "w") as out:
            out.write(event["shutdownReason"])
        sys.exit(0)
    time.sleep(0.3)
"""


def test_an_external_extension_registers_gets_its_events_and_its_time_is_billed(
        make_function: Callable[..., FunctionSettings], tmp_path: Path, python312: str) -> None:
    import base64

    opt = tmp_path / "opt"
    (opt / "extensions").mkdir(parents=True)
    extension = opt / "extensions" / "recorder"
    extension.write_text(EXTENSION.format(python=python312))
    extension.chmod(0o755)
    (opt / "extensions" / "README").write_text("not executable: not an extension")
    out = tmp_path / "out"
    out.mkdir()
    emu = Emu()
    try:
        emu.add(make_function("def handler(e, c):\n    return 'fast'\n", opt_dir=opt,
                              mounts={"/mnt/out": out}))
        for cold in (True, False):
            response = emu.client.invoke(FunctionName="fn", Payload=b"{}", LogType="Tail")
            assert json.loads(response["Payload"].read()) == "fast"
            log = base64.b64decode(response["LogResult"]).decode()
            request_id = response["ResponseMetadata"]["RequestId"]
            assert f"recorder got INVOKE {request_id}" in log
            assert ("recorder registered for fn" in log) is cold  # during init
            report = next(line for line in log.splitlines() if line.startswith("REPORT"))
            duration = float(report.split("\tDuration: ")[1].split(" ms")[0])
            assert duration >= 300  # the extension's work after the response counts
        (env,) = emu.environments("fn")
        assert env["extensions"] == ["recorder"]
    finally:
        emu.stop(drain_s=1)
    # a spun-down environment's extension gets SHUTDOWN before it is stopped
    assert (out / "shutdown").read_text() == "spindown"


def test_an_extension_that_fails_its_init_fails_the_init(
        emu: Emu, make_function: Callable[..., FunctionSettings], tmp_path: Path,
        python312: str) -> None:
    opt = tmp_path / "opt"
    (opt / "extensions").mkdir(parents=True)
    failing = opt / "extensions" / "broken"
    failing.write_text(f"""#!{python312} -S
import json, os, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
request = urllib.request.Request(base + "/register", method="POST", data=b'{{"events": []}}',
                                 headers={{"Lambda-Extension-Name": "broken"}})
me = urllib.request.urlopen(request).headers["Lambda-Extension-Identifier"]
urllib.request.urlopen(urllib.request.Request(
    base + "/init/error", method="POST", data=b'{{"errorMessage": "no config"}}',
    headers={{"Lambda-Extension-Identifier": me,
             "Lambda-Extension-Function-Error-Type": "Extension.ConfigInvalid"}}))
""")
    failing.chmod(0o755)
    emu.add(make_function("def handler(e, c):\n    return 1\n", opt_dir=opt))
    response = emu.client.invoke(FunctionName="fn", Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Extension.ConfigInvalid" and body["errorMessage"] == "no config"
