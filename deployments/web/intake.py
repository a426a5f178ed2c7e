"""Where a browser upload lands: streamed into the dock's package store under a size cap, named as the user named it.

Why a link beside the store: the store addresses zips by content (``learnwares/<sha256>.zip``), but the submission
run names itself and its result after the file it is given (``submit-digits.zip``, "file digits.zip"). So the zip
is stored once through :class:`~lwlib.package_store.PackageStore` and the run gets
``<home>/uploads/<id>-<nonce>/<user's file name>``, a symlink to it. When the run refuses the zip, the store copy
goes (the submission discards it) and the dangling link is swept at the next upload; nothing else is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from lwlib.package_store import PackageStore, StoredPackage

__all__ = ["Upload", "UploadTooLarge", "EmptyUpload", "receive", "safe_file_name", "forget", "sweep",
           "UPLOADS_DIR", "KEEP_LINKS_S"]

#: Under the dock home; one folder per upload holding the link the submission run is given.
UPLOADS_DIR = "uploads"
#: Links older than this are swept (a run starts within seconds of its upload; its zip stays in the store).
KEEP_LINKS_S = 24 * 3600
#: Partial files of an interrupted upload older than this are swept.
KEEP_PARTIAL_S = 3600
_MAX_NAME_CHARS = 120


class UploadTooLarge(Exception):
    """The body went past the cap while streaming (nothing is kept)."""


class EmptyUpload(Exception):
    """No bytes came (nothing is kept)."""


@dataclass(frozen=True)
class Upload:
    """A stored upload: the store entry, the link the run gets, and whether these bytes were new to the store."""

    stored: StoredPackage
    link: Path
    size: int
    was_new: bool


def safe_file_name(name: str | None) -> str:
    """The user's file name reduced to a safe last path component (letters, digits, ``._-`` and spaces).

    >>> safe_file_name("../../etc/passwd")
    'passwd'
    >>> safe_file_name("C:\\\\Users\\\\me\\\\my model (v2).zip")
    'my model -v2-.zip'
    >>> safe_file_name("..")
    'upload.zip'
    """
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = "".join(c if c.isalnum() or c in "._- " else "-" for c in base).strip(" .")
    return cleaned[:_MAX_NAME_CHARS].rstrip(" .") or "upload.zip"


async def receive(chunks: AsyncIterator[bytes], *, home: Path, packages_dir: Path, file_name: str,
                  max_bytes: int, first: bytes = b"") -> Upload:
    """Stream ``first`` + ``chunks`` into the store (hashed as it goes, refused past ``max_bytes``).

    Raises
    ------
    UploadTooLarge, EmptyUpload
        Nothing is left behind.
    """
    uploads = home / UPLOADS_DIR
    uploads.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=uploads, prefix=".part-", suffix=".zip")
    tmp = Path(tmp_name)
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            async def _blocks() -> AsyncIterator[bytes]:
                if first:
                    yield first
                async for c in chunks:
                    yield c

            async for block in _blocks():
                size += len(block)
                if size > max_bytes:
                    raise UploadTooLarge(size)
                h.update(block)
                out.write(block)
        if size == 0:
            raise EmptyUpload()
        return await asyncio.to_thread(_commit, tmp, h.hexdigest(), size, uploads, packages_dir, file_name)
    finally:
        tmp.unlink(missing_ok=True)


def _commit(tmp: Path, sha: str, size: int, uploads: Path, packages_dir: Path, file_name: str) -> Upload:
    """Put the received file into the store (off the event loop: a copy of up to the cap) and link it."""
    store = PackageStore(packages_dir)
    was_new = not store.zip_path(sha).exists()
    stored = store.put(tmp, source_name=file_name)
    folder = Path(tempfile.mkdtemp(dir=uploads, prefix=f"{stored.id[:16]}-"))
    link = folder / file_name
    os.symlink(stored.path, link)
    return Upload(stored=stored, link=link, size=size, was_new=was_new)


def forget(upload: Upload, packages_dir: Path) -> None:
    """Undo :func:`receive` when no run was started: the link, and the stored zip if these bytes were new."""
    shutil.rmtree(upload.link.parent, ignore_errors=True)
    if upload.was_new:
        PackageStore(packages_dir).discard(upload.stored.id)


def sweep(home: Path, *, now: float | None = None) -> int:
    """Remove dangling links (their run refused the zip), links past :data:`KEEP_LINKS_S` and stale partials."""
    uploads = home / UPLOADS_DIR
    if not uploads.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for entry in uploads.iterdir():
        try:
            age = now - entry.lstat().st_mtime
            if entry.name.startswith(".part-"):
                if age > KEEP_PARTIAL_S:
                    entry.unlink(missing_ok=True)
                    removed += 1
                continue
            links = list(entry.iterdir()) if entry.is_dir() else []
            if age > KEEP_LINKS_S or (links and all(not p.exists() for p in links)):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except OSError:  # removed by a concurrent sweep
            continue
    return removed
