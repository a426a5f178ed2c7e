"""The market snapshot and its persisted index: same answers as the torch searcher, incremental = fresh build,
readers that never fail beside a writer, no torch/sklearn/Prefect on the read path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lwlib.catalog import Catalog, LearnwareRecord, SpecPayload
from lwlib.market import MarketSnapshot, rebuild_index, sync_index, update_index
from lwlib.market.semantic_filter import semantic_matches
from lwlib.market.store import IndexStore
from lwlib.market.userspec import fit_user_rkme, rkme_from_dict
from lwlib.semantic import make_semantic_spec

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
D = 6
NAMES = ["iris flowers", "house prices", "digits svc", "credit risk", "wine quality", "spam filter", "traffic flow",
         "crop yield"]
SCEN = ["Business", "Financial", "Health", "Nature", "Education", "Traffic", "Agriculture", "Others"]


def _id(i: int) -> str:
    return hashlib.sha256(f"market-test-{i}".encode()).hexdigest()


def _spec_arrays(i: int, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    mean = rng.normal(0, 3, D) * np.array([1, 10, 0.1, 1, 5, 1])
    Z = mean + rng.normal(size=(k, D)) * np.array([1, 10, 0.1, 1, 5, 1])
    return Z, rng.dirichlet(np.ones(k))


def add_learnwares(home: Path, idx: list[int], *, status: str = "USABLE") -> list[str]:
    """Real catalog rows (varied semantics, d = 6 RKMEs of varied K) through the catalog's own upsert."""
    ids = []
    with Catalog.open(home / "catalog.duckdb") as cat:
        for i in idx:
            sem = make_semantic_spec(name=f"{NAMES[i % len(NAMES)]} {i}", description=f"model {i} on "
                                     f"{SCEN[i % 7].lower()} data", task_type=["Classification", "Regression"][i % 2],
                                     scenarios=[SCEN[i % 7], SCEN[(i + 3) % 8]],
                                     license=["MIT", "Apache-2.0"][i % 3 == 0],
                                     input_dimension=D, output_dimension=2)
            Z, beta = _spec_arrays(i, k=10 + i % 5)
            rec = LearnwareRecord.from_semantic(_id(i), sem, status=status, spec_type="RKMETableSpecification",
                                                spec_dim=D, spec_k=len(beta), registry_name=f"lw-{i}")
            pay = SpecPayload.from_spec_dict(_id(i), {"z": Z.tolist(), "beta": beta.tolist(), "gamma": 0.1,
                                                      "num_points": 100, "type": "RKMETableSpecification"})
            cat.upsert_learnware(rec, [pay])
            ids.append(_id(i))
    return ids


def delete(home: Path, ids: list[str]) -> None:
    with Catalog.open(home / "catalog.duckdb") as cat:
        for i in ids:
            cat.delete(i)


def catalog_entries(home: Path) -> list:
    """The USABLE market as the torch searcher takes it, read through the catalog's public API (market order)."""
    from lwlib.search.searcher import SearchEntry

    with Catalog.open(home / "catalog.duckdb", read_only=True) as cat:
        records = {r.id: r for r in cat.list(status="USABLE")}
        payloads = cat.load_spec_payloads(ids=list(records))
    specs: dict = {}
    for p in payloads:
        specs.setdefault(p.learnware_id, {})[p.spec_type] = p.to_spec()
    return [SearchEntry(i, r.semantic_spec(), specs.get(i)) for i, r in records.items()]


def torch_search(home: Path, **kw):
    from lwlib.search import MarketSearcher

    return MarketSearcher().fit(catalog_entries(home)).search(**kw)


def assert_same(a, b, tol=1e-9):
    assert [m.learnware_id for m in a.singles] == [m.learnware_id for m in b.singles]
    np.testing.assert_allclose([m.score for m in a.singles], [m.score for m in b.singles], atol=tol)
    np.testing.assert_allclose([m.mmd2 for m in a.singles], [m.mmd2 for m in b.singles], atol=tol)
    assert [m.learnware_ids for m in a.mixtures] == [m.learnware_ids for m in b.mixtures]
    for ma, mb in zip(a.mixtures, b.mixtures):
        np.testing.assert_allclose(ma.weights, mb.weights, atol=1e-6)
    assert [m.learnware_id for m in a.semantic] == [m.learnware_id for m in b.semantic]
    assert a.kernel == b.kernel


