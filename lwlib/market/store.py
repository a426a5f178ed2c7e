"""The persisted search index: memory-mapped files beside the catalog, updated incrementally at catalog writes.

Layout under ``<home>/search-index/``::

    manifest.json              the commit point (atomic replace): groups, row counts, kernel parameters, stamp
    lock                       writers' exclusive lock (readers never lock)
    <group>.v<N>/              one feature space (spec type, d); N bumps when the group is refitted
        ids.S64  z.f8  beta.f8  self.f8  sketch.f4  coarse.f4  live.u1     append-only row files
        shift.npy  scale.npy  omega.npy                               the kernel parameters of the fit

Adding learnwares appends rows to the files and then rewrites the manifest, so a reader holding the old
manifest keeps seeing a consistent prefix; deleting one clears its ``live`` byte. The kernel parameters
(standardisation, γ, sketch frequencies) are fitted by :class:`lwlib.search.index.SpecGroup` — the same code the
torch searcher runs — and frozen until the group is refitted: when it is small (a refit is cheap and exact), when
the number of live rows drifted by more than :data:`REFIT_DRIFT` since the fit, or on ``lwdock catalog rebuild``.
Rows are loaded with ``numpy.memmap``: no Python lists, and a query touches the sketch and its shortlist only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from numpy.typing import NDArray

from lwlib.market.kernel import KernelParams, NumpyView, row_arrays

logger = logging.getLogger(__name__)

__all__ = ["IndexStore", "IndexGroup", "IndexCorruptError", "RowFile", "REFIT_DRIFT", "REFIT_MAX_ROWS", "FORMAT"]

FORMAT = 1
INDEX_DIR = "search-index"
REFIT_MAX_ROWS = 500  # at or below this many live rows a group is refitted on every change (exact; ~0.1 s + torch)
REFIT_DRIFT = 0.10  # refit when live rows changed by more than this share since the kernel was fitted
ID_BYTES = 64
_FILES = {"z": np.float64, "beta": np.float64, "self": np.float64, "sketch": np.float32, "coarse": np.float32,
          "live": np.uint8}
COARSE_FREQS = 64  # frequency pairs of the coarse sketch (128 columns): the first pass over a big market


def coarse_of(sketch: NDArray[np.float32] | None, freqs: int = COARSE_FREQS) -> NDArray[np.float32]:
    """The coarse sketch: the first ``freqs`` cos and sin columns, rescaled so dot products estimate the kernel.

    The full sketch is ``[cos ωᵀz | sin ωᵀz] β / √D``; keeping ``freqs`` of the D frequencies and multiplying by
    ``√(D/freqs)`` keeps ``coarse_i · coarse_q`` an unbiased (noisier) estimate of ``⟨Φ_i, Q⟩``, from a quarter
    of the bytes: a query scans it first and reads full sketch rows only for its best candidates.
    """
    if sketch is None or sketch.shape[1] == 0:
        return np.zeros((0 if sketch is None else sketch.shape[0], 0), np.float32)
    D = sketch.shape[1] // 2
    f = min(freqs, D)
    cols = np.r_[0:f, D:D + f]
    return np.ascontiguousarray(sketch[:, cols] * np.float32(np.sqrt(D / f)), dtype=np.float32)


class RowFile:
    """Rows of a row-major array file read with ``pread`` on demand (what a query needs: a shortlist's rows).

    A memory map would keep every row a query ever touched mapped into the process: a server's RSS would creep up
    to the whole reduced-set file (1.6 GB at 10⁵ learnwares) as the shortlists vary. Reads here go through the
    page cache into short-lived arrays instead. Supports ``shape``, ``len``, and indexing by int, slice or an
    integer array (rows come back in the order asked).
    """

    def __init__(self, path: Path, dtype: Any, shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.shape = path, np.dtype(dtype), shape
        self._row = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def __len__(self) -> int:
        return int(self.shape[0])

    def _read(self, start: int, stop: int) -> NDArray[Any]:
        buf = os.pread(self._fd, (stop - start) * self._row, start * self._row)
        return np.frombuffer(buf, dtype=self.dtype).reshape((stop - start, *self.shape[1:])).copy()

    def __getitem__(self, key: Any) -> NDArray[Any]:
        if isinstance(key, (int, np.integer)):
            k = int(key) + (len(self) if int(key) < 0 else 0)
            row: NDArray[Any] = self._read(k, k + 1)[0]
            return row
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            out = self._read(start, max(start, stop))
            return out if step == 1 else out[::step]
        idx = np.asarray(key, dtype=np.int64).reshape(-1)
        out = np.empty((idx.size, *self.shape[1:]), dtype=self.dtype)
        if idx.size == 0:
            return out
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        breaks = np.flatnonzero(np.diff(srt) > 1) + 1  # runs of consecutive rows: one read each
        for run in np.split(np.arange(srt.size), breaks):
            lo, hi = int(srt[run[0]]), int(srt[run[-1]]) + 1
            block = self._read(lo, hi)
            out[order[run]] = block[srt[run] - lo]
        return out


class IndexCorruptError(OSError):
    """A group's files are shorter than its committed manifest says (the index is rebuilt on the next sync)."""


@dataclass
class IndexGroup:
    """One feature space of a loaded index: ids, live mask and a :class:`NumpyView` over memory-mapped rows."""

    key: str
    spec_type: str
    d: int
    kmax: int
    ids: NDArray[Any]  # (n_rows,) bytes S64, dead rows included
    live: NDArray[np.bool_]
    view: NumpyView
    fitted_n: int

    @property
    def n_live(self) -> int:
        return int(self.live.sum())

    def id_of(self, row: int) -> str:
        return bytes(self.ids[row]).decode()


def _slug(spec_type: str, d: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9]+', '', spec_type)[:40]}-{int(d)}"


class IndexStore:
    """Read and write the persisted index of one dock home (see the module docstring for the layout)."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / INDEX_DIR

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    # ------------------------------------------------------------------ reading
    def read_manifest(self) -> dict[str, Any] | None:
        try:
            m = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("search index manifest %s unreadable (%s); it will be rebuilt", self.manifest_path, exc)
            return None
        return m if m.get("format") == FORMAT else None

    def load(self) -> tuple[dict[str, Any], dict[str, IndexGroup]] | None:
        """The committed index (memory-mapped), or None when there is none; retries if a refit swaps files."""
        for _ in range(5):
            m = self.read_manifest()
            if m is None:
                return None
            try:
                return m, {g["key"]: self.load_group(g) for g in m["groups"]}
            except FileNotFoundError:  # a writer refitted a group between our manifest read and the open
                time.sleep(0.01)
        return None

    def _map(self, gdir: Path, name: str, dtype: Any, shape: tuple[int, ...], *, rows: bool = False) -> Any:
        """A read-only memory map of a row file (``rows=True``: a :class:`RowFile` read on demand)."""
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        path = gdir / f"{name}.{np.dtype(dtype).str[1:]}"
        need = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if path.stat().st_size < need:  # a writer died before its data reached the file: rebuild
            raise IndexCorruptError(f"{path} holds {path.stat().st_size} bytes, the manifest needs {need}")
        if rows:
            return RowFile(path, dtype, shape)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def load_group(self, g: dict[str, Any]) -> IndexGroup:
        gdir = self.root / g["dir"]
        n, k, d, cols = int(g["n_rows"]), int(g["kmax"]), int(g["d"]), int(g["sketch_cols"])
        ccols = int(g.get("coarse_cols", 0))
        omega = np.load(gdir / "omega.npy") if cols else None
        shift = np.load(gdir / "shift.npy") if g["standardized"] else None
        scale = np.load(gdir / "scale.npy") if g["standardized"] else None
        params = KernelParams(mode=g["mode"], gamma=float(g["gamma"]), shift=shift, scale=scale, omega=omega)
        ids = self._map(gdir, "ids", f"S{ID_BYTES}", (n,))
        live = np.array(self._map(gdir, "live", np.uint8, (n,)), dtype=bool)
        view = NumpyView(params, self._map(gdir, "z", np.float64, (n, k, d), rows=True),
                         self._map(gdir, "beta", np.float64, (n, k), rows=True),
                         self._map(gdir, "self", np.float64, (n,)),
                         self._map(gdir, "sketch", np.float32, (n, cols)) if cols else None,
                         coarse=self._map(gdir, "coarse", np.float32, (n, ccols)) if ccols else None)
        return IndexGroup(g["key"], g["spec_type"], d, k, ids, live, view, int(g["fitted_n"]))

    # ------------------------------------------------------------------ writing (callers hold the lock)
    @contextmanager
    def locked(self, *, wait: bool = True) -> Iterator[bool]:
        """Exclusive writer lock; yields False at once (without the lock) when busy and ``wait`` is False."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def commit(self, manifest: dict[str, Any]) -> None:
        """Atomically publish a manifest, then drop group directories no longer referenced."""
        manifest = {**manifest, "format": FORMAT, "updated": time.time()}
        tmp = self.root / f".manifest.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.manifest_path)
        keep = {g["dir"] for g in manifest["groups"]}
        for p in self.root.iterdir():
            if p.is_dir() and p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)

    def write_group(self, spec_type: str, d: int, version: int, ids: list[str], params: KernelParams,
                    Zt: NDArray[np.float64], beta: NDArray[np.float64], selfs: NDArray[np.float64],
                    sketch: NDArray[np.float32] | None, fitted_n: int) -> dict[str, Any]:
        """Write a freshly fitted group to a new directory; returns its manifest entry (not yet committed)."""
        slug = _slug(spec_type, d)
        gdir = self.root / f"{slug}.v{version}"
        if gdir.exists():
            shutil.rmtree(gdir)
        gdir.mkdir(parents=True)
        np.save(gdir / "omega.npy", params.omega if params.omega is not None else np.zeros((d, 0)))
        if params.shift is not None and params.scale is not None:
            np.save(gdir / "shift.npy", params.shift)
            np.save(gdir / "scale.npy", params.scale)
        entry = {"key": slug, "dir": gdir.name, "version": version, "spec_type": spec_type, "d": int(d),
                 "kmax": int(beta.shape[1]), "n_rows": 0, "mode": params.mode, "gamma": float(params.gamma),
                 "standardized": params.shift is not None, "fitted_n": int(fitted_n),
                 "sketch_cols": 0 if sketch is None else int(sketch.shape[1]),
                 "coarse_cols": int(coarse_of(sketch[:1] if sketch is not None else None).shape[1]),
                 "fitted_at": time.time()}
        for name in ("ids", *_FILES):
            (gdir / self._fname(name)).touch()
        return self.append_rows(entry, ids, Zt, beta, selfs, sketch)

    @staticmethod
    def _fname(name: str) -> str:
        return f"ids.S{ID_BYTES}" if name == "ids" else f"{name}.{np.dtype(_FILES[name]).str[1:]}"

    def append_rows(self, entry: dict[str, Any], ids: list[str], Zt: NDArray[np.float64], beta: NDArray[np.float64],
                    selfs: NDArray[np.float64], sketch: NDArray[np.float32] | None) -> dict[str, Any]:
        """Append rows (after truncating any tail a crashed writer left); returns the updated entry."""
        gdir, n = self.root / entry["dir"], int(entry["n_rows"])
        k, d, cols = int(entry["kmax"]), int(entry["d"]), int(entry["sketch_cols"])
        ccols = int(entry.get("coarse_cols", 0))
        m = len(ids)
        if any(len(i) > ID_BYTES for i in ids):
            raise ValueError(f"learnware ids longer than {ID_BYTES} characters cannot be indexed")
        pad, bpad = Zt, beta
        if Zt.shape[1] != k:  # a row with a smaller reduced set: zero-pad it to the group's width
            pad = np.zeros((m, k, d))
            pad[:, :Zt.shape[1]] = Zt
            bpad = np.zeros((m, k))
            bpad[:, :beta.shape[1]] = beta
        arrays = {"ids": np.asarray(ids, dtype=f"S{ID_BYTES}"), "z": pad, "beta": bpad,
                  "self": np.asarray(selfs, dtype=np.float64), "live": np.ones(m, dtype=np.uint8),
                  "sketch": np.zeros((m, 0), np.float32) if sketch is None else np.asarray(sketch, np.float32)}
        row_bytes = {"ids": ID_BYTES, "z": 8 * k * d, "beta": 8 * k, "self": 8, "live": 1, "sketch": 4 * cols}
        if ccols:
            arrays["coarse"] = coarse_of(arrays["sketch"])
            row_bytes["coarse"] = 4 * ccols
        for name, arr in arrays.items():
            path = gdir / self._fname(name)
            with open(path, "r+b") as fh:
                fh.truncate(n * row_bytes[name])
                fh.seek(0, os.SEEK_END)
                # no copy of the rows (unless the dtype differs); no fsync: the index is rebuildable, and a torn
                # tail is cut at the next append / detected at load (file shorter than the manifest says)
                dtype = f"S{ID_BYTES}" if name == "ids" else _FILES[name]
                fh.write(memoryview(np.ascontiguousarray(arr, dtype=dtype).data).cast("B"))
        return {**entry, "n_rows": n + m}

    def clear_rows(self, entry: dict[str, Any], rows: NDArray[np.int64]) -> None:
        """Mark rows dead (their ``live`` byte becomes 0; the data stay until the next refit)."""
        if rows.size == 0:
            return
        path = self.root / entry["dir"] / self._fname("live")
        live = np.memmap(path, dtype=np.uint8, mode="r+", shape=(int(entry["n_rows"]),))
        live[rows] = 0
        live.flush()
        del live

    def group_rows(self, entry: dict[str, Any]) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """(ids, live) of a committed group, read from disk."""
        g = self.load_group(entry)
        return g.ids, g.live


