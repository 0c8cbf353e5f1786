"""The runtime's own log lines follow the function's log format and level, as Lambda's
runtimes do (AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL)."""

from __future__ import annotations

import json

import pytest

from modelambda.runtime import logs


def test_text_format_writes_every_record_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "Text")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "ERROR")  # Lambda filters JSON logs only
    record = json.loads(logs.event_record("init", {"init_ms": 1.0}))
    assert record == {"level": "INFO", "message": "init", "init_ms": 1.0}
    assert json.loads(logs.invocation_record({"status": 200}))["message"] == "invocation"


def test_json_format_stamps_and_filters_by_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    assert logs.event_record("init", {}) == ""
    assert logs.invocation_record({"status": 200}) == ""  # an INFO line, as Lambda drops it
    warning = json.loads(logs.event_record("cannot free /tmp", {}, level="WARNING"))
    assert warning["level"] == "WARNING" and warning["timestamp"].endswith("Z")
    assert json.loads(logs.invocation_record({"status": 500}))["level"] == "ERROR"
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL")  # JSON without a level: INFO
    assert json.loads(logs.event_record("init", {}))["message"] == "init"
    assert logs.event_record("detail", {}, level="DEBUG") == ""

    written: list[str] = []
    write = logs.keep(written.append)
    write("")
    write("x")
    assert written == ["x"]