def user_rows(i: int, n: int = 150) -> np.ndarray:
    Z, _ = _spec_arrays(i)
    rng = np.random.default_rng(1000 + i)
    return Z.mean(0) + rng.normal(size=(n, D)) * np.array([1, 10, 0.1, 1, 5, 1])


# ------------------------------------------------------------------------------------------- numpy = torch
@pytest.mark.parametrize("n,d,gamma", [(300, 5, 0.1), (2500, 12, 0.05), (40, 3, 0.3)])
def test_numpy_user_rkme_equals_the_torch_fit(n, d, gamma):
    from lwlib.rkme.rkme import RKMETableSpec

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)
    a, b = fit_user_rkme(X, gamma=gamma), RKMETableSpec(gamma=gamma).fit(X)
    np.testing.assert_allclose(a.z_, b.z_, atol=1e-7)
    np.testing.assert_allclose(a.beta_, b.beta_, atol=1e-7)
    assert a.num_points_ == b.num_points_ == n


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("market")
    add_learnwares(home, list(range(80)))
    add_learnwares(home, [90, 91], status="NONUSABLE")  # never searchable
    return home


def test_snapshot_search_equals_the_torch_searcher(market):
    snap = MarketSnapshot.open(market)
    assert len(snap) == 80  # USABLE only
    for i in (3, 17, 42):
        X = user_rows(i)
        ours = snap.search(None, user_X=X)
        theirs = torch_search(market, user_X=X)
        assert ours.singles and ours.singles[0].learnware_id == _id(i)
        assert_same(ours, theirs)
        q = {"Task": {"Type": "Class", "Values": ["Classification"]}, "Name": {"Type": "String", "Values": "flow"}}
        assert_same(snap.search(q, user_X=X), torch_search(market, query=q, user_X=X))


def test_snapshot_search_with_a_shortlist_equals_the_torch_searcher(market):
    snap = MarketSnapshot.open(market)
    X = user_rows(11)
    assert_same(snap.search(None, user_X=X, shortlist=20), MarketSearcherShortlist(market, X, 20))


def MarketSearcherShortlist(home, X, k):  # noqa: N802 - the torch searcher with the same shortlist size
    from lwlib.search import MarketSearcher

    return MarketSearcher(shortlist=k).fit(catalog_entries(home)).search(user_X=X)


@pytest.mark.parametrize("query", [
    {"Name": {"Type": "String", "Values": "iris"}},
    {"Name": {"Type": "String", "Values": "huose prcies"}},  # fuzzy
    {"Scenario": {"Type": "Tag", "Values": ["Health", "Traffic"]}, "License": {"Type": "Class", "Values": ["MIT"]}},
    {"Task": {"Type": "Class", "Values": ["Regression"]}, "Description": {"Type": "String", "Values": "nature data"}},
    {"Name": {"Type": "String", "Values": "no such thing at all"}},
])
def test_semantic_stage_equals_the_semantic_searcher(market, query):
    from lwlib.search.semantic import SemanticSearcher

    snap = MarketSnapshot.open(market)
    ours = semantic_matches(query, snap.columns)
    theirs = SemanticSearcher().search(query, [(r.id, r.semantic_spec()) for r in snap.records.values()])
    assert [(m.learnware_id, m.matched_on) for m in ours] == [(m.learnware_id, m.matched_on) for m in theirs]
    np.testing.assert_allclose([m.score for m in ours], [m.score for m in theirs])


def test_user_rkme_json_is_bounded_and_validated():
    good = {"z": [[0.0, 1.0]], "beta": [1.0], "gamma": 0.1, "num_points": 3, "type": "RKMETableSpecification"}
    assert rkme_from_dict(good).z_.shape == (1, 2)
    for bad in ([], {**good, "z": [[0.0, 1.0], [1.0]]}, {**good, "beta": [float("nan")]}, {**good, "type": "X"},
                {**good, "gamma": -1}, {**good, "z": [[0.0] * 10] * 10, "beta": [0.1] * 10}):
        with pytest.raises(Exception) as info:
            rkme_from_dict(bad, max_entries=50)
        assert getattr(info.value, "code", "").startswith("spec_")


# ------------------------------------------------------------------------------------------- persistence
def _live_rows(home: Path) -> dict[str, tuple]:
    _, groups = IndexStore(home).load()
    out = {}
    for g in groups.values():
        for r in np.flatnonzero(g.live):
            real = np.asarray(g.view.betas[r]) > 0  # padding rows differ (transformed or not) and weigh nothing
            out[g.id_of(int(r))] = (np.asarray(g.view.Zs[r])[real], float(g.view.self_terms[r]),
                                    np.asarray(g.view.sketch[r]) if g.view.sketch is not None else None)
    return out


