"""``efs``: the model in a model store on an EFS file system mounted at ``/mnt/...``.

Read in place through the alias link (an atomic symlink switch moves it); checksums are not
verified by default, since hashing a large model on every cold start costs a full read of it
(``[model] verify_checksums = true`` asks for it). Needs a VPC on AWS and rules out SnapStart.
Locally the store is a directory under the service's ``.modelambda/`` mounted at the path.
"""

from __future__ import annotations

import re
from typing import Any

from modelambda.spec import ServiceSpec
from modelambda.spectable import Problems, Table
from modelambda.strategies.base import LocalSetup
from modelambda.strategies.store import StoreStrategy, read_alias_and_refresh

# Lambda mounts EFS access points under /mnt (docs: configuration-filesystem).
MOUNT = re.compile(r"^/mnt/[A-Za-z0-9_.-]+$")
LOCAL_STORE = "efs"  # DIR/.modelambda/efs


class Efs(StoreStrategy):
    name = "efs"
    summary = "model on an EFS file system mounted at /mnt (needs a VPC)"
    runtime_source = "modelambda.runtime.sources.efs:EfsSource"

    def read(self, table: Table) -> dict[str, Any]:
        return {
            "mount_path": table.string("mount_path", "/mnt/models", pattern=MOUNT,
                                       allowed="a path like /mnt/NAME (Lambda mounts EFS "
                                               "under /mnt)"),
            **read_alias_and_refresh(table),
        }

    def check(self, spec: ServiceSpec, problems: Problems) -> None:
        if spec.service.snapstart:
            problems.add("service", "snapstart", True, "Lambda has no SnapStart with EFS")

    def start_local(self, spec: ServiceSpec, services: Any) -> LocalSetup:
        store = self.store(spec)
        version = self.publish_local(spec, store)
        mount = str(spec.strategy.settings["mount_path"])
        services.log(f"model {spec.model.name} version {version} is "
                     f"{spec.strategy.settings['alias']!r} in {store.describe()} "
                     f"(mounted at {mount})")
        return LocalSetup(mounts={mount: local_store_dir(spec).resolve()})

    def store(self, spec: ServiceSpec, s3_client: Any = None) -> Any:
        from modelambda.modelstore import DirStore

        return DirStore(local_store_dir(spec))


def local_store_dir(spec: ServiceSpec) -> Any:
    return spec.root / ".modelambda" / LOCAL_STORE
