"""Safe extraction of uploaded learnware zips.

Uploads are untrusted: a zip can carry ``../`` or absolute names (zip slip), symlinks, forged size headers, or
a few KiB that inflate to gigabytes. :func:`safe_extract` checks every name first, then streams every member while
counting the bytes actually produced, and writes into a temporary folder next to the destination that is renamed
into place only when everything passed — on any error nothing is left behind.

Member names (:func:`check_member_name`) are refused, each with a code, when they are

* empty, absolute (``/x``, ``C:x``), climb out (``..``) or have empty / ``.`` parts;
* longer than :data:`~lwlib.constants.ARCHIVE_MAX_COMPONENT_BYTES` per component (NAME_MAX: longer names crashed
  extraction with ``OSError: File name too long``) or :data:`~lwlib.constants.ARCHIVE_MAX_NAME_BYTES` in total, or
  deeper than :data:`~lwlib.constants.ARCHIVE_MAX_DEPTH` components;
* carrying control characters (C0, DEL, C1), lone surrogates, bidi marks or backslashes (a NUL never gets here:
  ``zipfile`` cuts a name at its first NUL when reading the directory, and the rest of these rules apply to what
  is left);
* "odd unicode": a component whose NFKC form is ``.``/``..`` or contains ``/`` or ``\\`` (e.g. ``．．`` or
  ``∕``): harmless on Linux, but tools that normalise would treat them as traversal. Duplicates are detected on
  the NFKC-casefolded name, so ``Model.py`` and ``ｍodel.py`` cannot both be shipped.

Before ``zipfile`` parses the central directory, its declared entry count and size are read from the end record,
so a zip of a million empty members is refused without building a million ``ZipInfo`` objects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import struct
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lwlib.constants import (ARCHIVE_MAX_COMPONENT_BYTES, ARCHIVE_MAX_DEPTH, ARCHIVE_MAX_MEMBER_BYTES,
                             ARCHIVE_MAX_MEMBERS, ARCHIVE_MAX_NAME_BYTES, ARCHIVE_MAX_RATIO, ARCHIVE_MAX_TOTAL_BYTES)
from lwlib.errors import InvalidPackageError, UnsafeArchiveError
from lwlib.text import BIDI_CONTROLS, safe_text

__all__ = ["ArchiveLimits", "safe_extract", "sha256_file", "check_member_name", "open_zip", "read_zip_directory",
           "ZIP_ERRORS"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_IGNORED_TOP = "__MACOSX"  # resource forks added by macOS Finder; never part of a package
_CD_BYTES_PER_MEMBER = 4096  # central-directory budget per allowed member (header + name + extra + comment)
#: What ``zipfile`` raises on hostile or broken input (forged zip64 records, bad name encodings, truncation).
ZIP_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                                               ValueError, struct.error, NotImplementedError, OverflowError,
                                               RuntimeError)


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
    max_zip_bytes : int
        Largest zip file accepted at all (compressed size).
    """

    max_members: int = ARCHIVE_MAX_MEMBERS
    max_member_bytes: int = ARCHIVE_MAX_MEMBER_BYTES
    max_total_bytes: int = ARCHIVE_MAX_TOTAL_BYTES
    max_ratio: float = ARCHIVE_MAX_RATIO
    ratio_floor_bytes: int = 1 << 20
    max_zip_bytes: int = ARCHIVE_MAX_TOTAL_BYTES


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (the learnware content id)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _name_error(name: str, why: str, code: str = "archive_bad_path") -> UnsafeArchiveError:
    shown = safe_text(repr(name), max_chars=120)
    return UnsafeArchiveError(f"Zip member name {shown} {why}", code=code, member=safe_text(name, max_chars=120))


def check_member_name(name: str) -> PurePosixPath:
    """Return the member's relative path, or raise :class:`UnsafeArchiveError` for a dangerous name.

    See the module docstring for the rules; every refusal names the member (control characters shown escaped,
    long names shortened).
    """
    if not name:
        raise _name_error(name, "is empty; rename it.")
    if len(name.encode("utf-8", "surrogatepass")) > ARCHIVE_MAX_NAME_BYTES:
        raise _name_error(name, f"is longer than {ARCHIVE_MAX_NAME_BYTES} bytes; use shorter paths.",
                          "archive_name_too_long")
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS]
    if bad:
        raise _name_error(name, f"has control, surrogate or bidi characters ({safe_text(ascii(bad[0]))}); rename "
                          "it with printable characters.")
    if "\\" in name:
        raise _name_error(name, "uses backslashes; zips must use '/' separators. Re-create the zip with a standard "
                          "tool (python -m zipfile, zip).")
    if name.startswith("/"):
        raise _name_error(name, "has an absolute path; store paths relative to the package root.",
                          "archive_absolute_path")
    parts = name.rstrip("/").split("/")
    if len(parts[0]) >= 2 and parts[0][1] == ":":
        raise _name_error(name, "starts with a drive letter; store relative paths.", "archive_absolute_path")
    if ".." in parts:
        raise _name_error(name, "climbs out of the package with '..'; remove it.", "archive_path_traversal")
    if any(p in ("", ".") for p in parts):
        raise _name_error(name, "has empty or '.' path parts; store clean relative paths.")
    if len(parts) > ARCHIVE_MAX_DEPTH:
        raise _name_error(name, f"is {len(parts)} folders deep; at most {ARCHIVE_MAX_DEPTH} are allowed.",
                          "archive_too_deep")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > ARCHIVE_MAX_COMPONENT_BYTES:
            raise _name_error(name, f"has a path component longer than {ARCHIVE_MAX_COMPONENT_BYTES} bytes (the "
                              "filesystem limit); shorten it.", "archive_name_too_long")
        folded = unicodedata.normalize("NFKC", part)
        if folded in (".", "..") or "/" in folded or "\\" in folded:
            raise _name_error(name, "has a component that Unicode normalisation turns into a path separator or "
                              "'.'/'..'; use plain characters.", "archive_path_traversal")
    return PurePosixPath(*parts)


