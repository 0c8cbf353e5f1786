"""The Lambda handler for every strategy: ``modelambda.runtime.handler.handle``.

Importing this module IS the init phase: it reads the config, resolves the model source,
loads the model and the hooks, so that Lambda bills the work to init (and SnapStart can
snapshot it) and the first request is served from memory like every later one. Under
SnapStart it also registers the warm-up and re-seed hooks (``runtime/snapstart.py``).
"""

from __future__ import annotations

import os
from typing import Any

from modelambda.runtime import prefetch  # starts a remote model's download first
from modelambda.runtime.app import App  # numpy and the backend import while it downloads

app = App(prefetch.config, prefetch.paths, source=prefetch.source)

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    from modelambda.runtime import snapstart

    snapstart.register(app)


def handle(event: Any, context: Any) -> Any:
    return app.handle(event, context)
