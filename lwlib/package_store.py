"""The content-addressed package store: ``learnwares/<sha256>.zip`` and its extracted tree ``learnwares/<sha256>/``.

Why one place: the content id is computed once, when the bytes enter the dock, and passed along from there; every
exit that does not end in a recorded learnware removes exactly what :meth:`PackageStore.put` and the extraction
wrote, so the store never holds a half-submitted package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lwlib.errors import InvalidPackageError

__all__ = ["PackageStore", "StoredPackage"]

_CHUNK = 1 << 20
MAX_UPLOAD_BYTES = 2 * 1024**3  # a zip larger than this is refused before it is hashed or copied


@dataclass(frozen=True)
class StoredPackage:
    """A zip in the store: its content id and path, and the name the submitter gave it (for messages)."""

    id: str
    path: Path
    source_name: str = ""


class PackageStore:
    """Content-addressed learnware zips under ``root``.

    Parameters
    ----------
    root : Path
        ``Settings.packages_dir``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def zip_path(self, learnware_id: str) -> Path:
        return self.root / f"{learnware_id}.zip"

    def tree_path(self, learnware_id: str) -> Path:
        return self.root / learnware_id

    def put(self, source: str | os.PathLike[str] | bytes, *, source_name: str | None = None) -> StoredPackage:
        """Copy a zip into the store (streamed and hashed in one pass); the same bytes always land at one path.

        Raises
        ------
        InvalidPackageError
            ``package_not_found`` when the path is not a readable file, ``package_too_large`` past the size cap.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            name = source_name or "upload.zip"
            self._check_size(len(source), name)
            chunks: Iterable[bytes] = (source,)
            return self._write(chunks, name)
        src = Path(source).expanduser()
        name = source_name or src.name
        if not src.is_file():
            raise InvalidPackageError(f"{name} is not a file the dock can read; give the path of a learnware zip.",
                                      code="package_not_found", path=name)
        self._check_size(src.stat().st_size, name)
        with src.open("rb") as fh:
            return self._write(iter(lambda: fh.read(_CHUNK), b""), name)

    @staticmethod
    def _check_size(size: int, name: str) -> None:
        if size > MAX_UPLOAD_BYTES:
            raise InvalidPackageError(f"{name} is {size} bytes; the limit is {MAX_UPLOAD_BYTES}.",
                                      code="package_too_large", path=name)

    def _write(self, chunks: Iterable[bytes], name: str) -> StoredPackage:
        """Stream into a temp file beside the store, hashing as it goes, then rename into the content address."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".part-", suffix=".zip")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for block in chunks:
                    h.update(block)
                    out.write(block)
            sha = h.hexdigest()
            dest = self.zip_path(sha)
            if dest.exists():
                Path(tmp).unlink()
            else:
                os.replace(tmp, dest)
            return StoredPackage(sha, dest, name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def discard(self, learnware_id: str) -> None:
        """Remove a package's zip and extracted tree (a rejected or deleted learnware leaves nothing)."""
        self.zip_path(learnware_id).unlink(missing_ok=True)
        shutil.rmtree(self.tree_path(learnware_id), ignore_errors=True)

    def ids(self) -> set[str]:
        """Content ids with anything in the store (zip or tree), for orphan sweeps."""
        if not self.root.is_dir():
            return set()
        out = set()
        for p in self.root.iterdir():
            stem = p.name[:-4] if p.name.endswith(".zip") else p.name
            if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem):
                out.add(stem)
        return out

    def partials(self) -> list[Path]:
        """Temporary files of interrupted copies/extractions (``.part-*``), for orphan sweeps."""
        return sorted(self.root.glob(".part-*")) if self.root.is_dir() else []