def _name_key(rel: PurePosixPath) -> str:
    """Duplicate key: NFKC-casefolded, so look-alike and case-only variants collide."""
    return unicodedata.normalize("NFKC", str(rel)).casefold()


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
        key = _name_key(rel)
        if key in seen:
            raise UnsafeArchiveError(f"Zip member name {info.filename!r} appears twice (names are compared "
                                     "case-insensitively, after Unicode NFKC); keep one copy.",
                                     code="archive_duplicate_name", member=info.filename)
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
    except UnsafeArchiveError:
        raise
    except ZIP_ERRORS as exc:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) and exc.filename is not None:
            raise  # our own disk (full, permissions): not the uploader's fault, and its message holds host paths
        raise UnsafeArchiveError(f"Zip member {info.filename!r} is corrupt or its sizes/CRC are forged "
                                 f"({type(exc).__name__}: {safe_text(exc, max_chars=120)}); re-create the zip.",
                                 code="archive_corrupt_member", member=info.filename) from exc
    if written != info.file_size:
        raise UnsafeArchiveError(f"Zip member {info.filename!r} produced {written} bytes but its header says "
                                 f"{info.file_size}; the header is forged or the file is truncated.",
                                 code="archive_size_mismatch", member=info.filename)
    return total


def _not_a_zip(zip_path: Path, why: str) -> InvalidPackageError:
    return InvalidPackageError(f"{safe_text(zip_path.name, max_chars=80)} is not a readable zip file ({why}); upload "
                               "a .zip archive of the learnware folder.", code="not_a_zip", path=str(zip_path))


def read_zip_directory(fh: Any) -> tuple[int, int]:
    """(declared entry count, central directory bytes) from a zip's end record, without parsing the directory.

    Raises
    ------
    zipfile.BadZipFile
        No end-of-central-directory record (not a zip, or truncated).
    """
    zf: Any = zipfile  # the stdlib's own EOCD (+ zip64) reader, private but stable; it seeks and reads ~64 KiB
    end = zf._EndRecData(fh)
    if end is None:
        raise zipfile.BadZipFile("no end-of-central-directory record")
    return int(end[zf._ECD_ENTRIES_TOTAL]), int(end[zf._ECD_SIZE])


def _precheck_directory(fh: Any, limits: ArchiveLimits) -> None:
    """Read the end-of-central-directory record and refuse huge entry counts/directories before zipfile parses."""
    entries, cd_size = read_zip_directory(fh)
    if entries > limits.max_members:
        raise UnsafeArchiveError(f"Zip declares {entries} members; at most {limits.max_members} are allowed. Drop "
                                 "unneeded files (datasets, caches) from the package.",
                                 code="archive_too_many_members", n_members=entries)
    if cd_size > limits.max_members * _CD_BYTES_PER_MEMBER:
        raise UnsafeArchiveError(f"Zip's central directory is {cd_size} bytes; at most "
                                 f"{limits.max_members * _CD_BYTES_PER_MEMBER} are allowed (long names, extras or "
                                 "comments on many members).", code="archive_too_many_members", size=cd_size)


def open_zip(zip_path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> zipfile.ZipFile:
    """Open an untrusted zip for reading after bounding its size and central directory.

    Raises
    ------
    InvalidPackageError
        ``not_a_zip`` (unreadable, truncated, forged zip64 records, bad name encoding), with the cause but
        without any host path.
    UnsafeArchiveError
        ``archive_too_big`` (zip file larger than ``max_zip_bytes``), ``archive_too_many_members``.
    """
    limits = limits or ArchiveLimits()
    zip_path = Path(zip_path)
    try:
        size = zip_path.stat().st_size
    except OSError as exc:
        raise _not_a_zip(zip_path, type(exc).__name__) from exc
    if size > limits.max_zip_bytes:
        raise UnsafeArchiveError(f"The zip is {size} bytes; at most {limits.max_zip_bytes} are accepted.",
                                 code="archive_too_big", size=size)
    try:
        with open(zip_path, "rb") as fh:
            _precheck_directory(fh, limits)
        return zipfile.ZipFile(zip_path)
    except UnsafeArchiveError:
        raise
    except ZIP_ERRORS as exc:
        why = type(exc).__name__ if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) else \
            f"{type(exc).__name__}: {safe_text(exc, max_chars=120)}"
        raise _not_a_zip(zip_path, why) from exc


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
        ``archive_name_too_long``, ``archive_too_deep``,
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
    zf = open_zip(zip_path, limits)
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
