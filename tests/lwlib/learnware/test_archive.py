"""Safe extraction: every rejection has its own code and leaves nothing behind."""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from lwlib.errors import InvalidPackageError, UnsafeArchiveError
from lwlib.learnware.archive import ArchiveLimits, safe_extract, sha256_file


def _zip(path: Path, members: list[tuple[str, bytes] | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]],
         compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate-name warnings are the point of one test
        with zipfile.ZipFile(path, "w", compression) as zf:
            for m in members:
                if isinstance(m, tuple) and isinstance(m[0], zipfile.ZipInfo):
                    zf.writestr(m[0], m[1])
                else:
                    zf.writestr(m[0], m[1])
    return path


def _assert_clean(dest: Path) -> None:
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [p for p in dest.parent.iterdir() if p.suffix == ".zip"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def _reject(zip_path: Path, work: Path, code: str, limits: ArchiveLimits | None = None) -> None:
    dest = work / "out"
    with pytest.raises(UnsafeArchiveError) as ei:
        safe_extract(zip_path, dest, limits)
    assert ei.value.code == code, ei.value
    assert not dest.exists()
    assert [p.name for p in work.iterdir()] == [], "temp folder left behind"


def test_ok_extracts_files_and_sha(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("learnware.yaml", b"model: {}\n"), ("sub/x.py", b"print(1)\n")])
    root = safe_extract(z, work / "out")
    assert root == work / "out"
    assert (root / "learnware.yaml").read_bytes() == b"model: {}\n"
    assert (root / "sub" / "x.py").read_bytes() == b"print(1)\n"
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    import hashlib
    assert sha256_file(z) == hashlib.sha256(z.read_bytes()).hexdigest()


@pytest.mark.parametrize("name,code", [
    ("/etc/passwd", "archive_absolute_path"),
    ("C:/evil.txt", "archive_absolute_path"),
    ("../evil.txt", "archive_path_traversal"),
    ("a/../../evil.txt", "archive_path_traversal"),
    ("a\\..\\evil.txt", "archive_bad_path"),
    ("a//b.txt", "archive_bad_path"),
    ("./a.txt", "archive_bad_path"),
])
def test_rejects_bad_names(tmp_path: Path, work: Path, name: str, code: str) -> None:
    # zipfile normalises some names on write; patch the raw name bytes to the hostile one
    hostile = name.encode()
    placeholder = b"P" * len(hostile)
    z = _zip(tmp_path / "b.zip", [("ok.txt", b"fine"), (placeholder.decode(), b"evil")])
    z.write_bytes(z.read_bytes().replace(placeholder, hostile))
    _reject(z, work, code)


def test_rejects_symlink(tmp_path: Path, work: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip(tmp_path / "a.zip", [("a.txt", b"x"), (info, b"/etc/passwd")])
    _reject(z, work, "archive_symlink")


def test_rejects_special_file(tmp_path: Path, work: Path) -> None:
    info = zipfile.ZipInfo("fifo")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    z = _zip(tmp_path / "a.zip", [(info, b"")])
    _reject(z, work, "archive_special_file")


def test_rejects_encrypted(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("secret.txt", b"x")])
    raw = bytearray(z.read_bytes())  # set the "encrypted" bit in both headers
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(sig) + off
        struct.pack_into("<H", raw, at, struct.unpack_from("<H", raw, at)[0] | 0x1)
    z.write_bytes(bytes(raw))
    _reject(z, work, "archive_encrypted")


def test_rejects_too_many_members(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [(f"f{i}.txt", b"x") for i in range(11)])
    _reject(z, work, "archive_too_many_members", ArchiveLimits(max_members=10))


def test_rejects_member_too_big_by_header(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("big.bin", os.urandom(5000))])
    _reject(z, work, "archive_member_too_big", ArchiveLimits(max_member_bytes=4096))


def test_rejects_total_too_big(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [(f"f{i}.bin", os.urandom(3000)) for i in range(3)])
    _reject(z, work, "archive_too_big", ArchiveLimits(max_total_bytes=8000))


def _patch_sizes(z: Path, new_size: int) -> None:
    """Forge the uncompressed size in both the local and the central header of the only member."""
    raw = bytearray(z.read_bytes())
    loc = raw.find(b"PK\x03\x04")
    cen = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, loc + 22, new_size)
    struct.pack_into("<I", raw, cen + 24, new_size)
    z.write_bytes(bytes(raw))


def test_rejects_header_understating_size(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("data.bin", b"A" * 200_000)])
    _patch_sizes(z, 100)  # header claims 100 bytes, data inflates to 200 000
    assert zipfile.ZipFile(z).getinfo("data.bin").file_size == 100
    _reject(z, work, "archive_corrupt_member", ArchiveLimits(max_member_bytes=1000))


def test_rejects_header_overstating_size(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("data.bin", b"B" * 1000)])
    _patch_sizes(z, 5000)
    _reject(z, work, "archive_size_mismatch")


def test_rejects_bomb_ratio(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("zeros.bin", b"\0" * (4 << 20))])
    assert zipfile.ZipFile(z).getinfo("zeros.bin").compress_size * 200 < 4 << 20
    _reject(z, work, "archive_bomb")


