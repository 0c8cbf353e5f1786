"""MiniLM's real build sizes in the advisor: the bundle is feasible only if the real build
fits 250 MB unzipped; otherwise layer, s3, efs or image, with the limit named. The byte counts
are printed (pytest -s) for the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelambda import limits
from modelambda.advisor import sizes as size_report
from modelambda.advisor.model import Inputs
from modelambda.advisor.prices import load_prices
from modelambda.advisor.recommend import advise
from modelambda.advisor.traffic import Traffic
from modelambda.spec import load_spec
from tests.advisor.conftest import profile_for

STRATEGIES = ("bundle", "layer", "image", "s3", "endpoint", "efs")


@pytest.mark.slow
def test_minilm_bundle_only_if_it_fits(plain_services: dict[str, Path]) -> None:
    # the session's pristine MiniLM: its builds are shared with the other every-strategy tests
    spec = load_spec(plain_services["minilm"])
    sizes = size_report.from_builds(spec, STRATEGIES)
    bundle = sizes["bundle"].check("function and layers, unzipped")
    assert bundle is not None
    print(f"\nMiniLM bundle: {bundle['value']:,} bytes unzipped of {bundle['limit']:,} "
          f"(margin {bundle['margin']:,}); model {sizes['bundle'].model_bytes:,} bytes")
    profile = profile_for(sizes["bundle"].model_bytes, predict_ms=25.0)
    inputs = Inputs(sizes=sizes, profile=profile, traffic=Traffic(requests_per_day=20_000),
                    prices=load_prices(), memory_mb=spec.service.memory_mb)
    options, rec = advise(inputs)
    rows = {o.name: o for o in options}
    fits = bundle["value"] <= limits.UNZIPPED_TOTAL_BYTES
    assert rows["bundle"].feasible == fits
    assert rec.option is not None
    if fits:
        assert rec.option.strategy in ("bundle", "layer", "s3", "image", "efs"), rec.reasons
    else:
        assert any("> 250 MB" in r for r in rows["bundle"].reasons)
        assert rec.option.strategy in ("layer", "s3", "efs", "image"), rec.reasons
    print(f"recommended: {rec.option.name}: {rec.reasons[0]}")