def test_incremental_updates_agree_with_a_fresh_build(tmp_path):
    home = tmp_path / "dock"
    add_learnwares(home, list(range(30)))
    frozen = {"refit_max_rows": 0, "refit_drift": 1e9}  # force the frozen-kernel path at this size
    first = update_index(home, added=[_id(i) for i in range(30)], **frozen)
    assert first.refitted and first.live == 30
    new = add_learnwares(home, list(range(30, 40)))
    upd = update_index(home, added=new, strict=True, **frozen)
    assert (upd.path, upd.added, upd.refitted) == ("hints", 10, [])
    delete(home, [_id(3), _id(31)])
    assert update_index(home, removed=[_id(3), _id(31)], **frozen).path == "hints"
    with Catalog.open(home / "catalog.duckdb") as cat:  # a re-check flips two learnwares
        cat.set_status(_id(5), "NONUSABLE", "broke")
        cat.set_status(_id(6), "NONUSABLE", "broke")
    add_learnwares(home, [40, 41])
    upd = update_index(home, added=[_id(40)], **frozen)  # wrong hints: the digest catches it, full diff applies
    assert upd.path == "diff" and upd.live == 40 - 2 - 2 + 2
    incremental = _live_rows(home)
    snap_inc = MarketSnapshot.open(home, sync=False)
    res_inc = [snap_inc.search(None, user_X=user_rows(i)) for i in (7, 33, 41)]

    rebuild_index(home, keep_params=True)  # fresh build, same kernel
    fresh = _live_rows(home)
    assert set(fresh) == set(incremental) and _id(3) not in fresh and _id(5) not in fresh and _id(41) in fresh
    for lid, (z, s, sk) in fresh.items():
        zi, si, ski = incremental[lid]
        np.testing.assert_allclose(zi, z, atol=1e-12)
        assert abs(si - s) < 1e-10
        np.testing.assert_allclose(ski, sk, atol=1e-6)
    snap = MarketSnapshot.open(home, sync=False)
    for i, r in zip((7, 33, 41), res_inc):
        assert_same(snap.search(None, user_X=user_rows(i)), r)

    rebuild_index(home)  # refitted: exactly the torch searcher's answer
    assert_same(MarketSnapshot.open(home).search(None, user_X=user_rows(33)), torch_search(home, user_X=user_rows(33)))


def test_default_policy_refits_small_markets_so_updates_stay_exact(tmp_path):
    home = tmp_path / "dock"
    add_learnwares(home, list(range(12)))
    update_index(home)
    add_learnwares(home, [12, 13])
    upd = update_index(home, added=[_id(12), _id(13)])
    assert upd.refitted and upd.live == 14
    assert_same(MarketSnapshot.open(home).search(None, user_X=user_rows(13)), torch_search(home, user_X=user_rows(13)))


def test_a_torn_or_short_index_file_is_repaired(tmp_path):
    home = tmp_path / "dock"
    add_learnwares(home, list(range(10)))
    sync_index(home)
    store = IndexStore(home)
    gdir = store.root / store.read_manifest()["groups"][0]["dir"]
    with open(gdir / "z.f8", "ab") as fh:  # a writer died after appending, before committing
        fh.write(b"\x00" * 123)
    add_learnwares(home, [10])
    assert update_index(home, added=[_id(10)], refit_max_rows=0, refit_drift=1e9).live == 11
    assert MarketSnapshot.open(home).search(None, user_X=user_rows(10)).singles[0].learnware_id == _id(10)
    gdir = store.root / store.read_manifest()["groups"][0]["dir"]
    os.truncate(gdir / "self.f8", 8)  # lost data: the loader refuses it and the next sync rebuilds
    add_learnwares(home, [11])
    assert update_index(home, added=[_id(11)]).live == 12
    assert MarketSnapshot.open(home).search(None, user_X=user_rows(11)).singles[0].learnware_id == _id(11)


def test_snapshot_refreshes_when_the_catalog_changes(tmp_path):
    home = tmp_path / "dock"
    add_learnwares(home, [0, 1])
    snap = MarketSnapshot.open(home)
    assert not snap.refresh_if_changed() and len(snap) == 2
    add_learnwares(home, [2])
    assert snap.changed() and snap.refresh_if_changed() and len(snap) == 3
    assert snap.search(None, user_X=user_rows(2)).singles[0].learnware_id == _id(2)


