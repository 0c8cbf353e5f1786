"""What the two strategies that read a versioned model store (``s3``, ``efs``) share.

The function ships without the model; at cold start the model source resolves an alias in
the store and loads that version; a warm function checks the alias at most every
``refresh_s`` and switches versions between two requests (no redeploy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelambda.package.artifacts import Artifact, Parts
from modelambda.runtime import storelayout
from modelambda.spec import ServiceSpec, runtime_settings
from modelambda.spectable import Table
from modelambda.strategies.base import Strategy


def read_alias_and_refresh(table: Table) -> dict[str, Any]:
    return {
        "alias": table.string("alias", "live", pattern=storelayout.NAME,
                              allowed="letters, digits, '.', '-' and '_'"),
        "refresh_s": table.integer("refresh_s", 60, 0, 86400, " (s; 0 = never)"),
    }


class StoreStrategy(Strategy):
    import_check = "beside"

    def source(self, spec: ServiceSpec) -> dict[str, Any]:
        return {**runtime_settings(spec), "kind": self.name, "class": self.runtime_source,
                "model": spec.model.name}

    def layout(self, parts: Parts, out: Path) -> tuple[Artifact, list[Artifact]]:
        return Artifact("function.zip", "function", out / "function.zip",
                        [*parts.dependencies, *parts.runtime, *parts.user_code, parts.config],
                        f"code, dependencies and config; the model is in the {self.name} "
                        "model store"), []

    def publish_local(self, spec: ServiceSpec, store: Any) -> str:
        """Publish the service's model to ``store`` and point the alias at it (idempotent:
        the same model publishes as the same version)."""
        from modelambda.modelstore import publish_service

        return publish_service(spec, store, alias=str(spec.strategy.settings["alias"]),
                               exist_ok=True)
