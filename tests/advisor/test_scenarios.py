"""The advisor on a table of scenarios (issue 11): pure functions, sizes in the structure
``build`` writes, a profile like the measured ones.

| scenario                          | expected                                                 |
| --------------------------------- | -------------------------------------------------------- |
| tiny model, low traffic           | bundle                                                   |
| 3 GB model                        | bundle, layer out (250 MB); image, s3 (memory), efs in    |
| 12 GB model                       | image out too (10 GB); an endpoint or Managed Instances  |
| frequent model updates            | a decoupled strategy (s3, efs, endpoint)                 |
| steady high traffic               | the break-even with Managed Instances named              |
| strict p99, rare traffic          | SnapStart or provisioned concurrency, constraints shown  |
| payload over 6 MB                 | nothing feasible, the limit named                        |
"""

from __future__ import annotations

from modelambda.advisor.model import Option
from modelambda.advisor.recommend import advise
from modelambda.advisor.traffic import Traffic
from tests.advisor.conftest import GB, MB, inputs_for


def by_name(options: list[Option]) -> dict[str, Option]:
    return {o.name: o for o in options}


def test_tiny_model_low_traffic_is_a_bundle() -> None:
    inputs = inputs_for(80 * 1024, Traffic(requests_per_day=1000))
    options, rec = advise(inputs)
    assert rec.option is not None and rec.option.name == "bundle", rec.reasons
    rows = by_name(options)
    assert all(rows[s].feasible for s in ("bundle", "layer", "image", "s3", "efs"))
    assert rows["bundle"].monthly_usd < 1.0
    assert rows["efs"].vpc and not rows["bundle"].vpc
    # the endpoint's instance is billed while idle: far dearer at this traffic
    assert rows["endpoint (SageMaker real-time)"].monthly_usd > 50


def test_3gb_model_rules_out_zip_and_layers_not_image_s3_efs() -> None:
    inputs = inputs_for(3 * GB, Traffic(requests_per_day=20_000))
    options, rec = advise(inputs)
    rows = by_name(options)
    for name in ("bundle", "layer"):
        assert not rows[name].feasible
        assert any("function and layers, unzipped" in r and "> 250 MB" in r
                   for r in rows[name].reasons), rows[name].reasons
    for name in ("image", "s3", "efs"):
        assert rows[name].feasible, (name, rows[name].reasons)
    # s3 keeps the ONNX bytes in memory beside the session: the memory size is raised
    assert rows["s3"].memory_mb > 3 * 1024 * 2
    assert any("memory raised" in n for n in rows["s3"].notes)
    assert rec.option is not None and rec.option.feasible


def test_3gb_model_of_files_for_tmp_needs_tmp_and_rules_out_snapstart() -> None:
    inputs = inputs_for(3 * GB, Traffic(requests_per_day=20_000), model_file="model.joblib",
                        ephemeral_mb=512)
    rows = by_name(advise(inputs)[0])
    assert rows["s3"].feasible and rows["s3"].ephemeral_mb >= 3 * 1024
    assert "/tmp over 512 MB" in rows["s3"].snapstart
    assert "s3 + SnapStart" not in rows


def test_12gb_model_rules_out_the_image_too() -> None:
    inputs = inputs_for(12 * GB, Traffic(requests_per_day=20_000))
    options, rec = advise(inputs)
    rows = by_name(options)
    assert not rows["image"].feasible
    assert any("container image, uncompressed" in r and "> 10,240 MB" in r
               for r in rows["image"].reasons), rows["image"].reasons
    for name in ("bundle", "layer", "s3", "efs"):
        assert not rows[name].feasible, name
    assert rec.option is not None
    assert rec.option.strategy == "endpoint" or rec.option.kind == "managed", rec.option.name
    assert not rows["endpoint (SageMaker Serverless)"].feasible  # 6 GB at most


def test_frequent_updates_prefer_a_decoupled_strategy() -> None:
    traffic = Traffic(requests_per_day=100_000, model_updates_per_month=30)
    _, rec = advise(inputs_for(90 * MB, traffic, predict_ms=20))
    assert rec.option is not None and rec.option.decoupled, rec.reasons
    assert rec.option.strategy in ("s3", "efs", "endpoint")
    assert any("decoupled" in r for r in rec.reasons)
    # the same model updated once a month: a strategy that ships the model is fine
    _, rare = advise(inputs_for(90 * MB, Traffic(requests_per_day=100_000,
                                                 model_updates_per_month=1), predict_ms=20))
    assert rare.option is not None and not rare.option.decoupled, rare.reasons


def test_steady_high_traffic_names_the_break_even() -> None:
    # ~1,160 requests a second on average, 1,400 at the peak: steady
    traffic = Traffic(requests_per_day=100_000_000, peak_rps=1400)
    options, rec = advise(inputs_for(90 * MB, traffic, predict_ms=30))
    managed = rec.break_even["Lambda Managed Instances"]
    assert managed is not None, rec.reasons
    assert managed["requests_per_day"] <= 100_000_000
    assert any("Managed Instances becomes cheaper" in r for r in rec.reasons)
    rows = by_name(options)
    assert rows["Lambda Managed Instances"].monthly_usd < rows["bundle"].monthly_usd
    assert rec.option is not None and rec.option.name == "Lambda Managed Instances"


def test_strict_p99_with_rare_traffic_needs_snapstart_or_provisioned() -> None:
    traffic = Traffic(requests_per_day=50, p99_ms=400)
    options, rec = advise(inputs_for(90 * MB, traffic, predict_ms=20))
    rows = by_name(options)
    assert rows["bundle"].meets_p99 is False  # every request is a cold start
    assert rec.option is not None and rec.option.kind in ("snapstart", "provisioned"), \
        rec.reasons
    assert rec.option.meets_p99
    assert "container images" in rows["image"].snapstart
    assert "EFS" in rows["efs"].snapstart
    snap = rows["bundle + SnapStart"]
    assert any("no provisioned concurrency, EFS or /tmp over 512 MB" in n for n in snap.notes)


def test_payload_over_6mb_rules_everything_out() -> None:
    options, rec = advise(inputs_for(80 * 1024, Traffic(requests_per_day=100,
                                                        payload_kb=7000)))
    assert rec.option is None
    assert all(not o.feasible for o in options)
    assert any("6 MB synchronous invoke limit" in r for r in by_name(options)["bundle"].reasons)


def test_arm64_is_cheaper_per_gb_second() -> None:
    x86 = by_name(advise(inputs_for(90 * MB, Traffic(requests_per_day=1_000_000),
                                    predict_ms=20))[0])
    arm = by_name(advise(inputs_for(90 * MB, Traffic(requests_per_day=1_000_000,
                                                     architecture="arm64"),
                                    predict_ms=20))[0])
    assert arm["bundle"].monthly_usd < x86["bundle"].monthly_usd