def test_small_compressible_files_pass_ratio(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("zeros.txt", b"\0" * 100_000)])
    assert (safe_extract(z, work / "out") / "zeros.txt").stat().st_size == 100_000


@pytest.mark.parametrize("names", [("a.txt", "a.txt"), ("A.txt", "a.txt")])
def test_rejects_duplicate_names(tmp_path: Path, work: Path, names: tuple[str, str]) -> None:
    z = _zip(tmp_path / "a.zip", [(names[0], b"one"), (names[1], b"two")])
    _reject(z, work, "archive_duplicate_name")


def test_rejects_file_dir_conflict(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("a", b"file"), ("a/b.txt", b"under a file")])
    _reject(z, work, "archive_path_conflict")


def test_not_a_zip(tmp_path: Path, work: Path) -> None:
    p = tmp_path / "a.zip"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(InvalidPackageError) as ei:
        safe_extract(p, work / "out")
    assert ei.value.code == "not_a_zip"
    assert not isinstance(ei.value, UnsafeArchiveError)
    assert list(work.iterdir()) == []


def test_empty_zip(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [])
    with pytest.raises(InvalidPackageError) as ei:
        safe_extract(z, work / "out")
    assert ei.value.code == "empty_archive"
    assert list(work.iterdir()) == []


def test_one_top_folder_is_stripped(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("pkg/", b""), ("pkg/learnware.yaml", b"a: 1\n"), ("pkg/sub/m.py", b"")])
    root = safe_extract(z, work / "out")
    assert (root / "learnware.yaml").is_file() and (root / "sub" / "m.py").is_file()
    assert not (root / "pkg").exists()


def test_macosx_folder_is_ignored_for_stripping(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("pkg/learnware.yaml", b"a: 1\n"), ("__MACOSX/pkg/._learnware.yaml", b"junk")])
    root = safe_extract(z, work / "out")
    assert sorted(p.name for p in root.iterdir()) == ["learnware.yaml"]


def test_two_top_folders_with_root_files_kept(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("learnware.yaml", b"a: 1\n"), ("a/x.py", b""), ("b/y.py", b"")])
    root = safe_extract(z, work / "out")
    assert sorted(p.name for p in root.iterdir()) == ["a", "b", "learnware.yaml"]


def test_single_folder_with_root_file_not_stripped(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "a.zip", [("learnware.yaml", b"a: 1\n"), ("weights/w.bin", b"w")])
    root = safe_extract(z, work / "out")
    assert (root / "weights" / "w.bin").is_file()


def test_existing_dest_requires_overwrite(tmp_path: Path, work: Path) -> None:
    z1 = _zip(tmp_path / "a.zip", [("v.txt", b"one")])
    z2 = _zip(tmp_path / "b.zip", [("v.txt", b"two")])
    dest = safe_extract(z1, work / "out")
    with pytest.raises(FileExistsError):
        safe_extract(z2, dest)
    assert (dest / "v.txt").read_bytes() == b"one"
    safe_extract(z2, dest, overwrite=True)
    assert (dest / "v.txt").read_bytes() == b"two"
    assert sorted(p.name for p in work.iterdir()) == ["out"]


def test_failed_overwrite_keeps_old_tree(tmp_path: Path, work: Path) -> None:
    good = _zip(tmp_path / "a.zip", [("v.txt", b"one")])
    bad = _zip(tmp_path / "b.zip", [("v.txt", b"x"), ("v.txt", b"y")])
    dest = safe_extract(good, work / "out")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(bad, dest, overwrite=True)
    assert (dest / "v.txt").read_bytes() == b"one"
    assert sorted(p.name for p in work.iterdir()) == ["out"]


@pytest.mark.parametrize("name,code", [
    ("a" * 256 + ".py", "archive_name_too_long"),
    ("d/" * 40 + "x.py", "archive_too_deep"),
    ("\uff0e\uff0e/x.py", "archive_path_traversal"),
    ("a\x1b[31m.py", "archive_bad_path"),
    ("a\u202e.py", "archive_bad_path"),
])
def test_rejects_long_deep_and_odd_names(tmp_path: Path, work: Path, name: str, code: str) -> None:
    _reject(_zip(tmp_path / "n.zip", [("ok.txt", b"fine"), (name, b"x")]), work, code)


def test_accepts_unicode_and_longest_names(tmp_path: Path, work: Path) -> None:
    longest = "é" * 127 + "a"  # 255 bytes in UTF-8
    z = _zip(tmp_path / "u.zip", [("modèle/数据.py", b"1"), (f"x/{longest}", b"2")])
    root = safe_extract(z, work / "out")
    assert (root / "modèle" / "数据.py").read_bytes() == b"1" and (root / "x" / longest).is_file()


def test_member_count_checked_before_parsing_the_directory(tmp_path: Path, work: Path) -> None:
    z = _zip(tmp_path / "m.zip", [(f"f{i}", b"") for i in range(10)])
    _reject(z, work, "archive_too_many_members", ArchiveLimits(max_members=5))
