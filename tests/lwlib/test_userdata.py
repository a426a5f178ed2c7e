"""User data files: formats, header detection, bounds, exact file names, memory proportional to the data."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lwlib.errors import UserDataError
from lwlib.userdata import load_table, save_table

X = np.arange(20.0).reshape(5, 4) / 3.0
Y = np.array([0, 1, 0, 1, 1])


@pytest.mark.parametrize("suffix", [".csv", ".npz", ".npy"])
def test_save_writes_the_name_given_and_round_trips(tmp_path: Path, suffix: str) -> None:
    y = None if suffix == ".npy" else Y
    path = save_table(tmp_path / f"data{suffix}", X, y)
    assert path == tmp_path / f"data{suffix}" and [p.name for p in tmp_path.iterdir()] == [path.name]
    X2, y2 = load_table(path, labelled=y is not None)
    np.testing.assert_array_equal(X2, X)  # CSV uses 17 significant digits: exact
    if y is not None:
        np.testing.assert_array_equal(y2, Y)


def test_save_refuses_unknown_suffix_and_labels_in_npy(tmp_path: Path) -> None:
    with pytest.raises(UserDataError):
        save_table(tmp_path / "x.parquet", X)
    with pytest.raises(UserDataError):
        save_table(tmp_path / "x.npy", X, Y)
    assert list(tmp_path.iterdir()) == []


def test_pandas_default_header_and_index_are_not_data(tmp_path: Path) -> None:
    df = pd.DataFrame(X)
    df.to_csv(tmp_path / "noindex.csv", index=False)  # header "0,1,2,3"
    df.to_csv(tmp_path / "index.csv")  # header ",0,1,2,3" and an index column
    pd.DataFrame(X, columns=list("abcd")).to_csv(tmp_path / "named.csv", index=False)
    for name in ("noindex.csv", "index.csv", "named.csv"):
        np.testing.assert_allclose(load_table(tmp_path / name)[0], X, err_msg=name)


@pytest.mark.parametrize("text,rows", [
    ("0,1,2\n3,4,5\n", 1),     # 0..n-1 is pandas' header
    ("0,1,3\n3,4,5\n", 2),     # not 0..n-1: data
    ("0\n1\n2\n", 3),          # one column: "0" is data
    ("1.5,2\n3,4\n", 2),
    ("x,y\n3,4\n", 1),
    ("\n\n1,2\n\n3,4\n", 2),   # blank lines are skipped
])
def test_csv_header_rule(tmp_path: Path, text: str, rows: int) -> None:
    (tmp_path / "t.csv").write_text(text)
    assert load_table(tmp_path / "t.csv")[0].shape[0] == rows


def test_data_row_with_an_empty_cell_is_not_taken_for_a_header(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("1,,3\n4,5,6\n")
    with pytest.raises(UserDataError) as ei:
        load_table(tmp_path / "t.csv")
    assert ei.value.code == "user_data_parse"


def test_npy_variants_load(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    np.save(tmp_path / "i.npy", np.arange(6, dtype=np.int32).reshape(3, 2))
    np.save(tmp_path / "v.npy", np.arange(4.0))
    np.save(tmp_path / "img.npy", np.zeros((2, 3, 4, 4), dtype=np.float32))
    np.testing.assert_array_equal(load_table(tmp_path / "f.npy")[0], X)
    assert load_table(tmp_path / "i.npy")[0].dtype == np.float64
    assert load_table(tmp_path / "v.npy")[0].shape == (4, 1)
    assert load_table(tmp_path / "img.npy")[0].shape == (2, 48)


def test_npz_compressed_and_stored(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "c.npz", X=X, y=Y)
    np.savez(tmp_path / "s.npz", X=X)
    np.testing.assert_array_equal(load_table(tmp_path / "c.npz", labelled=True)[1], Y)
    np.testing.assert_array_equal(load_table(tmp_path / "s.npz")[0], X)
    assert load_table(tmp_path / "c.npz")[1] is None


def test_max_bytes_is_checked_from_the_header(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((100, 10), dtype=np.float32))  # 4 000 bytes, 8 000 as float64
    assert load_table(tmp_path / "x.npy", max_bytes=8_000)[0].shape == (100, 10)
    with pytest.raises(UserDataError) as ei:
        load_table(tmp_path / "x.npy", max_bytes=7_999)
    assert ei.value.code == "user_data_too_large" and "x.npy" in ei.value.message


def test_width_and_labels(tmp_path: Path) -> None:
    path = save_table(tmp_path / "d.csv", X, Y)
    assert load_table(path, labelled=True, n_features=4)[0].shape == (5, 4)
    with pytest.raises(UserDataError) as ei:
        load_table(path, n_features=4)  # unlabelled read sees 5 columns
    assert ei.value.code == "user_data_width" and ei.value.message.startswith("5 columns")


def test_npz_peak_memory_is_proportional_to_the_data(tmp_path: Path) -> None:
    big = np.random.default_rng(0).integers(0, 100, size=(150_000, 8)).astype(np.float64)  # 9.6 MB
    np.savez_compressed(tmp_path / "big.npz", X=big)
    tracemalloc.start()
    try:
        X2, _ = load_table(tmp_path / "big.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(X2, big)
    assert peak < big.nbytes + 6_000_000, f"peak {peak} for {big.nbytes} bytes of data"  # one copy + a few chunks


def test_npz_member_header_is_read_before_its_data(tmp_path: Path) -> None:
    """A member that declares more than the limit is refused without inflating it."""
    with zipfile.ZipFile(tmp_path / "z.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (2_000_000,)})
            for _ in range(4):
                fh.write(bytes(4_000_000))
    tracemalloc.start()
    try:
        with pytest.raises(UserDataError) as ei:
            load_table(tmp_path / "z.npz", max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ei.value.code == "user_data_too_large" and peak < 1_000_000
