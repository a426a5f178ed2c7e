"""Safe extraction of uploaded learnware zips.

Uploads are untrusted: a zip can carry ``../`` or absolute names (zip slip), symlinks, forged size headers, or
a few KiB that inflate to gigabytes. :func:`safe_extract` checks every name first, then streams every member while
counting the bytes actually produced, and writes into a temporary folder next to the destination that is renamed
into place only when everything passed — on any error nothing is left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lwlib.constants import (ARCHIVE_MAX_MEMBER_BYTES, ARCHIVE_MAX_MEMBERS, ARCHIVE_MAX_RATIO,
                             ARCHIVE_MAX_TOTAL_BYTES)
from lwlib.errors import InvalidPackageError, UnsafeArchiveError

__all__ = ["ArchiveLimits", "safe_extract", "sha256_file", "check_member_name"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_IGNORED_TOP = "__MACOSX"  # resource forks added by macOS Finder; never part of a package


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds for one archive.

    Parameters
    ----------
    max_members : int
        Most entries (files and folders) allowed.
    max_member_bytes : int
        Largest uncompressed size of one file, counted while streaming.
    max_total_bytes : int
        Largest uncompressed size of all files together.
    max_ratio : float
        Largest uncompressed/compressed ratio of a member (zip-bomb guard); applied to members whose output
        exceeds ``ratio_floor_bytes`` so tiny, very compressible text files pass.
    ratio_floor_bytes : int
        Output size below which the ratio is not enforced.
    """

    max_members: int = ARCHIVE_MAX_MEMBERS
    max_member_bytes: int = ARCHIVE_MAX_MEMBER_BYTES
    max_total_bytes: int = ARCHIVE_MAX_TOTAL_BYTES
    max_ratio: float = ARCHIVE_MAX_RATIO
    ratio_floor_bytes: int = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (the learnware content id)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_member_name(name: str) -> PurePosixPath:
    """Return the member's relative path, or raise :class:`UnsafeArchiveError` for a dangerous name."""
    if not name or "\x00" in name or any(ord(c) < 32 for c in name):
        raise UnsafeArchiveError(f"Zip member name {name!r} is empty or has control characters; rename it.",
                                 code="archive_bad_path", member=name)
    if "\\" in name:
        raise UnsafeArchiveError(f"Zip member {name!r} uses backslashes; zips must use '/' separators. Re-create "
                                 "the zip with a standard tool (python -m zipfile, zip).", code="archive_bad_path",
                                 member=name)
    if name.startswith("/"):
        raise UnsafeArchiveError(f"Zip member {name!r} has an absolute path; store paths relative to the package "
                                 "root.", code="archive_absolute_path", member=name)
    parts = name.rstrip("/").split("/")
    if len(parts[0]) >= 2 and parts[0][1] == ":":
        raise UnsafeArchiveError(f"Zip member {name!r} starts with a drive letter; store relative paths.",
                                 code="archive_absolute_path", member=name)
    if ".." in parts:
        raise UnsafeArchiveError(f"Zip member {name!r} climbs out of the package with '..'; remove it.",
                                 code="archive_path_traversal", member=name)
    if any(p in ("", ".") for p in parts):
        raise UnsafeArchiveError(f"Zip member {name!r} has empty or '.' path parts; store clean relative paths.",
                                 code="archive_bad_path", member=name)
    return PurePosixPath(*parts)


def _member_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    if fmt == stat.S_IFLNK:
        return "symlink"
    if fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special"
    return "dir" if info.is_dir() or fmt == stat.S_IFDIR else "file"


