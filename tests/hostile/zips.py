"""Damaged and hostile zips for the fuzzers, and the check every unpack must pass."""

from __future__ import annotations

import io
import shutil
import stat
import warnings
import zipfile
from pathlib import Path

from hypothesis import strategies as st

from modelambda.package.archive import ArchiveError, unpack_zip
from tests.hostile.fuzz import TEXT, Tally


@st.composite
def damaged_zip(draw: st.DrawFn) -> bytes:
    """A small valid zip with random bytes replaced, or a hostile entry name or mode."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(["python/a.py", "../x", "/etc/x", "a\\..\\..\\x",
                                         "C:/x", "python/", "python/a.py", "a/../../x", "",
                                         "ok/" + "d/" * 20 + "f"]) | TEXT)
            info = zipfile.ZipInfo(name or "empty")
            info.external_attr = draw(st.sampled_from(
                [stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFCHR, stat.S_IFDIR | 0o755,
                 0])) << 16
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names on purpose
                zf.writestr(info, draw(st.binary(max_size=200)))
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


def check_unpack(data: bytes, base: Path, tally: Tally) -> None:
    """``data`` unpacked under ``base/root``: unpacked, or ArchiveError; never another
    exception, never a file outside the root."""
    tally.cases += 1
    archive, root = base / "a.zip", base / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    archive.write_bytes(data)
    try:
        unpack_zip(archive, root, max_bytes=1 << 20)
    except ArchiveError:
        pass
    except Exception as exc:
        tally.failed("crashes", f"{type(exc).__name__}: {exc}")
    escaped = [p for p in base.rglob("*") if p not in (archive, root) and root not in p.parents]
    if escaped:
        tally.failed("crashes", f"wrote outside its root: {escaped}")
        for path in escaped:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
