"""Read a user's data files: the deploying stage takes paths so the Prefect UI and the CLI can pass them.

A data file is untrusted input like a learnware zip: it can lie in its header, hide gigabytes in a small zip,
hold text, NaN or pickled objects. Every refusal is one :class:`~lwlib.errors.UserDataError` whose message gives
the cause first, then the file's base name and the fix, so the CLI prints a single ``error:`` line.

Bounds are checked *before* anything is allocated, and peak memory stays proportional to the data actually held:

* ``.npy``: the header (magic, dtype, shape) is read on its own; object, structured, string, complex and date
  dtypes are refused (``allow_pickle`` is never on), ``prod(shape) × max(itemsize, 8)`` must stay within
  ``max_bytes`` (the float64 array we will hold), and the bytes after the header must match the shape exactly.
* ``.npz``: the zip's end record is read first (≤ 64 members); only ``X.npy`` (and ``y.npy``) are opened, each
  member's NPY header is read from the compressed stream before its data, its declared size must be possible for
  its compressed size (deflate cannot exceed ~1032:1, so a larger claim is a forged header), and its data are
  streamed into one preallocated array of exactly the declared size.
* ``.csv`` / ``.txt``: at most ``max_bytes / 4`` bytes of UTF-8 text (a value needs at least 2 bytes of text and
  becomes 8 bytes of float64). The first row is a **header** when one of its non-empty cells is not a number, or
  when it is exactly ``0,1,…,n-1`` with n ≥ 2 (pandas' default column names; a one-column file whose first value
  is 0 is read as data). An empty first header cell (pandas' unnamed index column, e.g. ``,0,1`` or ``,a,b``)
  marks the first column as a row index, which is dropped. Ragged rows, empty cells and non-numeric values are
  refused with their row/column.
* every format: no rows or no columns, NaN/±inf, and a width different from ``n_features`` (when the caller knows
  it) are refused.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import USER_DATA_MAX_BYTES, USER_DATA_NPZ_MAX_MEMBERS
from lwlib.errors import UserDataError
from lwlib.text import safe_text

__all__ = ["load_table", "save_table", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".npy", ".npz", ".csv", ".txt")
_MAX_NPY_HEADER = 10_000  # numpy's own default for untrusted headers
_DEFLATE_MAX_RATIO = 1_032  # the most deflate can expand (258-byte matches from 2-bit codes)
_CHUNK = 1 << 20  # zipfile holds ~4 chunks (compressed input, tail, output) while inflating one


def _err(code: str, cause: str, name: str, fix: str) -> UserDataError:
    return UserDataError(f"{cause} in user data file {name}; {fix}", code=code, path=name)


# ------------------------------------------------------------------------------------------------------ NPY / NPZ
def _npy_header(fh: IO[bytes], name: str, max_bytes: int) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Read and bound an NPY header; return (shape, fortran_order, dtype, data bytes)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ValueError(f"NPY format version {version} is not supported")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError) as exc:
        raise _err("user_data_corrupt", f"not a valid NPY array ({safe_text(exc, max_chars=100)})", name,
                   "save it with numpy.save(path, X)") from exc
    if dtype.hasobject or dtype.names is not None or dtype.kind not in "biuf":
        raise _err("user_data_dtype", f"an array of dtype {safe_text(dtype, max_chars=60)} (not plain numbers)", name,
                   "save a numeric array (float or int); object arrays would need pickle, which is never loaded")
    count = 1
    for dim in shape:
        count *= int(dim)
    need = count * max(dtype.itemsize, 8)
    if need > max_bytes:
        raise _err("user_data_too_large", f"a declared shape {tuple(shape)} of {dtype} ({need} bytes as float64, "
                   f"limit {max_bytes})", name, "pass a smaller sample of your data")
    return tuple(int(d) for d in shape), bool(fortran), dtype, count * dtype.itemsize


def _read_exact(fh: IO[bytes], shape: tuple[int, ...], fortran: bool, dtype: np.dtype[Any], nbytes: int,
                name: str) -> NDArray[Any]:
    """Stream exactly ``nbytes`` into one preallocated array (no intermediate copies)."""
    arr = np.empty(nbytes // max(dtype.itemsize, 1), dtype=dtype)
    view = memoryview(arr.view(np.uint8).reshape(-1).data) if nbytes else memoryview(b"")
    pos = 0
    try:
        while pos < nbytes:
            got = fh.readinto(view[pos:pos + _CHUNK])  # type: ignore[attr-defined]
            if not got:
                break
            pos += got
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _err("user_data_corrupt", f"a damaged array ({type(exc).__name__})", name,
                   "re-create the file with numpy.save / numpy.savez") from exc
    if pos != nbytes:
        raise _err("user_data_corrupt", f"{pos} data bytes where the header declares {nbytes} (truncated or forged "
                   "header)", name, "re-create the file with numpy.save / numpy.savez")
    return arr.reshape(shape, order="F" if fortran else "C")


def _load_npy(p: Path, name: str, max_bytes: int) -> NDArray[Any]:
    with p.open("rb") as fh:
        shape, fortran, dtype, nbytes = _npy_header(fh, name, max_bytes)
        remaining = p.stat().st_size - fh.tell()
        if remaining != nbytes:
            raise _err("user_data_corrupt", f"{remaining} data bytes where the header declares {nbytes} (truncated or "
                       "forged header)", name, "re-create the file with numpy.save")
        return _read_exact(fh, shape, fortran, dtype, nbytes, name)


def _npz_member(zf: zipfile.ZipFile, key: str, name: str, max_bytes: int) -> NDArray[Any] | None:
    try:
        info = zf.getinfo(f"{key}.npy")
    except KeyError:
        return None
    what = f"{name} (array {key})"
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _err("user_data_format", "an encrypted or unusually compressed member", what,
                   "write it with numpy.savez or numpy.savez_compressed")
    possible = info.compress_size if info.compress_type == zipfile.ZIP_STORED else \
        _DEFLATE_MAX_RATIO * info.compress_size + 1024
    if info.file_size > possible:
        raise _err("user_data_corrupt", f"a member declaring {info.file_size} bytes from {info.compress_size} "
                   "compressed bytes (impossible: a forged header or a zip bomb)", what,
                   "re-create the file with numpy.savez")
    if info.file_size > max_bytes + _MAX_NPY_HEADER + 128:
        raise _err("user_data_too_large", f"a member of {info.file_size} bytes (limit {max_bytes})", what,
                   "pass a smaller sample of your data")
    try:
        with zf.open(info) as fh:
            shape, fortran, dtype, nbytes = _npy_header(fh, what, max_bytes)
            if info.file_size - fh.tell() != nbytes:
                raise _err("user_data_corrupt", f"{info.file_size - fh.tell()} data bytes where the header declares "
                           f"{nbytes}", what, "re-create the file with numpy.savez")
            return _read_exact(fh, shape, fortran, dtype, nbytes, what)
    except UserDataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise _err("user_data_corrupt", f"a damaged member ({type(exc).__name__})", what,
                   "re-create the file with numpy.savez") from exc


def _load_npz(p: Path, name: str, max_bytes: int) -> tuple[NDArray[Any], NDArray[Any] | None]:
    from lwlib.learnware.archive import ZIP_ERRORS, read_zip_directory

    try:
        with p.open("rb") as fh:
            entries, cd_size = read_zip_directory(fh)
        if entries > USER_DATA_NPZ_MAX_MEMBERS or cd_size > USER_DATA_NPZ_MAX_MEMBERS * 4096:
            raise _err("user_data_format", f"an .npz of {entries} members", name,
                       f"keep only the arrays X and y (at most {USER_DATA_NPZ_MAX_MEMBERS} members)")
        zf = zipfile.ZipFile(p)
    except UserDataError:
        raise
    except ZIP_ERRORS as exc:
        raise _err("user_data_corrupt", f"not a readable .npz ({type(exc).__name__})", name,
                   "save it with numpy.savez(path, X=X, y=y)") from exc
    with zf:
        X = _npz_member(zf, "X", name, max_bytes)
        if X is None:
            found = [safe_text(n.removesuffix(".npy"), max_chars=30) for n in zf.namelist()[:10]]
            raise _err("user_data_format", f"no array named 'X' (found {found})", name,
                       "save it with numpy.savez(path, X=X) (and y=y for labels)")
        y = _npz_member(zf, "y", name, max_bytes)
    return X, y


# ------------------------------------------------------------------------------------------------------------ CSV
def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _csv_layout(first_line: str) -> tuple[bool, bool]:
    """(is the first line a header, is the first column pandas' unnamed index) — see the module docstring."""
    cells = [c.strip().strip('"').strip() for c in first_line.rstrip("\r\n").split(",")]
    index_col = len(cells) >= 2 and cells[0] in ("", "Unnamed: 0")
    names = cells[1:] if index_col else cells
    pandas_default = (len(names) >= 2 or index_col) and all(c.isdecimal() and c.isascii() for c in names) and \
        [int(c) for c in names] == list(range(len(names)))
    header = pandas_default or any(c and not _is_number(c) for c in cells)
    return header, header and index_col


def _load_csv(p: Path, name: str, max_bytes: int) -> NDArray[np.float64]:
    size = p.stat().st_size
    if size > max_bytes // 4:
        raise _err("user_data_too_large", f"a CSV of {size} bytes (limit {max_bytes // 4})", name,
                   "pass a smaller sample, or save it as .npy")
    with p.open("rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head:
        raise _err("user_data_format", "binary content (NUL bytes) where CSV text was expected", name,
                   "export the table as comma-separated text, or save it as .npy")
    try:
        with p.open("r", encoding="utf-8-sig", newline="") as text:
            first = ""
            for line in text:  # skip leading blank lines
                if line.strip():
                    first = line
                    break
    except UnicodeDecodeError as exc:
        raise _err("user_data_format", "text that is not UTF-8", name, "save the CSV as UTF-8") from exc
    if not first:
        raise _err("user_data_empty", "no rows", name, "pass a file with at least one row of numbers")
    header, index_col = _csv_layout(first)
    n_cols = first.count(",") + 1
    usecols = range(1, n_cols) if index_col else None
    try:
        with warnings.catch_warnings(), p.open("r", encoding="utf-8-sig", newline="") as text:
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            lines = (line for line in text if line.strip())
            if header:
                next(lines, None)
            data = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, quotechar='"', usecols=usecols)
    except (ValueError, UnicodeDecodeError) as exc:
        why = safe_text(str(exc).split("; use `usecols`")[0], max_chars=160)
        raise _err("user_data_parse", f"unreadable CSV ({why}; data rows and columns counted from 0)", name,
                   "every row needs the same number of comma-separated numbers, without empty cells") from exc
    return data


# -------------------------------------------------------------------------------------------------------- public
def _as_matrix(X: NDArray[Any], name: str, n_features: int | None) -> NDArray[np.float64]:
    if X.ndim == 0:
        raise _err("user_data_shape", "a single number", name, "pass a table of shape (n_samples, n_features)")
    if X.size == 0:
        raise _err("user_data_empty", f"no data (shape {X.shape})", name, "pass at least one row of numbers")
    X = X.reshape(-1, 1) if X.ndim == 1 else X.reshape(X.shape[0], -1)
    out = np.ascontiguousarray(X, dtype=np.float64)  # no copy when it already is float64
    bad = ~np.isfinite(out)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise _err("user_data_nonfinite", f"{int(bad.sum())} NaN or infinite values (first at data row {r + 1}, "
                   f"column {c + 1})", name, "impute or drop them first")
    if n_features is not None and out.shape[1] != n_features:
        raise _err("user_data_width", f"{out.shape[1]} columns where {n_features} are expected", name,
                   f"pass the same {n_features} features the learnwares were trained on")
    return out


def _as_labels(y: NDArray[Any], n_rows: int, name: str) -> NDArray[Any]:
    if y.dtype.kind not in "biuf" or y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise _err("user_data_labels", f"labels of dtype {y.dtype} and shape {y.shape}", name,
                   "labels must be one number per row")
    y = y.reshape(-1)
    if y.shape[0] != n_rows:
        raise _err("user_data_labels", f"{y.shape[0]} labels for {n_rows} rows", name, "give one label per row")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise _err("user_data_nonfinite", "NaN or infinite labels", name, "drop the unlabelled rows")
    return y


def load_table(path: str | os.PathLike[str], *, labelled: bool = False, n_features: int | None = None,
               max_bytes: int = USER_DATA_MAX_BYTES) -> tuple[NDArray[np.float64], NDArray[Any] | None]:
    """Load ``X`` (and ``y`` when ``labelled``) from ``.npy`` (X), ``.npz`` (arrays ``X``, ``y``) or ``.csv``.

    A labelled CSV carries the label in its last column. See the module docstring for header detection and
    the bounds.

    Parameters
    ----------
    path : path-like
    labelled : bool, default False
        Also return labels (``y`` of an ``.npz``, the last CSV column); refused for ``.npy``.
    n_features : int, optional
        Expected width of ``X`` (e.g. the learnwares' Input.Dimension); another width is refused.
    max_bytes : int, default 512 MiB
        Largest float64 array ``X`` may become (``y`` likewise); checked from headers before loading.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64, finite
    y : ndarray of shape (n_samples,) or None

    Raises
    ------
    UserDataError
        ``user_data_missing``, ``user_data_empty``, ``user_data_format``, ``user_data_corrupt``,
        ``user_data_dtype``, ``user_data_too_large``, ``user_data_parse``, ``user_data_shape``,
        ``user_data_nonfinite``, ``user_data_width``, ``user_data_labels``.
    """
    p = Path(path)
    name = safe_text(p.name, max_chars=80)
    if not p.is_file():
        raise _err("user_data_missing", "no such file", name, "check the path")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _err("user_data_format", f"the unsupported format '{safe_text(p.suffix, max_chars=20)}'", name,
                   "use .npy, .npz (arrays X, y) or .csv (e.g. pandas: df.to_csv(path, index=False))")
    if p.stat().st_size == 0:
        raise _err("user_data_empty", "an empty file", name, "pass a file with at least one row of numbers")
    y: NDArray[Any] | None = None
    if suffix == ".npy":
        X = _load_npy(p, name, max_bytes)
    elif suffix == ".npz":
        X, y = _load_npz(p, name, max_bytes)
    else:
        data = _load_csv(p, name, max_bytes)
        if labelled and data.shape[1] < 2:
            raise _err("user_data_labels", "a labelled CSV with a single column", name,
                       "put the features first and the label in the last column")
        X, y = (data[:, :-1], data[:, -1]) if labelled else (data, None)
    if labelled and y is None:
        raise _err("user_data_labels", "no labels", name,
                   "use an .npz with arrays X and y, or a CSV whose last column is y")
    X_out = _as_matrix(X, name, n_features)
    return X_out, (None if not labelled or y is None else _as_labels(y, X_out.shape[0], name))


def save_table(path: str | os.PathLike[str], X: Any, y: Any = None) -> Path:
    """Write ``X`` (and ``y``) in the format :func:`load_table` reads, chosen by the suffix; return ``path``.

    ``.npy`` holds ``X`` only, ``.npz`` the arrays ``X`` and ``y``, ``.csv`` a header row ``x0,…`` (``y`` last)
    and full-precision numbers. The file is written to a temporary name and renamed, so it is never half there,
    and it is written under exactly the name given (``numpy.save`` alone would turn ``x.csv`` into ``x.csv.npy``).

    Raises
    ------
    UserDataError
        ``user_data_format``: an unsupported suffix, or labels for ``.npy``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = save_table(pathlib.Path(tempfile.mkdtemp()) / "t.csv", [[1.0, 2.0]], [0])
    >>> p.name, load_table(p, labelled=True)[1].tolist()
    ('t.csv', [0.0])
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _err("user_data_format", f"the unsupported format '{safe_text(p.suffix, max_chars=20)}'", p.name,
                   "use .npy, .npz or .csv")
    X_arr = np.asarray(X)
    if suffix == ".npy" and y is not None:
        raise _err("user_data_format", "labels given for an .npy file", p.name, "use .npz or .csv for X and y")
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, X_arr, allow_pickle=False)
    elif suffix == ".npz":
        arrays: dict[str, Any] = {"X": X_arr} if y is None else {"X": X_arr, "y": np.asarray(y)}
        np.savez(buf, **arrays)
    else:
        table = X_arr.reshape(X_arr.shape[0], -1) if X_arr.ndim != 1 else X_arr.reshape(-1, 1)
        cols = [f"x{i}" for i in range(table.shape[1])]
        if y is not None:
            table = np.column_stack([table, np.asarray(y).reshape(-1)])
            cols.append("y")
        np.savetxt(buf, table, delimiter=",", fmt="%.17g", header=",".join(cols), comments="")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getbuffer())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
