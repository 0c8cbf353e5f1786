"""The model-source interface: turn a strategy's settings into a local model path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.paths import Paths


class ModelSource(ABC):
    """Where a model lives. ``resolve`` runs once per environment, in the init phase."""

    def __init__(self, settings: Mapping[str, Any], paths: Paths) -> None:
        self.settings = settings
        self.paths = paths

    @abstractmethod
    def resolve(self) -> str:
        """Return the local file or directory the backend loads the model from."""

    def describe(self) -> str:
        """A short human description for logs and errors."""
        return f"{self.settings.get('kind')} model"
