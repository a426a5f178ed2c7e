"""`lwdock` as a user meets it: the real entry point in a subprocess, on a temp home with a real catalog.

Every user error is one ``error:`` line naming the user's value, with its documented exit code and no traceback
(unless ``--verbose``); tables show names with ids; catalog text cannot inject markup or terminal escapes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lwlib.catalog import Catalog, LearnwareRecord, SpecPayload
from lwlib.semantic import make_semantic_spec

ROOT = Path(__file__).resolve().parents[2]
D = 5


def lwdock(*args: str, home: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deployments.cli", *args] + (["--home", str(home)] if home is not None else [])
    import os

    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


def one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


def _id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def add(home: Path, name: str, mean: float, *, status: str = "USABLE", reason: str | None = None) -> str:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    Z = mean + rng.normal(size=(8, D))
    clean = "".join(c for c in name if c.isalnum() or c == " ")  # new specs refuse control characters ...
    sem = make_semantic_spec(name=clean, description=f"{clean} description", input_dimension=D, output_dimension=2)
    lid = _id(name)
    rec = LearnwareRecord.from_semantic(lid, sem, status=status, reason=reason, spec_type="RKMETableSpecification",
                                        spec_dim=D, spec_k=8, registry_name=f"lw-{lid[:8]}", registry_version="1")
    rec = replace(rec, name=name)  # ... rows written before that rule still hold them
    with Catalog.open(home / "catalog.duckdb") as cat:
        cat.upsert_learnware(rec, [SpecPayload.from_spec_dict(lid, {
            "z": Z.tolist(), "beta": [1 / 8] * 8, "gamma": 0.1, "num_points": 50,
            "type": "RKMETableSpecification"})])
    return lid


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("cli") / "dock"
    add(h, "alpha model", 0.0)
    add(h, "beta model", 6.0)
    add(h, "broken model", 3.0, status="NONUSABLE",
        reason="model output has 3 columns, expected 2 (check your predict)")
    add(h, "[/bold]\x1b[31mevil\x1b]0;title\x07 name", 12.0)
    return h


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    out = {"good": d / "mine.npy", "wrong_dim": d / "three.npy", "nan": d / "nan.csv", "text": d / "words.csv",
           "empty": d / "empty.csv", "parquet": d / "data.parquet", "semantic_bad": d / "query.json",
           "semantic_list": d / "list.json", "rkme": d / "rkme.json"}
    np.save(out["good"], 6.0 + rng.normal(size=(60, D)))
    np.save(out["wrong_dim"], rng.normal(size=(30, 3)))
    out["nan"].write_text("1,2,3,4,5\n1,nan,3,4,5\n")
    out["text"].write_text("a,b,c\nx,y,z\n")
    out["empty"].write_text("")
    out["parquet"].write_bytes(b"PAR1")
    out["semantic_bad"].write_text("{not json")
    out["semantic_list"].write_text("[1, 2]")
    out["rkme"].write_text(json.dumps({"z": [[0.0] * D], "beta": [1.0], "gamma": 0.1, "num_points": 1,
                                       "type": "RKMETableSpecification"}))
    return out


def test_help_documents_exit_codes_and_flags():
    out = lwdock("--help")
    assert out.returncode == 0 and "Exit codes:" in out.stdout
    search = lwdock("search", "--help").stdout
    assert "-v, --verbose " in search and "<bool>" not in search and "{" not in search


@pytest.mark.parametrize("args,code,needle", [
    (["list", "--status", "bogus"], 2, "bogus"),
    (["reuse", "--reuser", "foo", "-d", "x.npy"], 2, "foo"),
    (["search", "-d", "missing.npy"], 2, "missing.npy"),
    (["search"], 2, "--data"),
    (["show", "no-such-learnware"], 3, "no-such-learnware"),
    (["submit", "nothere.zip"], 2, "nothere.zip"),
    (["frobnicate"], 2, "frobnicate"),
    (["delete", "feedfacefeed", "-y"], 3, "feedfacefeed"),
])
def test_user_errors_are_one_line_with_their_exit_code(home, args, code, needle):
    out = lwdock(*args, home=home)
    assert out.returncode == code, (out.stdout, out.stderr)
    assert needle in one_error_line(out)


@pytest.mark.parametrize("key", ["nan", "text", "empty", "parquet", "semantic_bad", "semantic_list"])
def test_bad_user_files_are_refused_in_one_line_naming_the_file(home, files, key):
    args = ["search", "-d", str(files["good"]), "-s", str(files[key])] if key.startswith("semantic") \
        else ["search", "-d", str(files[key])]
    out = lwdock(*args, home=home)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert files[key].name in one_error_line(out)


def test_verbose_shows_the_traceback(home, files):
    out = lwdock("search", "-d", str(files["nan"]), "--verbose", home=home)
    assert out.returncode == 2 and "Traceback" in out.stderr and "error: " in out.stderr


def test_status_is_case_insensitive_and_printed_as_a_word(home):
    out = lwdock("list", "--status", "usable", home=home)
    assert out.returncode == 0, out.stderr
    assert "alpha model" in out.stdout and "broken model" not in out.stdout and "Status." not in out.stdout
    show = lwdock("show", "broken model", home=home)
    assert show.returncode == 0 and "NONUSABLE" in show.stdout and "Status." not in show.stdout
    assert "expected 2 (check your predict)" in show.stdout  # the whole reason, not cut


def test_search_tables_show_names_with_ids_and_explain_no_mixture(home, files):
    out = lwdock("search", "-d", str(files["good"]), home=home)
    assert out.returncode == 0, out.stderr
    assert "beta model" in out.stdout and _id("beta model")[:12] in out.stdout
    assert "Best mixture" in out.stdout or "No mixture:" in out.stdout


def test_nothing_matched_exits_1(home, files, tmp_path):
    out = lwdock("search", "-d", str(files["wrong_dim"]), home=home)
    assert out.returncode == 1 and "3 features" in out.stdout
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"Name": {"Type": "String", "Values": "zzzz qqqq"}}))
    assert lwdock("search", "-s", str(q), home=home).returncode == 1
    assert lwdock("search", "-d", str(files["good"]), home=tmp_path / "empty-home").returncode == 1


def test_json_outputs_parse(home, files):
    listed = json.loads(lwdock("list", "--json", home=home).stdout)
    assert listed["total"] == 4 and {r["status"] for r in listed["learnwares"]} == {"USABLE", "NONUSABLE"}
    shown = json.loads(lwdock("show", _id("alpha model")[:10], "--json", home=home).stdout)
    assert shown["name"] == "alpha model" and shown["status"] == "USABLE"
    found = json.loads(lwdock("search", "-d", str(files["good"]), "--json", home=home).stdout)
    assert found["singles"][0]["learnware_id"] == _id("beta model")
    assert found["names"][_id("beta model")] == "beta model"
    rk = lwdock("search", "--rkme", str(files["rkme"]), "--json", home=home)
    assert rk.returncode == 0 and json.loads(rk.stdout)["singles"][0]["learnware_id"] == _id("alpha model")


def test_labels_refine_the_search_through_the_deploying_stage(home, files, tmp_path):
    rng = np.random.default_rng(1)
    X = 6.0 + rng.normal(size=(20, D))
    np.savez(tmp_path / "lab.npz", X=X, y=(X[:, 0] > 6).astype(int))
    out = lwdock("search", "-d", str(files["good"]), "-l", str(tmp_path / "lab.npz"), "--json", home=home)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["evidence"]["n_labels"] == 20 and found["singles"]


def test_catalog_text_cannot_inject_markup_or_escapes(home, files):
    evil = "[/bold]\x1b[31mevil\x1b]0;title\x07 name"
    for out in (lwdock("list", home=home), lwdock("show", _id(evil)[:12], home=home),
                lwdock("search", "-d", str(files["good"]), "-k", "5", home=home)):
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    listed = lwdock("list", home=home).stdout
    assert "[/bold]" in listed and "evil" in listed


@pytest.mark.integration
@pytest.mark.slow
def test_submit_of_a_non_zip_is_one_row_naming_the_file_and_its_cause(tmp_path):
    """Issue 12: a non-zip submit printed ~45 lines and named a content hash. Runs the real submission flow."""
    bogus = tmp_path / "my_model.zip"
    bogus.write_text("this is not a zip archive")
    out = lwdock("submit", str(bogus), home=tmp_path / "dock",
                 env={"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"})
    assert out.returncode == 1, (out.stdout[-2000:], out.stderr[-2000:])
    assert "Traceback" not in out.stdout + out.stderr
    assert "my_model.zip" in out.stdout and "INVALID" in out.stdout
    cause = [ln for ln in out.stdout.splitlines() if ln.startswith("my_model.zip: INVALID")]
    assert len(cause) == 1 and not any(c in cause[0] for c in ("0123456789abcdef" * 4,)), out.stdout
    assert hashlib.sha256(bogus.read_bytes()).hexdigest() not in out.stdout
