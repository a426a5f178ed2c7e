"""Read a user's data files: the deploying stage takes paths so the Prefect UI and the CLI can pass them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lwlib._validation import check_array
from lwlib.errors import LwdockError

__all__ = ["load_table", "save_table"]


def load_table(path: str | Path, *, labelled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``X`` (and ``y`` when ``labelled``) from ``.npy`` (X), ``.npz`` (arrays ``X``, ``y``) or ``.csv``.

    A labelled CSV carries the label in its last column; a header row is detected and skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise LwdockError(f"user data file {p} does not exist", code="user_data_missing", path=str(p))
    y: Any = None
    if p.suffix == ".npy":
        X = np.load(p, allow_pickle=False)
    elif p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "X" not in z:
                raise LwdockError(f"{p} must hold an array named 'X' (and 'y' for labels); found {list(z)}",
                                  code="user_data_format")
            X, y = z["X"], (z["y"] if "y" in z else None)
    elif p.suffix in (".csv", ".txt"):
        with p.open() as fh:
            first = fh.readline()
        skip = 1 if any(c.isalpha() for c in first.replace("e-", "").replace("e+", "").replace("nan", "")) else 0
        data = np.loadtxt(p, delimiter=",", skiprows=skip, ndmin=2)
        X, y = (data[:, :-1], data[:, -1]) if labelled else (data, None)
    else:
        raise LwdockError(f"unsupported user data format '{p.suffix}'; use .npy, .npz (X, y) or .csv",
                          code="user_data_format")
    if labelled and y is None:
        raise LwdockError(f"{p} has no labels: use an .npz with arrays X and y, or a CSV whose last column is y",
                          code="user_data_format")
    return check_array(X, name=f"data in {p.name}"), None if y is None else np.asarray(y)


def save_table(path: str | Path, X: Any, y: Any = None) -> Path:
    """Write ``X`` (and ``y``) in the format :func:`load_table` reads, chosen by the suffix."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".npz":
        np.savez(p, X=np.asarray(X), **({} if y is None else {"y": np.asarray(y)}))
    else:
        np.save(p, np.asarray(X))
    return p
