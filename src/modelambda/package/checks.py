"""Lambda's size limits checked against a build, before anything is uploaded. Pure functions.

A failed check names the limit, the total, the margin, the biggest contributors and what
would fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelambda import limits
from modelambda.errors import ModelambdaError

# The AWS Lambda Python base image (public.ecr.aws/lambda/python:3.12), uncompressed, rounded
# up: what an image adds before the function's own files.
BASE_IMAGE_BYTES = 600 * limits.MB


@dataclass
class Check:
    name: str
    limit: int
    value: int
    unit: str = "bytes"
    severity: str = "error"  # "error": the artifact is refused; "note": it works another way
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    @property
    def margin(self) -> int:
        return self.limit - self.value

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "margin": self.margin}


@dataclass
class Contributor:
    name: str  # "package numpy", "model model/model.onnx", "file pipeline.py"
    bytes: int


@dataclass
class SizeReport:
    checks: list[Check] = field(default_factory=list)
    contributors: list[Contributor] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == "error"]

    @property
    def notes(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == "note"]


class LimitExceeded(ModelambdaError):
    """The artifact would be refused by Lambda."""

    def __init__(self, message: str, report: SizeReport, manifest: Path | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.manifest = manifest  # where the failed checks are recorded


def zip_checks(function_unzipped: int, function_zipped: int | None,
               layers: Sequence[tuple[str, int, int | None]]) -> list[Check]:
    """Checks for a zip function: ``layers`` as (name, unzipped, zipped). A zipped size of
    None (not written yet) leaves out the direct-upload note for that archive."""
    total = function_unzipped + sum(unzipped for _, unzipped, _ in layers)
    checks = [
        Check("function and layers, unzipped", limits.UNZIPPED_TOTAL_BYTES, total),
        Check("layers per function", limits.LAYERS_MAX, len(layers), unit="layers"),
    ]
    if function_zipped is not None:
        checks.append(Check("function zip, direct upload", limits.ZIP_DIRECT_UPLOAD_BYTES,
                            function_zipped, severity="note",
                            note="over 50 MB: upload it through S3 (deploy does this)"))
    for name, _, zipped in layers:
        if zipped is not None:
            checks.append(Check(f"layer {name} zip, direct upload",
                                limits.ZIP_DIRECT_UPLOAD_BYTES, zipped, severity="note",
                                note="over 50 MB: publish it from S3 (deploy does this)"))
    return checks


def image_checks(context_bytes: int, base_bytes: int = BASE_IMAGE_BYTES) -> list[Check]:
    return [Check("container image, uncompressed", limits.IMAGE_BYTES_MAX,
                  base_bytes + context_bytes, note=f"base image counted as {base_bytes} bytes")]


def tmp_check(tmp_needed: int, ephemeral_mb: int) -> Check:
    return Check("/tmp needed at run time", ephemeral_mb * limits.MB, tmp_needed,
                 note="raise [service] ephemeral_storage_mb (up to 10240)")


def _fmt(n: int, unit: str) -> str:
    return f"{n:,} {unit}"


def explain(report: SizeReport, strategy_fixes: Sequence[str]) -> str:
    """The error text for the failed checks, with contributors and what would fix it
    (``strategy_fixes``: what the strategy suggests, e.g. another strategy)."""
    lines = []
    for check in report.failures:
        lines.append(f"{check.name}: {_fmt(check.value, check.unit)} is over the limit of "
                     f"{_fmt(check.limit, check.unit)} by {_fmt(-check.margin, check.unit)}")
    if any(c.unit == "bytes" for c in report.failures):
        lines.append("biggest contributors:")
        for contributor in report.contributors[:10]:
            lines.append(f"  {contributor.bytes:>13,}  {contributor.name}")
        fixes = list(strategy_fixes)
        fixes.append("quantise the model (int8 is about 4x smaller) or export a smaller one")
        fixes.append("leave out packages the function never imports: [build] exclude = [...]")
        lines.append("what would fix it: " + "; ".join(fixes))
    if any(c.unit == "layers" for c in report.failures):
        lines.append("merge layers: at most 5 per function")
    return "\n".join(lines)
