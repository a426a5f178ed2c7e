"""Catalog behaviour on a real DuckDB file: migrations, round trips, atomic writes, read-only, history, locks."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lwlib.catalog import Catalog, CheckRecord, LearnwareRecord, SpecPayload, apply_migrations, discover_migrations
from lwlib.catalog.migrate import MIGRATIONS_DIR
from lwlib.catalog.store import connect
from lwlib.errors import CatalogError, CatalogMigrationError
from lwlib.status import Status


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _record(tag: str, **kw: object) -> LearnwareRecord:
    base = dict(id=_sha(tag), name=f"lw-{tag}", status=Status.USABLE, data_type="Table", task_type="Classification",
                library_type="Scikit-learn", scenarios=("Business", "Education"), license="MIT",
                description=f"learnware {tag}", input_dim=3, output_dim=2, spec_type="RKMETableSpecification",
                spec_dim=3, spec_k=4, semantic={"Data": {"Type": "Class", "Values": ["Table"]},
                                                "Name": {"Type": "String", "Values": f"lw-{tag}"}})
    base.update(kw)
    return LearnwareRecord(**base)  # type: ignore[arg-type]


def _payload(lw_id: str, k: int = 4, d: int = 3, seed: int = 0) -> SpecPayload:
    rng = np.random.default_rng(seed)
    spec = {"z": rng.normal(size=(k, d)).tolist(), "beta": np.full(k, 1.0 / k).tolist(), "gamma": 0.1,
            "num_points": 50, "type": "RKMETableSpecification"}
    return SpecPayload.from_spec_dict(lw_id, spec)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "home" / "catalog.duckdb"


def test_migrations_are_idempotent_and_recorded(db: Path) -> None:
    with Catalog.open(db):
        pass
    with connect(db) as con:
        assert apply_migrations(con) == []
        rows = con.execute("SELECT name, sha256 FROM schema_migrations ORDER BY version").fetchall()
    expected = [(m.name, m.sha256) for m in discover_migrations()]
    assert rows == expected and len(rows) >= 1


def test_altered_applied_migration_is_refused(db: Path, tmp_path: Path) -> None:
    mig_dir = tmp_path / "migs"
    shutil.copytree(MIGRATIONS_DIR, mig_dir)
    with connect(db) as con:
        assert apply_migrations(con, discover_migrations(mig_dir)) == [m.name for m in discover_migrations(mig_dir)]
    first = sorted(mig_dir.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited later\n")
    with connect(db) as con, pytest.raises(CatalogMigrationError) as err:
        apply_migrations(con, discover_migrations(mig_dir))
    assert err.value.code == "migration_altered"


def test_new_migration_file_is_applied_once(db: Path, tmp_path: Path) -> None:
    mig_dir = tmp_path / "migs"
    shutil.copytree(MIGRATIONS_DIR, mig_dir)
    with connect(db) as con:
        apply_migrations(con, discover_migrations(mig_dir))
        (mig_dir / "900_extra.sql").write_text("CREATE TABLE extra (x INTEGER);")
        assert apply_migrations(con, discover_migrations(mig_dir)) == ["900_extra.sql"]
        assert apply_migrations(con, discover_migrations(mig_dir)) == []
        assert con.execute("SELECT count(*) FROM extra").fetchall() == [(0,)]


def test_upsert_get_list_filter_round_trip(db: Path) -> None:
    a, b = _record("a"), _record("b", status=Status.NONUSABLE, reason="timeout", task_type="Regression")
    with Catalog.open(db) as cat:
        stored = cat.upsert_learnware(a, [_payload(a.id)])
        cat.upsert_learnware(b)
        assert stored.created_at is not None and stored.created_at.tzinfo is not None
        got = cat.get(a.id)
        assert got is not None
        assert (got.name, got.scenarios, got.semantic, got.status) == (a.name, a.scenarios, a.semantic, Status.USABLE)
        assert cat.get(_sha("missing")) is None
        assert [r.id for r in cat.list(status=Status.USABLE)] == [a.id]
        assert [r.id for r in cat.list(task_type="Regression")] == [b.id]
        assert {r.id for r in cat.list()} == {a.id, b.id} and len(cat.list(limit=1)) == 1
        assert (cat.count(), cat.count(Status.NONUSABLE)) == (2, 1)
        # upsert replaces fields but keeps created_at
        again = cat.upsert_learnware(_record("a", description="new text"))
        assert again.description == "new text" and again.created_at == stored.created_at
        assert again.updated_at >= stored.updated_at
        assert cat.count() == 2 and cat.load_spec_payloads([a.id]) == []  # payloads replaced by the empty set


def test_spec_payloads_round_trip_and_stack(db: Path) -> None:
    a, b, c = _record("a"), _record("b"), _record("c", status=Status.NONUSABLE)
    pa, pb, pc = _payload(a.id, k=4, seed=1), _payload(b.id, k=2, seed=2), _payload(c.id, seed=3)
    with Catalog.open(db) as cat:
        for r, p in ((a, pa), (b, pb), (c, pc)):
            cat.upsert_learnware(r, [p])
        loaded = {p.learnware_id: p for p in cat.load_spec_payloads(spec_type="RKMETableSpecification")}
        assert set(loaded) == {a.id, b.id, c.id}
        np.testing.assert_array_equal(loaded[b.id].z, pb.z)
        np.testing.assert_array_equal(loaded[b.id].beta, pb.beta)
        assert loaded[b.id].to_dict() == pb.to_dict() and loaded[b.id].gamma == 0.1
        assert list(loaded[b.id].to_dict()) == ["z", "beta", "gamma", "num_points", "type"]
        stack = cat.load_spec_stack()
        same_k = cat.load_spec_stack(ids=[a.id, c.id], status=None)  # equal K: the no-padding path
        assert cat.load_spec_stack(d=7).Z.shape == (0, 0, 7)
    assert same_k.ids == tuple(sorted([a.id, c.id]))
    np.testing.assert_array_equal(same_k.Z[same_k.ids.index(c.id)], pc.z)
    np.testing.assert_array_equal(same_k.beta[same_k.ids.index(a.id)], pa.beta)
    assert set(stack.ids) == {a.id, b.id}  # only USABLE by default
    assert stack.Z.shape == (2, 4, 3) and stack.beta.shape == (2, 4)
    ib = stack.ids.index(b.id)
    np.testing.assert_array_equal(stack.Z[ib, :2], pb.z)
    assert np.all(stack.Z[ib, 2:] == 0) and np.all(stack.beta[ib, 2:] == 0)
    np.testing.assert_allclose(stack.beta.sum(axis=1), 1.0)
    assert list(stack.k[[stack.ids.index(a.id), ib]]) == [4, 2]


def test_failed_multi_statement_write_rolls_back_whole(db: Path) -> None:
    r = _record("dup")
    bad = [_payload(r.id, seed=1), _payload(r.id, seed=2)]  # same (learnware_id, spec_type) twice: PK violation
    with Catalog.open(db) as cat:
        with pytest.raises(CatalogError) as err:
            cat.upsert_learnware(r, bad)
        assert err.value.code == "catalog_write_failed"
        assert cat.get(r.id) is None and cat.count() == 0 and cat.load_spec_payloads() == []
        # a CHECK violation (z length != k * d) rolls back the learnware row too
        broken = SpecPayload(r.id, "RKMETableSpecification", {"type": "x"}, np.zeros((2, 3)), np.ones(3), 0.1, 5)
        with pytest.raises(CatalogError):
            cat.upsert_learnware(r, [broken])
        assert cat.get(r.id) is None
        # an explicit multi-step transaction rolls back every step
        with pytest.raises(RuntimeError), cat.transaction():
            cat.upsert_learnware(r, [_payload(r.id)])
            cat.add_check(CheckRecord(r.id, "submit", Status.USABLE))
            raise RuntimeError("boom after two writes")
        assert cat.get(r.id) is None and cat.history(r.id) == []
        with cat.transaction():
            cat.upsert_learnware(r, [_payload(r.id)])
            cat.add_check(CheckRecord(r.id, "submit", Status.USABLE))
        assert cat.get(r.id) is not None and len(cat.history(r.id)) == 1


def test_read_only_open_cannot_write(db: Path) -> None:
    r = _record("ro")
    with Catalog.open(db) as cat:
        cat.upsert_learnware(r)
    with Catalog.open(db, read_only=True) as cat:
        assert cat.get(r.id) is not None
        with pytest.raises(CatalogError) as err:
            cat.set_status(r.id, Status.NONUSABLE, "nope")
        assert err.value.code == "catalog_read_only"
        with pytest.raises(CatalogError):
            cat.delete(r.id)
    with Catalog.open(db, read_only=True) as cat:
        assert cat.get(r.id).status is Status.USABLE  # type: ignore[union-attr]


def test_read_only_open_of_missing_file_fails(db: Path) -> None:
    with pytest.raises(CatalogError) as err, Catalog.open(db, read_only=True):
        pass
    assert err.value.code == "catalog_missing"


def test_status_change_and_history(db: Path) -> None:
    r = _record("h")
    with Catalog.open(db) as cat:
        cat.upsert_learnware(r)
        c1 = cat.add_check(CheckRecord(r.id, "submit", Status.USABLE, report={"steps": {"predict": "ok"}},
                                       duration_s=1.5))
        cat.set_status(r.id, Status.NONUSABLE, "model_timeout: predict took > 30 s")
        c2 = cat.add_check(CheckRecord(r.id, "recheck", Status.NONUSABLE, reason="model_timeout"))
        got = cat.get(r.id)
        assert got is not None and got.status is Status.NONUSABLE and got.reason.startswith("model_timeout")
        hist = cat.history(r.id)
        assert [h.id for h in hist] == [c1.id, c2.id] and c2.id > c1.id
        assert [h.kind for h in hist] == ["submit", "recheck"]
        assert hist[0].report == {"steps": {"predict": "ok"}} and hist[0].duration_s == 1.5
        with pytest.raises(CatalogError) as err:
            cat.set_status(_sha("nobody"), Status.USABLE)
        assert err.value.code == "catalog_not_found"
        with pytest.raises(CatalogError):  # bad kind violates the CHECK constraint
            cat.add_check(CheckRecord(r.id, "audit", Status.USABLE))  # type: ignore[arg-type]
        assert len(cat.history(r.id)) == 2
        assert cat.delete(r.id) is True and cat.delete(r.id) is False
        assert cat.history(r.id) == [] and cat.get(r.id) is None


def test_connect_retries_while_another_process_holds_the_lock(db: Path) -> None:
    with Catalog.open(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('ok', flush=True); "
                               "time.sleep(1.5); c.close()", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(CatalogError) as err, Catalog.open(db, retries=0):
            pass
        assert err.value.code == "catalog_locked"
        t0 = time.monotonic()
        with Catalog.open(db, retries=10, backoff_s=0.05) as cat:
            assert cat.count() == 0
        assert time.monotonic() - t0 < 10
    finally:
        holder.wait(timeout=30)


def test_record_from_semantic_spec_is_lossless(db: Path) -> None:
    semantic = pytest.importorskip("lwlib.semantic")
    spec = semantic.make_semantic_spec(name="digits-svm", description="an SVM on scikit-learn digits",
                                       data_type="Table", input_dimension=64, output_dimension=10)
    rec = LearnwareRecord.from_semantic(_sha("sem"), spec, spec_type="RKMETableSpecification", spec_dim=64)
    with Catalog.open(db) as cat:
        cat.upsert_learnware(rec)
        got = cat.get(rec.id)
    assert got is not None and got.semantic_spec() == spec
    assert (got.name, got.data_type, got.input_dim, got.output_dim) == ("digits-svm", "Table", 64, 10)
    assert got.spec_dim == 64 and got.semantic == spec.to_reference()


def test_second_open_mode_in_same_process_is_a_catalog_error(db: Path) -> None:
    with Catalog.open(db) as cat:
        cat.upsert_learnware(_record("x"))
        with pytest.raises(CatalogError), Catalog.open(db, read_only=True, retries=0):
            pass
        assert cat.count() == 1
