"""Hostile archives, wherever modelambda unpacks one.

modelambda unpacks zips in one function, ``package.archive.unpack_zip``: your own layers
(``[service] layers``, at build time) and the function and layer zips ``up`` runs (unpacked as
Lambda unpacks them). It writes tars (image layers, SageMaker's model.tar.gz) but never reads
one, and the model store copies files one by one by their manifest (its escapes are refused in
``tests/functional/test_sources.py`` and ``runtime/sources/versioned.py``). ``..``, absolute
paths and symlinks through a layer are in ``tests/emulator/test_layers.py``; what is here adds
the rest, each on ``unpack_zip`` and, where it matters, through the layer build that reports it.
"""

from __future__ import annotations

import json
import stat
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given

from modelambda.package.archive import RATIO_FLOOR_BYTES, ArchiveError, unpack_zip
from modelambda.package.build import _user_layers
from modelambda.runtime.errors import ModelLoadError
from modelambda.runtime.sources.versioned import parse_manifest
from modelambda.scaffold import SCHEMA_MAX_BYTES, skops_feature_count
from tests.hostile.fuzz import Tally
from tests.hostile.zips import check_unpack, damaged_zip


def write_zip(path: Path, entries: list[tuple[str, bytes, int]],
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Entries (name, bytes, st_mode) as they are, with no checks of ours in the way."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = compression
            with pytest.warns(UserWarning) if _seen(zf, name) else _nothing():
                zf.writestr(info, data)
    return path


def _seen(zf: zipfile.ZipFile, name: str) -> bool:
    return name in zf.NameToInfo  # zipfile warns about a duplicate name, and writes it


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


FILE = stat.S_IFREG | 0o644

HOSTILE = {
    "backslash-dotdot": ([("..\\..\\evil.py", b"x", FILE)], "outside its root"),
    "backslash-absolute": ([("\\etc\\evil", b"x", FILE)], "outside its root"),
    "drive-letter": ([("C:/evil.py", b"x", FILE)], "outside its root"),
    "dotdot-inside": ([("python/../../evil.py", b"x", FILE)], "outside its root"),
    "char-device": ([("dev/null", b"", stat.S_IFCHR | 0o666)], "special file"),
    "block-device": ([("dev/sda", b"", stat.S_IFBLK | 0o660)], "special file"),
    "fifo": ([("pipe", b"", stat.S_IFIFO | 0o644)], "special file"),
    "socket": ([("sock", b"", stat.S_IFSOCK | 0o644)], "special file"),
    "symlink-absolute": ([("python/passwd", b"/etc/passwd", stat.S_IFLNK | 0o777)], "symlink"),
    "duplicate-name": ([("python/a.py", b"1", FILE), ("python/a.py", b"2", FILE)], "twice"),
    "duplicate-after-normalising": ([("python/a.py", b"1", FILE),
                                     ("python//a.py", b"2", FILE)], "twice"),
    "file-and-directory": ([("python", b"1", FILE), ("python/a.py", b"2", FILE)],
                           "both a file and a directory"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entry_is_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    entries, message = HOSTILE[case]
    archive = write_zip(tmp_path / "bad.zip", entries)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ArchiveError, match=message):
        unpack_zip(archive, root, max_bytes=1 << 20)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil.py").exists()


def test_a_zip_bomb_is_refused_by_its_ratio_under_the_size_cap(tmp_path: Path) -> None:
    """Zeros deflate about 1000:1: an archive of a few tens of KB that unpacks past 16 MB is
    refused though it is under the 250 MB cap."""
    archive = write_zip(tmp_path / "bomb.zip",
                        [("python/zeros.bin", bytes(RATIO_FLOOR_BYTES + 1), FILE)])
    assert archive.stat().st_size < RATIO_FLOOR_BYTES // 500
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ArchiveError, match="zip bomb"):
        unpack_zip(archive, root, max_bytes=250 * 1024 * 1024)
    assert list(root.iterdir()) == []


def test_a_zip_bomb_is_refused_by_the_size_cap(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "big.zip", [("a.bin", bytes(4096), FILE)] +
                        [(f"b{i}.bin", bytes(4096), FILE) for i in range(3)])
    with pytest.raises(ArchiveError, match="unpacks to 16384 bytes, over 10000"):
        unpack_zip(archive, tmp_path, max_bytes=10_000)


def _lie_about_size(archive: Path, declared: int) -> None:
    """Set the central directory's uncompressed size of the only entry to ``declared``."""
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    archive.write_bytes(bytes(data))


def test_an_entry_lying_about_its_size_is_refused_and_removed(tmp_path: Path) -> None:
    """The size checks use the declared sizes; zipfile stops at the declared size and then
    fails the CRC, so the lie is caught and the partial file is not left behind."""
    archive = write_zip(tmp_path / "liar.zip", [("python/big.bin", b"z" * 100_000, FILE)])
    _lie_about_size(archive, 10)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ArchiveError, match="corrupt entry"):
        unpack_zip(archive, root, max_bytes=1000)
    assert not (root / "python" / "big.bin").exists()


