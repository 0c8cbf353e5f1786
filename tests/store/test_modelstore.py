"""The model store: versions are immutable, aliases move, gc keeps what is in use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelambda import modelstore
from modelambda.modelstore import StoreError
from modelambda.runtime import storelayout
from tests.conftest import IRIS

FILES = {"model.onnx": IRIS / "model.onnx"}


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_publish_promote_rollback_list_gc(make_store: Callable[..., modelstore.Store],
                                          kind: str) -> None:
    store = make_store(kind)
    for version in ("1", "2", "3"):
        record = modelstore.publish(store, "iris", version, FILES, framework="onnx")
        assert record["files"]["model.onnx"]["size"] == FILES["model.onnx"].stat().st_size
        assert len(record["files"]["model.onnx"]["sha256"]) == 64
    assert modelstore.versions(store, "iris") == ["1", "2", "3"]

    assert modelstore.promote(store, "iris", "1", "live") is None
    assert modelstore.promote(store, "iris", "2", "live") == "1"
    assert modelstore.aliases(store, "iris")["live"]["version"] == "2"
    assert modelstore.rollback(store, "iris", "live") == ("2", "1")
    assert modelstore.aliases(store, "iris")["live"]["version"] == "1"

    modelstore.promote(store, "iris", "2", "live")
    # gc: 2 is live, 1 is its rollback target; only 3 goes
    assert modelstore.gc(store, "iris", dry_run=True) == ["3"]
    assert modelstore.gc(store, "iris") == ["3"]
    assert modelstore.versions(store, "iris") == ["1", "2"]
    assert modelstore.manifest(store, "iris", "2") is not None


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_publishing_never_overwrites(make_store: Callable[..., modelstore.Store],
                                     kind: str) -> None:
    store = make_store(kind)
    modelstore.publish(store, "iris", "1", FILES, framework="onnx")
    before = store.read(storelayout.manifest_path("", "iris", "1"))
    with pytest.raises(StoreError, match="never overwrites"):
        modelstore.publish(store, "iris", "1", FILES, framework="onnx")
    assert store.read(storelayout.manifest_path("", "iris", "1")) == before


@pytest.mark.parametrize("name", ["..", "../x", ".hidden", "a/b", ""])
def test_versions_and_aliases_cannot_be_paths(make_store: Callable[..., modelstore.Store],
                                              name: str) -> None:
    store = make_store("efs")
    with pytest.raises(StoreError, match="is not a valid name"):
        modelstore.publish(store, "iris", name, FILES, framework="onnx")
    modelstore.publish(store, "iris", "1", FILES, framework="onnx")
    with pytest.raises(StoreError, match="is not a valid name"):
        modelstore.promote(store, "iris", "1", name)


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_promote_needs_a_complete_version(make_store: Callable[..., modelstore.Store],
                                          kind: str) -> None:
    store = make_store(kind)
    # an upload without its manifest is incomplete: not a version
    store.upload(storelayout.join(storelayout.version_dir("", "iris", "9"), "model.onnx"),
                 IRIS / "model.onnx")
    with pytest.raises(StoreError, match="no complete version '9'"):
        modelstore.promote(store, "iris", "9", "live")
    with pytest.raises(StoreError, match="no earlier version"):
        modelstore.rollback(store, "iris", "live")


def test_efs_alias_is_a_relative_symlink_switched_atomically(tmp_path: Path) -> None:
    store = modelstore.DirStore(tmp_path / "efs")
    modelstore.publish(store, "iris", "1", FILES, framework="onnx")
    modelstore.publish(store, "iris", "2", FILES, framework="onnx")
    modelstore.promote(store, "iris", "1", "live")
    link = tmp_path / "efs" / "iris" / "aliases" / "live"
    assert link.is_symlink() and str(link.readlink()) == "../versions/1"
    modelstore.promote(store, "iris", "2", "live")
    assert str(link.readlink()) == "../versions/2"
    record = json.loads((link.parent / ".live.json").read_text())
    assert record["version"] == "2" and record["previous"] == ["1"]
