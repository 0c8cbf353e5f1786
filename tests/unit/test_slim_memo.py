"""Slimming a dependency-cache entry is remembered beside it (``slim.slim_cached``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelambda.package import slim


def _site(root: Path) -> Path:
    site = root / "python"
    for rel, text in {"pkg/__init__.py": "x = 1\n", "pkg/tests/test_x.py": "def test(): 0\n",
                      "pkg/core.h": "int x;\n", "pkg/LICENSE": "MIT\n",
                      "boto3/__init__.py": "\n",
                      "boto3-1.0.dist-info/RECORD": "boto3/__init__.py,,\n"}.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    return site


def _same(a: slim.Slimmed, b: slim.Slimmed) -> bool:
    return (sorted(a.kept), a.dropped_files, a.dropped_bytes, a.excluded) == \
        (sorted(b.kept), b.dropped_files, b.dropped_bytes, b.excluded)


def test_a_complete_cache_entry_is_slimmed_once(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    site = _site(tmp_path / "entry")
    (site.parent / ".complete").write_text("")
    first = slim.slim_cached(site, "3.12", ["boto3"])
    assert _same(first, slim.slim(site, "3.12", ["boto3"]))
    assert {rel for rel, _ in first.kept} == {"pkg/__init__.py", "pkg/LICENSE"}
    assert len(list(site.parent.glob(".slimmed-*.json"))) == 1

    def walk(*_: object) -> slim.Slimmed:
        raise AssertionError("walked the tree again")

    monkeypatch.setattr(slim, "slim", walk)
    assert _same(slim.slim_cached(site, "3.12", ["boto3"]), first)
    with pytest.raises(AssertionError):  # other settings are slimmed (and remembered) anew
        slim.slim_cached(site, "3.12", [])


def test_a_damaged_memo_or_a_plain_directory_is_slimmed_again(tmp_path: Path) -> None:
    site = _site(tmp_path / "plain")
    assert _same(slim.slim_cached(site, "3.12"), slim.slim(site, "3.12"))
    assert not list(site.parent.glob(".slimmed-*"))  # not a cache entry: nothing written
    (site.parent / ".complete").write_text("")
    slim.slim_cached(site, "3.12")
    memo = next(site.parent.glob(".slimmed-*.json"))
    memo.write_text("{not json")
    assert _same(slim.slim_cached(site, "3.12"), slim.slim(site, "3.12"))