def test_corrupt_deflate_data_is_an_archive_error(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "corrupt.zip", [("a.py", b"print(1)\n" * 1000, FILE)])
    data = bytearray(archive.read_bytes())
    start = data.index(b"a.py") + 4  # the local header's name, then the deflate stream
    data[start:start + 40] = b"\xff" * 40
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrupt entry"):
        unpack_zip(archive, tmp_path / "root", max_bytes=1 << 20)


def test_encrypted_and_unknown_methods_are_archive_errors(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "enc.zip", [("a.py", b"x", FILE)])
    data = bytearray(archive.read_bytes())
    for header, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(header) + flags_at
        struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | 1)
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted"):
        unpack_zip(archive, tmp_path / "root", max_bytes=1 << 20)

    archive = write_zip(tmp_path / "method.zip", [("a.py", b"x", FILE)])
    data = bytearray(archive.read_bytes())
    for header, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", data, data.index(header) + method_at, 97)
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="compression method 97"):
        unpack_zip(archive, tmp_path / "root", max_bytes=1 << 20)


@pytest.mark.parametrize("case", ["duplicate-name", "char-device", "backslash-dotdot"])
def test_a_hostile_user_layer_is_one_line_naming_the_layer(tmp_path: Path, case: str) -> None:
    entries, message = HOSTILE[case]
    write_zip(tmp_path / "mine.zip", entries)
    out = tmp_path / "build" / "bundle"
    out.mkdir(parents=True)
    spec = SimpleNamespace(root=tmp_path, service=SimpleNamespace(layers=("mine.zip",)))
    with pytest.raises(ArchiveError, match=rf"\[service\] layers: mine.zip: .*{message}") as info:
        _user_layers(spec, out, 1)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_a_corrupt_user_layer_is_one_line_naming_the_layer(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "mine.zip", [("python/big.bin", b"z" * 100_000, FILE)])
    _lie_about_size(archive, 10)
    out = tmp_path / "build" / "bundle"
    out.mkdir(parents=True)
    spec = SimpleNamespace(root=tmp_path, service=SimpleNamespace(layers=("mine.zip",)))
    with pytest.raises(ArchiveError, match=r"\[service\] layers: mine.zip: .*corrupt entry"):
        _user_layers(spec, out, 1)  # type: ignore[arg-type]


def test_init_does_not_inflate_a_bomb_posing_as_a_skops_schema(tmp_path: Path) -> None:
    """``modelambda init`` reads a skops file's schema.json into memory: one over the cap is
    not read (the feature count is then unknown, as for any unreadable schema), though it is
    a valid schema; the same schema without the padding is read."""
    schema = b'{"content": {"content": {"n_features_in_": {"content": "4", "is_json": true}}}'
    padded = schema + b', "pad": "' + b" " * SCHEMA_MAX_BYTES + b'"}'
    model = write_zip(tmp_path / "model.skops", [("schema.json", padded, FILE)])
    assert model.stat().st_size < SCHEMA_MAX_BYTES // 100
    assert skops_feature_count(model) is None
    small = write_zip(tmp_path / "ok.skops", [("schema.json", schema + b"}", FILE)])
    assert skops_feature_count(small) == 4


@pytest.mark.parametrize("rel", ["../escape.onnx", "/etc/passwd", "a/../../b", "", ".",
                                 "model//x.onnx", "./model.onnx", "a\0b"])
def test_a_model_store_manifest_cannot_name_a_file_outside_its_version(rel: str) -> None:
    """The model store copies a version file by file, by its manifest (S3 keys, EFS paths):
    a name that is not a plain relative path is refused before anything is fetched."""
    manifest = json.dumps({"files": {rel: {"size": 1, "sha256": "0" * 64}}}).encode()
    with pytest.raises(ModelLoadError, match="outside the version"):
        parse_manifest(manifest, "s3://models/iris/versions/1")


@given(data=damaged_zip())
def test_a_damaged_zip_is_unpacked_or_refused_never_a_traceback(
        tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """Found by the fuzzer: a name whose bytes are not the UTF-8 its flag says, an impossible
    "version needed to extract" and offsets before the file's start raised UnicodeDecodeError,
    NotImplementedError and OSError from zipfile, a traceback through ``build``."""
    tally = Tally()
    check_unpack(data, tmp_path_factory.mktemp("zip"), tally)
    assert tally.outcome == "pass", tally.outcome


def test_a_name_that_is_not_its_flagged_utf8_is_an_archive_error(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "name.zip", [("python/a\u00e9.py", b"x", FILE)])
    data = bytearray(archive.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the name's "é" (C3 A9) made invalid
        at = data.index(b"a\xc3\xa9", data.index(header))
        data[at + 1] = 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable zip"):
        unpack_zip(archive, tmp_path / "root", max_bytes=1 << 20)
