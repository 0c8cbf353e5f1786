"""Model file checksums: sizes and sha256 recorded at build/publish time, checked before load."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelambda.runtime.errors import ModelLoadError


def model_root(model_path: Path) -> Path:
    """Checksummed file names are relative to the model directory (or the file's parent)."""
    return model_path if model_path.is_dir() else model_path.parent


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_files(model_path: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ModelLoadError naming the first file whose size or sha256 differs."""
    root = model_root(model_path)
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise ModelLoadError(f"model file {rel} is missing from {root}")
        size = path.stat().st_size
        if size != expected["size"]:
            raise ModelLoadError(
                f"model file {rel} is {size} bytes, its manifest says {expected['size']}: "
                "truncated or replaced; re-publish or rebuild"
            )
        digest = sha256_file(path)
        if digest != expected["sha256"]:
            raise ModelLoadError(
                f"model file {rel} has sha256 {digest}, its manifest says {expected['sha256']}: "
                "corrupted or replaced; re-publish or rebuild"
            )
