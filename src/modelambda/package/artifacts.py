"""What a build produces: artifacts (function zip, layers, image context) and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda.package.archive import Entry

if TYPE_CHECKING:
    from modelambda.spec import ServiceSpec
    from modelambda.strategies.base import Strategy

# What Lambda calls: the same handler for every strategy.
HANDLER = "modelambda.runtime.handler.handle"


@dataclass
class Artifact:
    name: str
    kind: str  # "function" | "layer" | "image-context"
    path: Path
    entries: list[Entry]
    contents: str = ""
    sha256: str = ""
    zipped_bytes: int = 0

    @property
    def unzipped_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def describe(self, root: Path) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "contents": self.contents,
            "path": self.path.relative_to(root).as_posix(), "sha256": self.sha256,
            "zipped_bytes": self.zipped_bytes, "unzipped_bytes": self.unzipped_bytes,
            "files": [{"path": e.name, "size": e.size} for e in
                      sorted(self.entries, key=lambda e: e.name)],
        }


@dataclass
class Parts:
    """The files a function is made of, before a strategy lays them out."""

    dependencies: list[Entry]  # site-packages, slimmed, relative to it
    runtime: list[Entry]  # modelambda's in-function runtime (and a strategy's own code)
    user_code: list[Entry]  # the service directory's code and data
    model: list[Entry]  # the model files the function or its store holds
    config: Entry  # modelambda.json

    @property
    def task(self) -> list[Entry]:
        """Everything at the task root, for strategies that ship it in one piece."""
        return [*self.dependencies, *self.runtime, *self.user_code, *self.model, self.config]


@dataclass
class BuildResult:
    spec: ServiceSpec
    strategy: Strategy
    out: Path
    function: Artifact
    layers: list[Artifact] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    # the model files as built (ONNX optimised), whether or not the function carries them
    model_entries: list[Entry] = field(default_factory=list)

    @property
    def image_context(self) -> Path:
        return self.out / "context"

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        return (self.function, *self.layers)
