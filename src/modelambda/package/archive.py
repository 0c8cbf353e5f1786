"""Reproducible zip archives, and unpacking that never escapes its root.

Writing: entries sorted by path, every timestamp 1980-01-01 00:00, permissions 0644 (0755 for
files that were executable), no directory entries, no extra fields, so the same files always
give the same bytes and the same sha256 (and an unchanged layer is never published again).

Reading: every entry is checked before anything is written: no absolute paths, no ``..``,
no backslashes, no symlinks or device files, no two entries landing on the same path, no
encrypted entries or compression methods zipfile cannot read; the total unpacked size is capped
and so is the compression ratio (a zip bomb). zipfile stops inflating an entry at its declared
size and checks its CRC, so the declared sizes checked up front bound what is written.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelambda.errors import ModelambdaError
from modelambda.runtime.integrity import sha256_file

EPOCH = (1980, 1, 1, 0, 0, 0)


class ArchiveError(ModelambdaError):
    """An archive that must not be written or unpacked as it is."""


@dataclass(frozen=True)
class Entry:
    """One file to archive: its path inside the archive and where it is on disk."""

    name: str
    source: Path

    @property
    def size(self) -> int:
        return self.source.stat().st_size


def check_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or name.startswith("/") or path.is_absolute() or ".." in path.parts \
            or "\\" in name or ":" in path.parts[0]:
        raise ArchiveError(f"archive entry {name!r} would land outside its root")
    return path.as_posix()


# zlib's default trade-off. $MODELAMBDA_ZIP_LEVEL (0-9) overrides it: level 1 writes a
# function zip about 2.5x faster and about 12 % bigger (iris bundle: 5.1 s and 49.2 MB against
# 13.5 s and 44.0 MB here), which the test suite uses; Lambda unzips either the same way.
ZIP_LEVEL = 6


def zip_level() -> int:
    raw = os.environ.get("MODELAMBDA_ZIP_LEVEL", "")
    if not raw:
        return ZIP_LEVEL
    if not (raw.isdigit() and 0 <= int(raw) <= 9):
        raise ArchiveError(f"MODELAMBDA_ZIP_LEVEL={raw!r}: must be a digit from 0 to 9")
    return int(raw)


def write_zip(target: Path, entries: Iterable[Entry], level: int | None = None) -> str:
    """Write a reproducible zip (compression ``level``, default ``zip_level()``); returns its
    sha256."""
    level = zip_level() if level is None else level
    ordered = sorted(entries, key=lambda e: e.name)
    names = [check_name(e.name) for e in ordered]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        duplicate = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise ArchiveError(f"two files would be archived as {duplicate!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for entry, name in zip(ordered, names, strict=True):
            mode = entry.source.stat().st_mode
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the permissions
            perms = 0o755 if mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | perms) << 16
            # writestr honours compresslevel (ZipFile.open(info, "w") ignores it)
            zf.writestr(info, entry.source.read_bytes(), compresslevel=level)
    tmp.replace(target)
    return sha256_file(target)


# A zip bomb: more than this many unpacked bytes per compressed byte, over the whole archive
# once it unpacks to more than RATIO_FLOOR_BYTES. Deflate's best is about 1032:1 (zeros); model
# files and code compress 1-10x, a zip of text or sparse arrays rarely past 50x.
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 16 * 1024 * 1024
_READABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _check_entries(archive: Path, infos: list[zipfile.ZipInfo], max_bytes: int | None) -> int:
    """The total declared size, after checking every entry (ArchiveError naming the first
    bad one)."""
    total = compressed = 0
    files: set[str] = set()
    dirs: set[str] = set()
    for info in infos:
        name = check_name(info.filename.rstrip("/") or "/")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"{archive.name}: {info.filename!r} is a "
                               f"{'symlink' if kind == stat.S_IFLNK else 'special file'}; "
                               "only regular files are unpacked")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{archive.name}: {info.filename!r} is encrypted")
        if info.compress_type not in _READABLE:
            raise ArchiveError(f"{archive.name}: {info.filename!r} uses compression method "
                               f"{info.compress_type}; zip it with deflate")
        if info.is_dir():
            dirs.add(name)
        elif name in files:
            raise ArchiveError(f"{archive.name}: {name!r} is in the archive twice")
        else:
            files.add(name)
        parents = PurePosixPath(name).parents
        dirs.update(p.as_posix() for p in parents if p.as_posix() != ".")
        total += info.file_size
        compressed += info.compress_size
    clash = files & dirs
    if clash:
        raise ArchiveError(f"{archive.name}: {sorted(clash)[0]!r} is both a file and a "
                           "directory in the archive")
    if max_bytes is not None and total > max_bytes:
        raise ArchiveError(f"{archive.name} unpacks to {total} bytes, over {max_bytes}")
    if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * max(compressed, 1):
        raise ArchiveError(f"{archive.name} unpacks to {total} bytes from {compressed}, over "
                           f"{MAX_RATIO} times its compressed size: refused as a zip bomb")
    return total


# What zipfile raises on a damaged archive besides BadZipFile: a name that is not the UTF-8 its
# flag says, an impossible "version needed", a seek before the start (OSError EINVAL), data
# that does not inflate, an entry cut short.
_DAMAGED = (zipfile.BadZipFile, UnicodeDecodeError, NotImplementedError, EOFError, zlib.error,
            OSError)


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except _DAMAGED as exc:
        raise ArchiveError(f"{archive.name}: not a readable zip ({exc})") from exc


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path,
                archive: Path) -> None:
    """One entry's bytes to ``destination``: reading errors are the archive's (ArchiveError),
    writing errors this machine's (OSError, e.g. a full disk)."""
    try:
        src = zf.open(info)
    except _DAMAGED as exc:
        raise ArchiveError(f"{archive.name}: corrupt entry {info.filename!r} ({exc})") from exc
    with src, destination.open("wb") as dst:
        while True:
            try:
                chunk = src.read(1 << 20)
            except _DAMAGED as exc:
                raise ArchiveError(f"{archive.name}: corrupt entry {info.filename!r} ({exc})") \
                    from exc
            if not chunk:
                return
            dst.write(chunk)


def unpack_zip(archive: Path, root: Path, max_bytes: int | None = None) -> int:
    """Unpack ``archive`` under ``root`` safely; returns the bytes written.

    Every entry is validated before the first byte is written, so a bad archive leaves
    ``root`` untouched; an entry whose bytes turn out corrupt (bad CRC, bad deflate data) is
    an ArchiveError too, and the files this call wrote are removed."""
    with _open_zip(archive) as zf:
        infos = zf.infolist()
        total = _check_entries(archive, infos, max_bytes)
        root_real = root.resolve()
        written: list[Path] = []
        try:
            for info in infos:
                destination = (root / info.filename).resolve()
                if root_real not in destination.parents and destination != root_real:
                    raise ArchiveError(f"{archive.name}: {info.filename!r} escapes {root}")
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                written.append(destination)
                _copy_entry(zf, info, destination, archive)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(destination, mode if mode else 0o644)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return total
