"""Model sources: where a strategy's model bytes come from, resolved to a local path.

One module per kind. Built-ins are looked up in ``SOURCES`` by strategy kind and imported only
when used, so a bundle function never imports the S3 fetcher. A strategy registered by a plugin
names its own source class in the compiled settings (``"class": "module:Class"``), which is
used before the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.errors import ConfigError, DependencyMissing
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


def make_source(settings: Mapping[str, Any], paths: Paths, *, verify: bool) -> ModelSource:
    """The model source the settings describe. ``verify`` is the compiled config's
    ``model.verify_checksums`` (see ``ModelSource``)."""
    kind = settings.get("kind")
    target = settings.get("class") or SOURCES.get(str(kind))
    if target is None:
        raise ConfigError(f"unknown model source {kind!r}; known: {', '.join(SOURCES)} "
                          "(a plugin's source names its class in the settings' 'class')")
    return source_class(str(target))(settings, paths, verify=verify)


def source_class(target: str) -> type[ModelSource]:
    """``module:Class`` -> the ModelSource subclass, or ConfigError/DependencyMissing."""
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"model source class {target!r} must look like 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DependencyMissing(f"model source {target} cannot be imported: {exc}") from exc
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ModelSource)):
        raise ConfigError(f"model source {target} is not a modelambda ModelSource subclass")
    return cls


__all__ = ["SOURCES", "ModelSource", "Resolved", "make_source", "source_class"]
