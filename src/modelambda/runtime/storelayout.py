"""Where a model store keeps things: one layout for S3 (keys) and EFS (paths).

    <root>/<model>/versions/<version>/<files...>     the model files, never overwritten
    <root>/<model>/versions/<version>/manifest.json  sha256 and size of each file, framework,
                                                     input/output schema, created, publisher
    <root>/<model>/aliases/<alias>                   S3: {"version": ..., "previous": [...]}
                                                     EFS: a symlink to ../versions/<version>

The manifest is written last, so a version without one is an incomplete upload, never used.
"""

from __future__ import annotations

import re

MANIFEST = "manifest.json"
# Versions and aliases become path components (S3 keys, EFS directories, /tmp): no "/", no
# leading dot, so never "." or "..".
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


def checked_name(value: object, what: str) -> str:
    """``value`` if it is a safe version or alias name, else ValueError naming the rule."""
    text = str(value)
    if not NAME.match(text):
        raise ValueError(f"{what} {text!r} is not a valid name: letters, digits, '.', '-' and "
                         "'_', at most 64, not starting with '.'")
    return text


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def version_dir(root: str, model: str, version: str) -> str:
    return join(root, model, "versions", version)


def alias_path(root: str, model: str, alias: str) -> str:
    return join(root, model, "aliases", alias)


def manifest_path(root: str, model: str, version: str) -> str:
    return join(version_dir(root, model, version), MANIFEST)
