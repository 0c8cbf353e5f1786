"""Versions and aliases, as `up` publishes them: $LATEST, version 1 and an alias on it; every
way the Invoke API names a function; SnapStart on the published version only."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelambda.local.settings import FunctionSettings
from tests.emulator.conftest import Emu

WHO = """
import os
def handler(event, context):
    return {"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "arn": context.invoked_function_arn,
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
"""
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


def call(emu: Emu, name: str, **kwargs: Any) -> dict[str, Any]:
    response = emu.client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail", **kwargs)
    response["body"] = json.loads(response["Payload"].read())
    response["log"] = base64.b64decode(response["LogResult"]).decode()
    result: dict[str, Any] = response
    return result


def test_every_way_of_naming_a_version_resolves(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    emu.add(make_function(WHO))
    cases: list[tuple[str, dict[str, str], str, str]] = [
        # (FunctionName, extra arguments, executed version, ARN the function sees)
        ("fn", {}, "$LATEST", ARN),
        ("fn:$LATEST", {}, "$LATEST", f"{ARN}:$LATEST"),
        ("fn", {"Qualifier": "$LATEST"}, "$LATEST", f"{ARN}:$LATEST"),
        ("fn:1", {}, "1", f"{ARN}:1"),
        ("fn", {"Qualifier": "1"}, "1", f"{ARN}:1"),
        ("fn:live", {}, "1", f"{ARN}:live"),
        ("fn", {"Qualifier": "live"}, "1", f"{ARN}:live"),
        (ARN, {}, "$LATEST", ARN),
        (f"{ARN}:live", {}, "1", f"{ARN}:live"),
        (ARN, {"Qualifier": "1"}, "1", f"{ARN}:1"),
        ("123456789012:function:fn", {}, "$LATEST", ARN),  # partial ARNs
        ("123456789012:function:fn:live", {}, "1", f"{ARN}:live"),
        ("fn:live", {"Qualifier": "live"}, "1", f"{ARN}:live"),
    ]
    for name, extra, version, arn in cases:
        result = call(emu, name, **extra)
        assert result["ExecutedVersion"] == version, name
        assert result["body"]["version"] == version, name
        assert result["body"]["arn"] == arn, name
        assert result["body"]["stream"].endswith(f"[{version}]modelambda")
        assert f"START RequestId: {result['ResponseMetadata']['RequestId']} Version: " \
               f"{version}" in result["log"]
    # each version has environments of its own, as on Lambda
    assert sorted(e["version"] for e in emu.environments("fn")) == ["$LATEST", "1"]
    health = emu.thread.describe()["functions"][0]
    assert health["versions"] == ["$LATEST", "1"] and health["aliases"] == {"live": "1"}

    for name, extra in (("fn:2", {}), ("fn:prod", {}), ("fn", {"Qualifier": "prod"}),
                        ("123456789012:function:fn:2", {})):
        with pytest.raises(ClientError) as info:
            call(emu, name, **extra)
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException", name
    with pytest.raises(ClientError) as info:
        call(emu, "fn:live", Qualifier="1")
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_the_alias_is_the_specs_and_the_function_url_is_on_it(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    emu.add(make_function(WHO, alias="prod"))
    assert call(emu, "fn:prod")["ExecutedVersion"] == "1"
    with pytest.raises(ClientError):
        call(emu, "fn:live")
    with urllib.request.urlopen(f"{emu.url}/fn/fn/", timeout=30) as response:
        body = json.loads(response.read())
    assert body["version"] == "1" and body["arn"] == f"{ARN}:prod"


def test_snapstart_restores_published_versions_only(
        emu: Emu, make_function: Callable[..., FunctionSettings]) -> None:
    emu.add(make_function(WHO, snapstart=True))
    latest = next(line for line in call(emu, "fn")["log"].splitlines()
                  if line.startswith("REPORT"))
    assert "\tInit Duration: " in latest and "Restore Duration" not in latest
    published = next(line for line in call(emu, "fn:live")["log"].splitlines()
                     if line.startswith("REPORT"))
    assert "\tRestore Duration: " in published and "Init Duration" not in published
    # the snapshot is version 1's: its environment variables say so
    assert call(emu, "fn:1")["body"]["version"] == "1"
