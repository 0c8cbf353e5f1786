"""``image``: the model inside a container image; Lambda loads image chunks lazily, so the
code costs the share of the image read at start and the model its full read at load."""

from __future__ import annotations

from modelambda.advisor import constants as C
from modelambda.advisor.prices import Prices
from modelambda.advisor.terms import MB, Context, Terms


def image_bytes(ctx: Context) -> int:
    check = ctx.sizes.check("container image, uncompressed")
    return int(check["value"]) if check else ctx.sizes.code_bytes


class Image(Terms):
    name = "image"
    update_path = "push a new image, update the function"
    snapstart_blocker = "SnapStart does not support container images"

    def code_ms(self, ctx: Context) -> float:
        code = max(0, image_bytes(ctx) - ctx.model_bytes)
        return code * C.IMAGE_START_FRACTION.value / MB / C.IMAGE_LAZY_MB_S.value * 1000

    def model_ms(self, ctx: Context) -> float:
        return ctx.model_bytes / MB / C.IMAGE_LAZY_MB_S.value * 1000

    def fixed_monthly(self, ctx: Context, prices: Prices) -> dict[str, float]:
        gb = image_bytes(ctx) / (1024 * MB)
        return {"ECR storage (uncompressed size, an upper bound)":
                gb * prices["ecr_storage_gb_month"]}