def params_from_view(view: Any) -> KernelParams:
    """Kernel parameters of a torch :class:`~lwlib.search.index.KernelView` as numpy."""
    omega = None if view.omega is None else view.omega.numpy().copy()
    return KernelParams(mode=view.mode, gamma=float(view.gamma), shift=None if view.shift is None else
                        np.asarray(view.shift, dtype=np.float64), scale=None if view.scale is None else
                        np.asarray(view.scale, dtype=np.float64), omega=omega)


def fit_group(spec_type: str, ids: list[str], Z: NDArray[np.float64], beta: NDArray[np.float64],
              ) -> tuple[KernelParams, NDArray[np.float64], NDArray[np.float64], NDArray[np.float32] | None]:
    """Fit the market kernel of one feature space with the torch searcher's own code; returns its rows too.

    Imports torch (the writer side of the index only: a submission, a rebuild, or a reader finding no index).
    """
    import torch

    from lwlib.search.index import SpecGroup

    g = SpecGroup(spec_type=spec_type, n_features=int(Z.shape[2]), ids=list(ids), Zs=torch.from_numpy(Z),
                  betas=torch.from_numpy(beta))
    v = g.view("market")
    params = params_from_view(v)
    sketch = None if v.sketch is None else v.sketch.numpy().astype(np.float32)
    return params, v.Zs.numpy(), np.asarray(v.self_terms, dtype=np.float64), sketch


def rows_under(params: KernelParams, Z: NDArray[np.float64], beta: NDArray[np.float64]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32] | None]:
    """Rows for new learnwares under frozen parameters (numpy; the incremental path)."""
    return row_arrays(params, Z, beta)
