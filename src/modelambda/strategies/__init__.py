"""Strategy registry: name -> the strategy object, via entry points.

Built-ins are declared in modelambda's ``pyproject.toml`` under ``modelambda.strategies``, the
group a third-party package uses to add a seventh strategy (one module with a ``Strategy``
subclass; see ``strategies/base.py`` for what it answers). ``BUILTIN`` mirrors them, so an
install whose metadata is stale still finds them. Modules are imported only when asked for.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelambda.strategies.base import Strategy

GROUP = "modelambda.strategies"

BUILTIN: dict[str, str] = {
    "bundle": "modelambda.strategies.bundle:Bundle",
    "layer": "modelambda.strategies.layer:Layer",
    "image": "modelambda.strategies.image:Image",
    "s3": "modelambda.strategies.s3:S3",
    "endpoint": "modelambda.strategies.endpoint:Endpoint",
    "efs": "modelambda.strategies.efs:Efs",
}


@cache
def registered() -> dict[str, str]:
    """All strategies, built-ins first (in DESIGN.md's order), then plugins."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def names() -> tuple[str, ...]:
    return tuple(registered())


@cache
def get(name: str) -> Strategy:
    """The strategy called ``name``; UsageError naming the known ones otherwise."""
    from modelambda.errors import UsageError
    from modelambda.strategies.base import Strategy

    target = registered().get(name)
    if target is None:
        raise UsageError(f"unknown strategy {name!r}; known: {', '.join(names())}")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"strategy {name!r} ({target}) cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise UsageError(f"strategy {name!r} ({target}) is not a modelambda Strategy subclass")
    strategy: Strategy = cls()
    if strategy.name != name:
        raise UsageError(f"strategy {target} calls itself {strategy.name!r}, registered as "
                         f"{name!r}")
    return strategy


__all__ = ["BUILTIN", "GROUP", "get", "names", "registered"]
