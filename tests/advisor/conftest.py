"""Scenario helpers: sizes in the structure ``build`` writes (``manifest.json``'s artifacts,
limits and model files, the limits made by ``package.checks`` itself), for models too big to
build here, and a measured-looking profile."""

from __future__ import annotations

from typing import Any

from modelambda.advisor.model import Inputs
from modelambda.advisor.prices import load_prices
from modelambda.advisor.profile import Profile
from modelambda.advisor.sizes import StrategySizes, from_manifest
from modelambda.advisor.traffic import Traffic, check
from modelambda.package import checks

MB = 1024 * 1024
GB = 1024 * MB
CODE = 130 * MB  # numpy + onnxruntime + modelambda's runtime, unzipped
ENDPOINT_CODE = 50 * MB  # the endpoint's function: no onnxruntime


def _artifact(name: str, kind: str, unzipped: int) -> dict[str, Any]:
    return {"name": name, "kind": kind, "zipped_bytes": 0, "unzipped_bytes": unzipped}


def manifest(strategy: str, model_bytes: int, *, model_file: str = "model.onnx",
             ephemeral_mb: int = 512, code: int = CODE) -> dict[str, Any]:
    """What ``build`` would write for ``strategy`` (refused or not), without building."""
    tmp = 0 if model_file.endswith(".onnx") or strategy != "s3" else model_bytes
    if strategy == "bundle":
        artifacts = [_artifact("function.zip", "function", code + model_bytes)]
        limits = checks.zip_checks(code + model_bytes, None, [])
    elif strategy == "layer":
        artifacts = [_artifact("function.zip", "function", 1000),
                     _artifact("layer-1-dependencies.zip", "layer", code),
                     _artifact("layer-2-model.zip", "layer", model_bytes)]
        limits = checks.zip_checks(1000, None, [("deps", code, None),
                                                ("model", model_bytes, None)])
    elif strategy == "image":
        artifacts = [_artifact("context", "image-context", code + model_bytes)]
        limits = checks.image_checks(code + model_bytes)
    else:
        size = ENDPOINT_CODE if strategy == "endpoint" else code
        artifacts = [_artifact("function.zip", "function", size)]
        limits = checks.zip_checks(size, None, [])
    limits.append(checks.tmp_check(tmp, ephemeral_mb))
    return {"artifacts": artifacts, "limits": [c.as_dict() for c in limits],
            "model": {"version": "v1", "files": {model_file: {"size": model_bytes,
                                                               "sha256": "0" * 64}}}}


def sizes_for(model_bytes: int, **options: Any) -> dict[str, StrategySizes]:
    return {s: from_manifest(s, manifest(s, model_bytes, **options))
            for s in ("bundle", "layer", "image", "s3", "endpoint", "efs")}


def profile_for(model_bytes: int, *, predict_ms: float = 1.0, memory_mb: int = 1769
                ) -> Profile:
    """A profile like the ones measured here at 1 vCPU (cgroups v1): iris's runtime start and
    imports, a load that grows with the model (~300 MB/s), its prediction time."""
    model_mb = model_bytes / MB
    return Profile(
        model_name="m", model_version="v1", framework="onnx", strategy="bundle",
        memory_mb=memory_mb, cgroups="v1", cores=2, runtime_start_ms=250.0, imports_ms=570.0,
        backend_imports_ms=200.0, fetch_ms=0.0, load_ms=15.0 + model_mb / 300 * 1000,
        first_prediction_ms=3 * predict_ms + 2, warm_p50_ms=predict_ms + 1.5,
        warm_p99_ms=predict_ms * 1.5 + 3, predict_p50_ms=predict_ms,
        max_memory_mb=0, sha256_mb_s=900.0, s3_local_mb_s=100.0, source="test profile")


def inputs_for(model_bytes: int, traffic: Traffic, *, predict_ms: float = 1.0,
               memory_mb: int = 1024, **options: Any) -> Inputs:
    return Inputs(sizes=sizes_for(model_bytes, **options),
                  profile=profile_for(model_bytes, predict_ms=predict_ms),
                  traffic=check(traffic), prices=load_prices(), memory_mb=memory_mb)
