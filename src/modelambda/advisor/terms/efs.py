"""``efs``: the model on a file system mounted in the function (a VPC function), read at cold
start; a new version is a directory and an atomic alias switch."""

from __future__ import annotations

from modelambda.advisor import constants as C
from modelambda.advisor.prices import Prices
from modelambda.advisor.terms import GB, MB, Context, Terms, versions_kept


class Efs(Terms):
    name = "efs"
    update_path = "write a new version directory, switch the alias link"
    update_without_deploy = True
    needs_vpc = True
    snapstart_blocker = "SnapStart does not support EFS"

    def model_ms(self, ctx: Context) -> float:
        return C.EFS_FIRST_BYTE_MS.value + ctx.model_bytes / MB / C.EFS_READ_MB_S.value * 1000

    def fixed_monthly(self, ctx: Context, prices: Prices) -> dict[str, float]:
        gb = ctx.model_bytes / GB
        return {"EFS storage": gb * versions_kept(ctx.updates_per_month)
                * prices["efs_storage_gb_month"],
                "EFS writes for updates": gb * ctx.updates_per_month * prices["efs_write_gb"]}

    def per_cold_start(self, ctx: Context, prices: Prices) -> dict[str, float]:
        return {"EFS reads at cold start": ctx.model_bytes / GB * prices["efs_read_gb"]}
