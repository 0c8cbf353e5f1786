"""Structured logs: one JSON line per invocation that is also a CloudWatch EMF record.

Embedded Metric Format lets CloudWatch extract metrics from a log line without an API call:
the ``_aws`` block names which of the line's fields are metrics and which are dimensions, and
every other field stays searchable in Logs Insights. So a single line serves both purposes and
costs one write per invocation.

They follow the function's logging configuration, as Lambda's runtimes do: with
``AWS_LAMBDA_LOG_FORMAT=JSON`` every record carries a ``timestamp`` and records below
``AWS_LAMBDA_LOG_LEVEL`` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL; Lambda sets it only in JSON
format) are left out, the per-invocation record (INFO) included, as Lambda filters JSON lines
by their ``level``. In Text format (the default) every record is written, without a level
filter, as Lambda does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

NAMESPACE = "modelambda"
_METRICS = [
    {"Name": "decode_ms", "Unit": "Milliseconds"},
    {"Name": "predict_ms", "Unit": "Milliseconds"},
    {"Name": "encode_ms", "Unit": "Milliseconds"},
    {"Name": "batch_size", "Unit": "Count"},
    {"Name": "cold_start", "Unit": "Count"},
]
_DIMENSIONS = [["function_name"], ["function_name", "model_version"]]

Writer = Callable[[str], Any]

_LEVELS = {"TRACE": 0, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40,
           "FATAL": 50, "CRITICAL": 50}


def json_format() -> bool:
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def enabled(level: str) -> bool:
    """Whether a record of ``level`` is written under the function's log settings."""
    if not json_format():
        return True
    threshold = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    return _LEVELS.get(level.upper(), 20) >= _LEVELS.get(threshold, 20)


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def keep(writer: Writer) -> Writer:
    """``writer``, skipping the empty lines that stand for records the level left out."""
    def write(line: str) -> Any:
        return writer(line) if line else None

    return write


def stdout_writer(line: str) -> None:
    if not line:
        return
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def invocation_record(fields: dict[str, Any]) -> str:
    """The per-invocation EMF record ("" when the log level leaves it out)."""
    level = "INFO" if fields.get("status", 200) < 500 else "ERROR"
    if not enabled(level):
        return ""
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": _DIMENSIONS, "Metrics": _METRICS}
            ],
        },
        "level": level,
        "message": "invocation",
        **fields,
    }
    if json_format():
        record["timestamp"] = _timestamp()
    return json.dumps(record, separators=(",", ":"), default=str)


def event_record(message: str, fields: dict[str, Any], level: str = "INFO") -> str:
    """One event of the runtime's ("" when the log level leaves it out)."""
    if not enabled(level):
        return ""
    head = {"timestamp": _timestamp()} if json_format() else {}
    return json.dumps({**head, "level": level, "message": message, **fields},
                      separators=(",", ":"), default=str)