def _plan(zf: zipfile.ZipFile, limits: ArchiveLimits) -> tuple[list[tuple[zipfile.ZipInfo, PurePosixPath]], int]:
    """Check the central directory; return (member, relative path) pairs and how many top parts to strip."""
    infos = [i for i in zf.infolist() if i.filename.split("/", 1)[0] != _IGNORED_TOP]
    if len(infos) > limits.max_members:
        raise UnsafeArchiveError(f"Zip has {len(infos)} members; at most {limits.max_members} are allowed. Drop "
                                 "unneeded files (datasets, caches) from the package.",
                                 code="archive_too_many_members", n_members=len(infos))
    if not infos:
        raise InvalidPackageError("The zip is empty; a learnware needs learnware.yaml and its model files.",
                                  code="empty_archive")
    seen: set[str] = set()
    files: set[PurePosixPath] = set()
    plan = []
    declared_total = 0
    for info in infos:
        rel = check_member_name(info.filename)
        kind = _member_kind(info)
        if kind == "symlink":
            raise UnsafeArchiveError(f"Zip member {info.filename!r} is a symbolic link; packages may hold only "
                                     "regular files. Replace the link by the file it points to.",
                                     code="archive_symlink", member=info.filename)
        if kind == "special":
            raise UnsafeArchiveError(f"Zip member {info.filename!r} is a device, fifo or other special file; only "
                                     "regular files are allowed.", code="archive_special_file", member=info.filename)
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(f"Zip member {info.filename!r} is encrypted; upload an unencrypted zip.",
                                     code="archive_encrypted", member=info.filename)
        key = str(rel).casefold()
        if key in seen:
            raise UnsafeArchiveError(f"Zip member name {info.filename!r} appears twice (names are compared "
                                     "case-insensitively); keep one copy.", code="archive_duplicate_name",
                                     member=info.filename)
        seen.add(key)
        if kind == "file":
            if info.file_size > limits.max_member_bytes:
                raise UnsafeArchiveError(f"Zip member {info.filename!r} declares {info.file_size} bytes; the limit "
                                         f"is {limits.max_member_bytes}.", code="archive_member_too_big",
                                         member=info.filename, size=info.file_size)
            declared_total += info.file_size
            files.add(rel)
        plan.append((info, rel))
    if declared_total > limits.max_total_bytes:
        raise UnsafeArchiveError(f"Zip declares {declared_total} uncompressed bytes; the limit is "
                                 f"{limits.max_total_bytes}.", code="archive_too_big", size=declared_total)
    for rel in files:
        for parent in rel.parents:
            if parent in files:
                raise UnsafeArchiveError(f"Zip member {str(rel)!r} sits under {str(parent)!r}, which is a file; "
                                         "rename one of them.", code="archive_path_conflict", member=str(rel))
    tops = {rel.parts[0] for _, rel in plan}
    root_files = [rel for info, rel in plan if len(rel.parts) == 1 and not info.is_dir()]
    strip = 1 if len(tops) == 1 and not root_files else 0
    return plan, strip


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ArchiveLimits,
                 total: int) -> int:
    """Stream one member to ``target`` counting real output bytes; return the new running total."""
    written = 0
    budget_ratio = limits.max_ratio * max(info.compress_size, 1)
    try:
        with zf.open(info) as src, open(target, "xb") as dst:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                total += len(chunk)
                if written > limits.max_member_bytes:
                    raise UnsafeArchiveError(f"Zip member {info.filename!r} inflates past {limits.max_member_bytes} "
                                             "bytes (its header understates it).", code="archive_member_too_big",
                                             member=info.filename)
                if total > limits.max_total_bytes:
                    raise UnsafeArchiveError(f"Zip inflates past {limits.max_total_bytes} bytes in total.",
                                             code="archive_too_big")
                if written > limits.ratio_floor_bytes and written > budget_ratio:
                    raise UnsafeArchiveError(f"Zip member {info.filename!r} inflates more than {limits.max_ratio:g}x "
                                             "its compressed size; this looks like a zip bomb.",
                                             code="archive_bomb", member=info.filename)
                dst.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UnsafeArchiveError(f"Zip member {info.filename!r} is corrupt or its sizes/CRC are forged ({exc}); "
                                 "re-create the zip.", code="archive_corrupt_member", member=info.filename) from exc
    if written != info.file_size:
        raise UnsafeArchiveError(f"Zip member {info.filename!r} produced {written} bytes but its header says "
                                 f"{info.file_size}; the header is forged or the file is truncated.",
                                 code="archive_size_mismatch", member=info.filename)
    return total


def safe_extract(zip_path: str | os.PathLike[str], dest: str | os.PathLike[str],
                 limits: ArchiveLimits | None = None, *, overwrite: bool = False) -> Path:
    """Extract ``zip_path`` into ``dest`` after checking it is safe; return ``dest`` (the package root).

    A single top-level folder holding everything is stripped, so ``dest/learnware.yaml`` is at the root either
    way. Extraction goes to a sibling temp folder that is renamed to ``dest`` only when complete.

    Parameters
    ----------
    zip_path : path
        The uploaded zip.
    dest : path
        Folder to create. Its parent is created if needed.
    limits : ArchiveLimits, optional
        Size and count bounds; defaults from :mod:`lwlib.constants`.
    overwrite : bool, default False
        Replace an existing ``dest``; otherwise an existing ``dest`` raises :class:`FileExistsError`.

    Raises
    ------
    InvalidPackageError
        ``not_a_zip`` / ``empty_archive``.
    UnsafeArchiveError
        One code per rejection: ``archive_absolute_path``, ``archive_path_traversal``, ``archive_bad_path``,
        ``archive_symlink``, ``archive_special_file``, ``archive_encrypted``, ``archive_duplicate_name``,
        ``archive_path_conflict``, ``archive_too_many_members``, ``archive_member_too_big``, ``archive_too_big``,
        ``archive_bomb``, ``archive_corrupt_member``, ``archive_size_mismatch``.
    FileExistsError
        ``dest`` exists and ``overwrite`` is False.
    """
    limits = limits or ArchiveLimits()
    zip_path, dest = Path(zip_path), Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists; pass overwrite=True to replace it.")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidPackageError(f"{zip_path.name} is not a readable zip file ({exc}); upload a .zip archive of "
                                  "the learnware folder.", code="not_a_zip", path=str(zip_path)) from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.part-", dir=dest.parent))
    try:
        with zf:
            plan, strip = _plan(zf, limits)
            total = 0
            for info, rel in plan:
                parts = rel.parts[strip:]
                if not parts:
                    continue
                target = tmp.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                total = _copy_member(zf, info, target, limits, total)
        ratio = total / max(zip_path.stat().st_size, 1)
        if total > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise UnsafeArchiveError(f"Zip inflates {ratio:.0f}x overall (limit {limits.max_ratio:g}x); this looks "
                                     "like a zip bomb.", code="archive_bomb")
        _install(tmp, dest, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.debug("extracted %s (%d bytes) to %s", zip_path, total, dest)
    return dest


def _install(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    """Move the finished tree into place; an existing ``dest`` is swapped out first when overwriting."""
    os.chmod(tmp, 0o755)
    old = None
    if overwrite and dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old / "tree")
    try:
        os.replace(tmp, dest)
    except OSError as exc:  # another process installed it first
        raise FileExistsError(f"{dest} appeared while extracting: {exc}") from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
