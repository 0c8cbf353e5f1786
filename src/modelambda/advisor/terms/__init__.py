"""Each strategy's terms in the advisor, keyed by strategy name: how the model reaches a new
environment (transfer path and throughput), how a new model version reaches running functions
(update path), what it costs besides the function (fixed and per-cold-start charges), and the
limits that rule it out beyond the build's own size checks.

One module per strategy (``terms/<name>.py``), as the strategies are in ``strategies/``; a
strategy without terms here (a plugin) is shown with the build's checks only. Every number a
term uses is a ``constants`` entry or a price in ``prices.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from modelambda.advisor import constants as C

if TYPE_CHECKING:
    from modelambda.advisor.prices import Prices
    from modelambda.advisor.profile import Profile
    from modelambda.advisor.sizes import StrategySizes

MB = 1024 * 1024
GB = 1024 * MB


@dataclass
class Context:
    """What a term needs to know about the option it is part of."""

    sizes: StrategySizes
    model_bytes: int
    memory_mb: int
    profile: Profile
    updates_per_month: float
    settings: dict[str, object] = field(default_factory=dict)  # the strategy's spec keys


class Terms:
    name: ClassVar[str] = ""
    update_path: ClassVar[str] = ""
    update_without_deploy: ClassVar[bool] = False  # warm functions pick a new version up
    needs_vpc: ClassVar[bool] = False
    ships_model: ClassVar[bool] = True  # the function loads the model itself
    verifies_checksums: ClassVar[bool] = False  # the strategy's default (strategies/*.py)
    snapstart_blocker: ClassVar[str] = ""  # why SnapStart is not allowed, "" if it is
    fetch_overlaps_imports: ClassVar[bool] = False  # runtime/prefetch.py starts it first

    # --- latency ----------------------------------------------------------------------------

    def code_ms(self, ctx: Context) -> float:
        """Getting the function's code (and a model shipped in it) into a new sandbox."""
        return ctx.sizes.code_bytes / MB / C.ZIP_UNPACK_MB_S.value * 1000

    def model_ms(self, ctx: Context) -> float:
        """Moving the model at cold start, beyond the code (on Lambda)."""
        return 0.0

    def model_ms_here(self, ctx: Context) -> float:
        """The same on this machine's emulator (local files, loopback S3)."""
        return 0.0

    # --- memory and storage -------------------------------------------------------------------

    def extra_memory_mb(self, ctx: Context) -> float:
        """Memory this strategy needs beyond the loaded model (e.g. a download buffer)."""
        return 0.0

    def tmp_mb(self, ctx: Context) -> float:
        return ctx.sizes.tmp_needed / MB

    # --- cost ---------------------------------------------------------------------------------

    def fixed_monthly(self, ctx: Context, prices: Prices) -> dict[str, float]:
        """Monthly charges whatever the traffic (storage, network)."""
        return {}

    def per_cold_start(self, ctx: Context, prices: Prices) -> dict[str, float]:
        """Charges each cold start adds besides the function's own billed time."""
        return {}

    def per_environment_second(self, ctx: Context, prices: Prices) -> dict[str, float]:
        """Charges while an environment is alive (e.g. refresh checks)."""
        return {}

    def blockers(self, ctx: Context) -> list[str]:
        """Limits beyond the build's size checks that rule this strategy out."""
        return []


def versions_kept(updates_per_month: float) -> int:
    """Model versions a store holds: the live one and the previous (for rollback)."""
    return 2 if updates_per_month > 0 else 1


def s3_parts(model_bytes: int) -> int:
    return max(1, math.ceil(model_bytes / (C.S3_PART_MB.value * MB)))


def registry() -> dict[str, Terms]:
    from modelambda.advisor.terms import bundle, efs, endpoint, image, layer, s3

    return {t.name: t for t in (bundle.Bundle(), layer.Layer(), image.Image(), s3.S3(),
                                endpoint.Endpoint(), efs.Efs())}


def for_strategy(name: str) -> Terms:
    """The terms of ``name``; a strategy the advisor has no terms for gets the base terms
    (code delivered like a zip, no extra charges)."""
    found = registry().get(name)
    if found is not None:
        return found
    generic = Terms()
    return generic
