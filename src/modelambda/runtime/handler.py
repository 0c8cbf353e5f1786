"""The Lambda handler for every strategy: ``modelambda.runtime.handler.handle``.

Importing this module IS the init phase: it reads the config, resolves the model source,
loads the model and the hooks, so that Lambda bills the work to init (and SnapStart can
snapshot it) and the first request is served from memory like every later one.
"""

from __future__ import annotations

from typing import Any

from modelambda.runtime.app import App

app = App.from_environment()


def handle(event: Any, context: Any) -> Any:
    return app.handle(event, context)
