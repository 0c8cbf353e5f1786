"""Where a model store keeps things: one layout for S3 (keys) and EFS (paths).

    <root>/<model>/versions/<version>/<files...>     the model files, never overwritten
    <root>/<model>/versions/<version>/manifest.json  sha256 and size of each file, framework,
                                                     input/output schema, created, publisher
    <root>/<model>/aliases/<alias>                   S3: {"version": ..., "previous": [...]}
                                                     EFS: a symlink to ../versions/<version>

The manifest is written last, so a version without one is an incomplete upload, never used.
"""

from __future__ import annotations

MANIFEST = "manifest.json"


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def version_dir(root: str, model: str, version: str) -> str:
    return join(root, model, "versions", version)


def alias_path(root: str, model: str, alias: str) -> str:
    return join(root, model, "aliases", alias)


def manifest_path(root: str, model: str, version: str) -> str:
    return join(version_dir(root, model, version), MANIFEST)
