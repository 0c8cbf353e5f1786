"""Model sources: where a strategy's model bytes come from, resolved to a local path.

One module per kind. Built-ins are looked up in ``SOURCES`` by strategy kind and imported only
when used, so a bundle function never imports the S3 fetcher.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.errors import ConfigError
from modelambda.runtime.paths import Paths
from modelambda.runtime.sources.base import ModelSource, Resolved

SOURCES: dict[str, str] = {
    "local": "modelambda.runtime.sources.local:InPlaceSource",
    "bundle": "modelambda.runtime.sources.local:BundleSource",
    "layer": "modelambda.runtime.sources.local:LayerSource",
    "image": "modelambda.runtime.sources.local:ImageSource",
    "efs": "modelambda.runtime.sources.efs:EfsSource",
    "s3": "modelambda.runtime.sources.s3:S3Source",
    "endpoint": "modelambda.runtime.sources.local:EndpointSource",
}


def make_source(settings: Mapping[str, Any], paths: Paths) -> ModelSource:
    kind = settings.get("kind")
    target = SOURCES.get(str(kind))
    if target is None:
        raise ConfigError(f"unknown model source {kind!r}; known: {', '.join(SOURCES)}")
    module, _, name = target.partition(":")
    cls: type[ModelSource] = getattr(importlib.import_module(module), name)
    return cls(settings, paths)


__all__ = ["SOURCES", "ModelSource", "Resolved", "make_source"]
