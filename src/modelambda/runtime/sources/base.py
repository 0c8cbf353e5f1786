"""The model-source interface: turn a strategy's settings into a local model path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.logs import Writer, stdout_writer
from modelambda.runtime.paths import Paths


class Resolved:
    """One version of a model, ready to load: a local path, and files held in memory."""

    __slots__ = ("blobs", "held", "path", "token", "version")

    def __init__(self, path: str, version: str | None = None,
                 blobs: dict[str, bytes] | None = None, token: str | None = None,
                 held: dict[str, int] | None = None) -> None:
        self.path = path
        self.version = version
        self.blobs = blobs or {}
        self.token = token  # what the store answered with (e.g. the alias's ETag)
        # in-memory files (memfds) for loading only: their link under ``path`` -> descriptor
        self.held = held or {}

    def release(self) -> None:
        """Free what was held only for loading (once the backend has loaded the version,
        or failed to): close the in-memory files and remove their links under ``path``."""
        import os

        held, self.held = self.held, {}
        for link, fd in held.items():
            if os.path.islink(link):
                os.unlink(link)
            os.close(fd)


class ModelSource(ABC):
    """Where a model lives. ``resolve`` runs once per environment, in the init phase.

    Versioned stores (s3, efs) also say which version they resolved, may start fetching
    early (``start``, called before the heavy imports so the two overlap), and may find a
    newer version for a warm environment (``poll``, at most every ``refresh_s``).

    ``verify`` is the compiled config's ``model.verify_checksums``, given by whoever makes the
    source (``make_source``): a source has no default of its own. A source whose
    ``verifies_checksums`` is True checks its files itself (against its store's manifest)
    when ``verify`` is set; for the others the app checks the resolved files against the
    config's ``model.files``. A subclass that overrides ``__init__`` takes ``verify`` too."""

    refresh_s: float = 0.0
    verifies_checksums: bool = False
    # Where a source reports what it recovers from (stdout's JSON lines, as the app's log);
    # the app gives it its own writer.
    log: Writer = staticmethod(stdout_writer)

    def __init__(self, settings: Mapping[str, Any], paths: Paths, *, verify: bool) -> None:
        self.settings = settings
        self.paths = paths
        self.verify = verify

    def start(self) -> None:  # noqa: B027 - a hook: local sources have nothing to start
        """Begin fetching in the background (no-op for local paths)."""

    def resolved(self) -> Resolved:
        """The version to load at init (waits for ``start``'s fetch)."""
        return Resolved(self.resolve())

    def poll(self) -> Resolved | None:
        """A newer version than the one serving, fetched and verified; else None. The
        source does not switch to it until ``commit``: if loading it fails, the next poll
        offers it again."""
        return None

    def commit(self, resolved: Resolved) -> None:  # noqa: B027 - a hook, no-op by default
        """``resolved`` now serves: remember it, free the previous version's files."""

    def discard(self, resolved: Resolved) -> None:  # noqa: B027 - a hook, no-op by default
        """``resolved`` could not be loaded: free its files."""

    @abstractmethod
    def resolve(self) -> str:
        """Return the local file or directory the backend loads the model from."""

    def describe(self) -> str:
        """A short human description for logs and errors."""
        return f"{self.settings.get('kind')} model"
