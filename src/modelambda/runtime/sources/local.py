"""Sources for the strategies whose model is already on a local path at start.

- ``bundle``: inside the function's zip, under the task root (``/var/task``);
- ``layer``: inside a layer, under ``/opt`` (Lambda unpacks layers there, in order);
- ``image``: a path inside the container image (absolute, or relative to the task root);
- ``endpoint``: the model runs elsewhere; its other files (a tokenizer) are in the bundle;
- ``local``: not a strategy: a service directory served in place (``modelambda invoke DIR``),
  the model at an absolute path on this machine.
"""

from __future__ import annotations

import os

from modelambda.runtime.errors import ConfigError, ModelLoadError
from modelambda.runtime.sources.base import ModelSource


def _relative(value: object, kind: str) -> str:
    path = str(value)
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ConfigError(f"{kind} model path {value!r} must be relative and stay inside its root")
    return path


class _RootedSource(ModelSource):
    def root(self) -> str:
        raise NotImplementedError

    def resolve(self) -> str:
        rel = _relative(self.settings.get("path", ""), str(self.settings.get("kind")))
        return self._existing(os.path.join(self.root(), rel))

    def _existing(self, path: str) -> str:
        if not os.path.exists(path):
            raise ModelLoadError(
                f"{self.describe()} not found at {path}; the artifact does not contain it "
                "(rebuild the function, or check [model] path in modelambda.toml)"
            )
        return path


class BundleSource(_RootedSource):
    def root(self) -> str:
        return self.paths.task_root


class LayerSource(_RootedSource):
    def root(self) -> str:
        return self.paths.opt_dir


class ImageSource(_RootedSource):
    def root(self) -> str:
        return self.paths.task_root

    def resolve(self) -> str:
        raw = str(self.settings.get("path", ""))
        return self._existing(raw) if raw.startswith("/") else super().resolve()


class InPlaceSource(_RootedSource):
    def resolve(self) -> str:
        path = str(self.settings.get("path", ""))
        if not path.startswith("/"):
            raise ConfigError(f"an in-place model path must be absolute, got {path!r}")
        return self._existing(path)


class EndpointSource(BundleSource):
    """The endpoint strategy: the model is served elsewhere; what the function has of it
    (e.g. a tokenizer beside it) is under the task root, where hooks find it."""

    def resolve(self) -> str:
        rel = _relative(self.settings.get("path", "") or ".", "endpoint")
        return os.path.join(self.root(), rel)
