"""Sources for the four strategies whose model is already on a local path at start.

- ``bundle``: inside the function's zip, under the task root (``/var/task``);
- ``layer``: inside a layer, under ``/opt`` (Lambda unpacks layers there, in order);
- ``image``: a path inside the container image (absolute, or relative to the task root);
- ``efs``: under the EFS mount path (e.g. ``/mnt/models``), remappable for local use;
- ``local``: not a strategy: a service directory served in place (``modelambda invoke DIR``),
  the model at an absolute path on this machine.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from modelambda.runtime.errors import ConfigError, ModelLoadError
from modelambda.runtime.sources.base import ModelSource


def _relative(value: object, kind: str) -> PurePosixPath:
    path = PurePosixPath(str(value))
    if path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"{kind} model path {value!r} must be relative and stay inside its root")
    return path


class _RootedSource(ModelSource):
    def root(self) -> Path:
        raise NotImplementedError

    def resolve(self) -> Path:
        rel = _relative(self.settings.get("path", ""), str(self.settings.get("kind")))
        path = self.root() / rel
        if not path.exists():
            raise ModelLoadError(
                f"{self.describe()} not found at {path}; the artifact does not contain it "
                "(rebuild the function, or check [model] path in modelambda.toml)"
            )
        return path


class BundleSource(_RootedSource):
    def root(self) -> Path:
        return self.paths.task_root


class LayerSource(_RootedSource):
    def root(self) -> Path:
        return self.paths.opt_dir


class ImageSource(_RootedSource):
    def root(self) -> Path:
        return self.paths.task_root

    def resolve(self) -> Path:
        raw = str(self.settings.get("path", ""))
        if raw.startswith("/"):
            path = Path(raw)
            if not path.exists():
                raise ModelLoadError(f"image model not found at {path}")
            return path
        return super().resolve()


class EfsSource(_RootedSource):
    def root(self) -> Path:
        mount = str(self.settings.get("mount_path", "/mnt/models"))
        return self.paths.efs_dir if self.paths.efs_dir is not None else Path(mount)


class InPlaceSource(ModelSource):
    def resolve(self) -> Path:
        path = Path(str(self.settings.get("path", "")))
        if not path.is_absolute() or not path.exists():
            raise ModelLoadError(f"model not found at {path}")
        return path
