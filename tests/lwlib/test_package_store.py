"""The content-addressed package store: one path per content, nothing half-written, refusals that name the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lwlib.errors import InvalidPackageError
from lwlib.package_store import PackageStore


def test_same_bytes_land_at_one_path_and_the_id_is_their_sha256(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    src = tmp_path / "x.zip"
    src.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    a, b = store.put(src), store.put(src.read_bytes(), source_name="upload.zip")
    assert a.id == b.id == hashlib.sha256(src.read_bytes()).hexdigest()
    assert a.path == b.path and a.source_name == "x.zip" and b.source_name == "upload.zip"
    assert store.ids() == {a.id} and store.partials() == []


def test_discard_removes_zip_and_tree(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    pkg = store.put(b"abc", source_name="a.zip")
    store.tree_path(pkg.id).mkdir()
    (store.tree_path(pkg.id) / "f").write_text("x")
    store.discard(pkg.id)
    assert store.ids() == set()


def test_missing_file_is_refused_with_its_name_only(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackageError) as exc:
        PackageStore(tmp_path / "s").put(tmp_path / "gone.zip")
    assert exc.value.code == "package_not_found" and "gone.zip" in exc.value.message
    assert str(tmp_path) not in exc.value.message


def test_a_failed_copy_leaves_no_partial_file(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "s")

    def chunks():
        yield b"abc"
        raise OSError("disk full")

    with pytest.raises(OSError):
        store._write(chunks(), "big.zip")
    assert store.partials() == [] and store.ids() == set()
