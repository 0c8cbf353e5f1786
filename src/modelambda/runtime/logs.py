"""Structured logs: one JSON line per invocation that is also a CloudWatch EMF record.

Embedded Metric Format lets CloudWatch extract metrics from a log line without an API call:
the ``_aws`` block names which of the line's fields are metrics and which are dimensions, and
every other field stays searchable in Logs Insights. So a single line serves both purposes and
costs one write per invocation.
"""

from __future__ import annotations

import json
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


def stdout_writer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def invocation_record(fields: dict[str, Any]) -> str:
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": _DIMENSIONS, "Metrics": _METRICS}
            ],
        },
        "level": "INFO" if fields.get("status", 200) < 500 else "ERROR",
        "message": "invocation",
        **fields,
    }
    return json.dumps(record, separators=(",", ":"), default=str)


def event_record(message: str, fields: dict[str, Any], level: str = "INFO") -> str:
    return json.dumps({"level": level, "message": message, **fields},
                      separators=(",", ":"), default=str)
