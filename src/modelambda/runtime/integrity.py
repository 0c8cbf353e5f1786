"""Model file checksums: sizes and sha256 recorded at build/publish time, checked before load.

The one place modelambda computes a sha256 of a file or of bytes: the runtime's sources,
``modelambda build`` and the model store all use these functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from modelambda.runtime.errors import ModelLoadError


def model_root(model_path: str) -> str:
    """Checksummed file names are relative to the model directory (or the file's parent)."""
    return model_path if os.path.isdir(model_path) else os.path.dirname(model_path)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's contents, read in chunks."""
    import hashlib  # deferred: ~5 ms of OpenSSL set-up that unverified functions never need

    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """The hex sha256 of bytes already in memory (a downloaded file, a request body)."""
    import hashlib  # deferred, as above

    return hashlib.sha256(data).hexdigest()


def new_sha256() -> Any:
    """A running sha256 (``update`` then ``hexdigest``), for bytes hashed as they arrive."""
    import hashlib  # deferred, as above

    return hashlib.sha256()


def verify_files(model_path: str, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ModelLoadError naming the first file whose size or sha256 differs."""
    root = model_root(model_path)
    for rel, expected in files.items():
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            raise ModelLoadError(f"model file {rel} is missing from {root}")
        size = os.path.getsize(path)
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