# ------------------------------------------------------------------------------------------- processes
WRITER = textwrap.dedent("""
    import sys, time, hashlib  # noqa: E401
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_market import add_learnwares, delete
    home, stop = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2])
    i = 1000
    while time.monotonic() < stop:
        add_learnwares(home, [i])          # one writable open + transaction each, like a submission's catalog step
        if i % 3 == 0:
            delete(home, [hashlib.sha256(f"market-test-{{i - 1}}".encode()).hexdigest()])
        i += 1
    print(i - 1000)
""")


def test_readers_never_fail_while_a_submission_writes(tmp_path):
    home = tmp_path / "dock"
    add_learnwares(home, list(range(20)))
    sync_index(home)
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parent)))
    writer = subprocess.Popen([PY, str(script), str(home), "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        reads = 0
        while writer.poll() is None or reads < 2:  # read for as long as the writer writes
            snap = MarketSnapshot.open(home)
            assert snap.search(None, user_X=user_rows(4)).singles
            assert snap.columns["id"].size >= 20
            out = subprocess.run([PY, "-m", "deployments.cli", "list", "--json", "--home", str(home)],
                                 capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["total"] >= 20
            reads += 1
    finally:
        written, werr = writer.communicate(timeout=120)
    assert writer.returncode == 0, werr[-3000:]
    assert int(written) > 5 and reads >= 2, (written, reads)


def test_read_path_imports_neither_torch_nor_sklearn_nor_prefect_nor_scipy(market):
    MarketSnapshot.open(market)  # the index exists, as after any submission (only its first build needs torch)
    X = user_rows(5)
    np.save(market / "q.npy", X)
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["lwdock", "search", "-d", {str(market / 'q.npy')!r}, "--home", {str(market)!r}, "--json"]
        from deployments.cli import main
        try:
            main()
        except SystemExit as e:
            assert e.code == 0, e.code
        heavy = [m for m in ("torch", "sklearn", "prefect", "mlflow", "scipy", "qpsolvers") if m in sys.modules]
        print("HEAVY", heavy, file=sys.stderr)
    """)
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "HEAVY []" in out.stderr, out.stderr[-2000:]
    assert json.loads(out.stdout)["singles"][0]["learnware_id"] == _id(5)


def test_result_types_are_the_torch_paths_own_classes():
    code = ("from lwlib.market._pure import pure_search_module as p; R = p('result').SearchResult; "
            "import lwlib.search as s; assert s.SearchResult is R; "
            "from lwlib.search.result import SearchResult; assert SearchResult is R; print('same')")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "same", out.stderr[-2000:]


def test_streamed_spec_arrays_equal_the_catalogs_stack(market):
    from lwlib.market.scan import open_read_only, spec_keys, stream_spec_arrays

    with open_read_only(market / "catalog.duckdb") as cat:
        keys = spec_keys(cat)
        want = keys["id"][::-1].copy()  # any order
        Z, beta = stream_spec_arrays(cat, "RKMETableSpecification", D, want, batch_rows=7)
        stack = cat.load_spec_stack("RKMETableSpecification", d=D, status=None)
    pos = {i: n for n, i in enumerate(np.asarray(stack.ids, dtype="S64").tolist())}
    idx = np.array([pos[i] for i in want.tolist()])
    np.testing.assert_array_equal(Z, stack.Z[idx])
    np.testing.assert_array_equal(beta, stack.beta[idx])


def test_the_coarse_sketch_pass_keeps_the_best_matches(market, monkeypatch):
    import lwlib.market.ranking as ranking

    snap = MarketSnapshot.open(market)
    assert next(iter(snap.groups.values())).view.coarse is not None
    plain = [snap.search(None, user_X=user_rows(i), shortlist=20, max_mixture=0) for i in (2, 9, 30, 55)]
    monkeypatch.setattr(ranking, "COARSE_MIN_ROWS", 10)
    monkeypatch.setattr(ranking, "COARSE_KEEP", 40)  # a coarse pass over 80 rows keeps 40 for the full sketch
    coarse = [snap.search(None, user_X=user_rows(i), shortlist=20, max_mixture=0) for i in (2, 9, 30, 55)]
    for a, b in zip(plain, coarse):
        assert [m.learnware_id for m in a.singles[:5]] == [m.learnware_id for m in b.singles[:5]]
