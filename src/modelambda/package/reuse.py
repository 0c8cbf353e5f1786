"""Build reuse: when nothing a build depends on has changed, the last build is used again
(``up`` restarts in a second instead of re-zipping 100+ MB)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import modelambda
from modelambda.package.archive import Entry
from modelambda.package.artifacts import Artifact, BuildResult
from modelambda.runtime.integrity import sha256_file
from modelambda.spec import ServiceSpec
from modelambda.strategies.base import Strategy


def build_inputs(spec: ServiceSpec) -> str:
    """The parts of the spec a build's output depends on: the model, the hooks, the build
    settings, and of [service] what the artifact or its checks read. Memory size, timeout,
    concurrency, SnapStart and [deploy] change the function's configuration, not its files:
    changing them reuses the build (a memory-size redeploy uploads nothing)."""
    service = spec.service
    return repr((service.name, service.runtime, service.architecture,
                 service.ephemeral_storage_mb, spec.model, spec.pipeline, spec.build))


def fingerprint(spec: ServiceSpec, settings: Iterable[str], shipped: Iterable[Entry]) -> str:
    """A hash over what a build's output depends on: ``build_inputs``, the strategy's
    settings, every file that ships (name, size, mtime), and modelambda's own code, which
    decides the layout and the checks (a changed ``limits.py`` rebuilds)."""
    package = Path(modelambda.__file__).parent
    own = [Entry(p.relative_to(package).as_posix(), p) for p in sorted(package.rglob("*.py"))]
    parts = [modelambda.__version__, *settings, build_inputs(spec)]
    for entry in (*own, *shipped):
        info = entry.source.stat()
        parts.append(f"{entry.name}\0{info.st_size}\0{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cached(spec: ServiceSpec, strategy: Strategy, out: Path, expected: str
           ) -> BuildResult | None:
    """The last build in ``out`` if it was made from the same inputs and is intact."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if manifest.get("inputs_fingerprint") != expected or not manifest.get("ok"):
        return None
    artifacts = []
    for described in manifest["artifacts"]:
        path = out / described["path"]
        if not path.exists() or (path.is_file() and sha256_file(path) != described["sha256"]):
            return None
        artifacts.append(Artifact(described["name"], described["kind"], path, [],
                                  described["contents"], described["sha256"],
                                  described["zipped_bytes"]))
    return BuildResult(spec, strategy, out, artifacts[0], artifacts[1:], manifest)
