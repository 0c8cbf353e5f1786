"""``s3``: the model in an S3 model store, fetched at cold start with parallel ranged GETs
(started before the imports, so they overlap), checked (sha256), ONNX kept in memory and other
files in /tmp; a warm function checks its alias every ``refresh_s``."""

from __future__ import annotations

import math

from modelambda.advisor import constants as C
from modelambda.advisor.prices import Prices
from modelambda.advisor.profile import fallback_rate
from modelambda.advisor.terms import GB, MB, Context, Terms, s3_parts, versions_kept


def _onnx_bytes(ctx: Context) -> int:
    return sum(size for name, size in ctx.sizes.model_files.items() if name.endswith(".onnx"))


class S3(Terms):
    name = "s3"
    update_path = "publish a new version, move the alias"
    update_without_deploy = True
    verifies_checksums = True
    fetch_overlaps_imports = True

    def code_ms(self, ctx: Context) -> float:
        return ctx.sizes.code_bytes / MB / C.ZIP_UNPACK_MB_S.value * 1000

    def model_ms(self, ctx: Context) -> float:
        connections = min(C.S3_CONNECTIONS.value, s3_parts(ctx.model_bytes))
        rate = min(connections * C.S3_CONNECTION_MB_S.value, C.LAMBDA_NETWORK_CAP_MB_S.value)
        return (C.S3_SETUP_REQUESTS.value * C.S3_FIRST_BYTE_MS.value
                + ctx.model_bytes / MB / rate * 1000)

    def model_ms_here(self, ctx: Context) -> float:
        rate = fallback_rate(ctx.profile.s3_local_mb_s, 100.0)
        here = ctx.profile.here_vcpus(ctx.memory_mb)
        return ctx.model_bytes / MB / (rate * min(here, 1.0)) * 1000

    def extra_memory_mb(self, ctx: Context) -> float:
        return _onnx_bytes(ctx) / MB  # the downloaded bytes beside the loaded session

    def fixed_monthly(self, ctx: Context, prices: Prices) -> dict[str, float]:
        gb = ctx.model_bytes / GB * versions_kept(ctx.updates_per_month)
        return {"S3 storage": gb * prices["s3_storage_gb_month"],
                "S3 PUTs for updates": ctx.updates_per_month * s3_parts(ctx.model_bytes)
                * prices["s3_put"]}

    def per_cold_start(self, ctx: Context, prices: Prices) -> dict[str, float]:
        requests = C.S3_SETUP_REQUESTS.value + s3_parts(ctx.model_bytes)
        return {"S3 GETs at cold start": requests * prices["s3_get"]}

    def per_environment_second(self, ctx: Context, prices: Prices) -> dict[str, float]:
        refresh = float(str(ctx.settings.get("refresh_s", 60)))
        if refresh <= 0:
            return {}
        return {"S3 GETs for alias checks": prices["s3_get"] / refresh}

    def blockers(self, ctx: Context) -> list[str]:
        out = []
        if ctx.sizes.tmp_needed > 10240 * MB:
            out.append(f"/tmp needed {math.ceil(ctx.sizes.tmp_needed / MB):,} MB > 10240 MB")
        return out
