"""The upload page's server side, in process (no browser, no Prefect): pages, token, spec checks, store, sweep.

What must hold before any flow run exists: a missing token or a bad spec is refused in one line and nothing is
stored; without Prefect the answer says how to start it; the page offers exactly the form's vocabularies and loads
nothing from outside the dock.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from fastapi.testclient import TestClient

from deployments.api import ApiConfig, create_app
from deployments.web import intake
from deployments.web.runs import ui_url
from deployments.web.semantic_input import parse_semantic
from deployments.web.upload import SEMANTIC_LENGTH_HEADER, STATIC
from lwlib.errors import SemanticSpecError
from lwlib.semantic import VOCABULARIES, make_semantic_spec

TOKEN = "endpoint-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty zip: its bytes are all that matter before a run


def _stored(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for d in ("learnwares", "uploads") if (home / d).exists()
                  for p in (home / d).rglob("*"))


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    for key in ("PREFECT_API_URL", "PREFECT_UI_URL"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    c = TestClient(create_app(home, ApiConfig(token=TOKEN)))
    c.home = home  # type: ignore[attr-defined]
    return c


def _send(client: TestClient, semantic: bytes = b"", body: bytes = ZIP, headers: dict[str, str] | None = None,
          filename: str = "model.zip") -> Any:
    h = {**AUTH, SEMANTIC_LENGTH_HEADER: str(len(semantic)), **(headers or {})}
    return client.post("/upload", params={"filename": filename}, content=semantic + body, headers=h)


class _Controls(HTMLParser):
    """Drop-down options by select id, checkbox values by name, and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[str, list[str]] = {}
        self.checkboxes: dict[str, list[str]] = {}
        self.links: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "select":
            self._select = a.get("id")
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(a.get("value") or "")
        elif tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.setdefault(a.get("name") or "", []).append(a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


# ------------------------------------------------------------------------------------------------------- pages
def test_page_offers_the_forms_vocabularies_and_loads_nothing_from_outside(client: TestClient) -> None:
    r = client.get("/upload")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    p = _Controls()
    p.feed(r.text)
    assert p.options == {"f-data-type": list(VOCABULARIES["Data"]), "f-task-type": list(VOCABULARIES["Task"]),
                         "f-library-type": list(VOCABULARIES["Library"]),
                         "f-license": list(VOCABULARIES["License"])}
    assert p.checkboxes == {"scenario": list(VOCABULARIES["Scenario"])}
    assert p.links and all(u.startswith("/") for u in p.links), p.links
    for name in ("upload.js", "upload.css"):
        asset = client.get(f"/upload/assets/{name}")
        assert asset.status_code == 200
        assert not re.search(r"https?://", asset.text), f"{name} must not load anything from outside the dock"
    assert "innerHTML" not in (STATIC / "upload.js").read_text(), "server answers are shown as text only"


def test_index_links_the_upload_page_and_unknown_assets_are_404(client: TestClient) -> None:
    assert 'href="/upload"' in client.get("/").text
    for bad in ("nope.js", "..%2Fupload.py", "%2E%2E%2F__init__.py"):
        r = client.get(f"/upload/assets/{bad}")
        assert r.status_code == 404 and "error" in r.json()


# ------------------------------------------------------------------------------------------------------ tokens
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
                         ids=["none", "wrong", "not-bearer"])
def test_upload_without_the_token_is_401_and_stores_nothing(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/upload", "/upload/check"):
        r = client.post(path, content=ZIP, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
        assert r.headers["www-authenticate"] == "Bearer"
    assert _stored(client.home) == []  # type: ignore[attr-defined]


def test_a_dock_without_a_token_refuses_uploads(tmp_path: Path) -> None:
    c = TestClient(create_app(tmp_path, ApiConfig(token=None)))
    r = c.post("/upload", content=ZIP, headers=AUTH)
    assert r.status_code == 403 and "lwdock api token" in r.json()["error"]


# ------------------------------------------------------------------------------------------- spec, then Prefect
BAD_SPECS = {
    "not-json": (b"{name: x}", "semantic_bad_json"),
    "reference-missing-key": (json.dumps({"Data": {"Type": "Class", "Values": ["Table"]}}).encode(),
                              "semantic_missing_key"),
    "table-without-input-dimension": (json.dumps({"name": "x", "description": "y"}).encode(), "semantic_io_missing"),
    "form-wrong-type": (json.dumps({"name": "x", "description": "y", "input_dimension": "many"}).encode(),
                        "semantic_bad_form"),
    "form-unknown-task": (json.dumps({"name": "x", "description": "y", "task_type": "Magic"}).encode(),
                          "semantic_bad_form"),
    "too-deep": (b"[" * 5000 + b"]" * 5000, "semantic_bad_json"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS), ids=list(BAD_SPECS))
def test_a_bad_spec_is_refused_in_one_line_before_prefect_is_asked(client: TestClient, case: str) -> None:
    semantic, code = BAD_SPECS[case]
    for r in (client.post("/upload/check", content=semantic, headers=AUTH), _send(client, semantic)):
        assert r.status_code == 400, r.text  # 400, not the 503 of the missing Prefect: the spec is checked first
        body = r.json()
        assert body["code"] == code and "\n" not in body["error"] and len(body["error"]) < 400, body
    assert _stored(client.home) == []  # type: ignore[attr-defined]


def test_a_semantic_length_past_the_body_or_the_limit_is_refused(client: TestClient) -> None:
    for length in ("99999999", "-1", "abc", str(len(ZIP) + 1)):
        r = _send(client, headers={SEMANTIC_LENGTH_HEADER: length})
        assert r.status_code == 400 and r.json()["code"] == "semantic_too_large", (length, r.text)
    assert _stored(client.home) == []  # type: ignore[attr-defined]


def test_a_zip_over_the_limit_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from deployments.web import upload_router

    app = FastAPI()
    app.include_router(upload_router(tmp_path, ApiConfig(token=TOKEN), max_bytes=len(ZIP) - 1))
    r = _send(TestClient(app), b"")
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large", r.text
    assert _stored(tmp_path) == []


def test_without_prefect_the_answer_says_how_to_start_it_and_nothing_is_stored(client: TestClient) -> None:
    good = json.dumps({"name": "x", "description": "y", "input_dimension": 3, "output_dimension": 2}).encode()
    for r in (client.post("/upload/check", content=good, headers=AUTH), _send(client, good)):
        body = r.json()
        assert r.status_code == 503 and body["code"] == "prefect_not_configured", body
        assert "lwdock serve" in body["error"] and "prefect server start" in body["error"]
    assert _stored(client.home) == []  # type: ignore[attr-defined]


def test_run_state_of_a_malformed_id_is_404_and_reads_follow_the_api_rules(tmp_path: Path) -> None:
    open_reads = TestClient(create_app(tmp_path, ApiConfig(token=TOKEN)))
    assert open_reads.get("/upload/runs/not-a-uuid").status_code == 404
    protected = TestClient(create_app(tmp_path, ApiConfig(token=TOKEN, protect_reads=True)))
    assert protected.get("/upload/runs/not-a-uuid").status_code == 401
    assert protected.get("/upload/runs/not-a-uuid", headers=AUTH).status_code == 404


def test_prefect_ui_url_comes_from_the_api_url_or_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert ui_url() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api/")
    assert ui_url() == "http://127.0.0.1:4200"
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect.example.org/")
    assert ui_url() == "https://prefect.example.org"


# ------------------------------------------------------------------------------------------------ semantic input
def test_reference_spec_becomes_the_form_and_says_what_the_form_drops() -> None:
    spec = make_semantic_spec(name="Iris", description="LR on iris", input_dimension=4, output_dimension=3,
                              scenarios=["Nature", "Education"], input_descriptions={0: "sepal length"})
    got = parse_semantic(json.dumps(spec.to_reference()))
    assert got.form == {"name": "Iris", "description": "LR on iris", "data_type": "Table",
                        "task_type": "Classification", "library_type": "Scikit-learn",
                        "scenarios": ["Nature", "Education"], "license": "Apache-2.0", "input_dimension": 4,
                        "output_dimension": 3}
    assert got.dropped == ["Input.Description"]
    assert parse_semantic(json.dumps(got.form)).form == got.form  # the form shape round-trips
    assert parse_semantic(json.dumps(got.form)).dropped == []


def test_spec_over_the_size_limit_is_refused() -> None:
    from lwlib.constants import SEMANTIC_MAX_BYTES

    with pytest.raises(SemanticSpecError) as e:
        parse_semantic(json.dumps({"name": "x" * SEMANTIC_MAX_BYTES}))
    assert e.value.code == "semantic_too_large"


# --------------------------------------------------------------------------------------------------------- intake
@pytest.mark.parametrize("given, safe", [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\my model (v2).zip", "my model -v2-.zip"), ("..", "upload.zip"),
    ("", "upload.zip"), (None, "upload.zip"), ("a\x00b\nc.zip", "a-b-c.zip"), (".hidden.zip", "hidden.zip"),
    ("модель.zip", "модель.zip"), ("<img src=x onerror=alert(1)>.zip", "-img src-x onerror-alert-1--.zip"),
])
def test_file_names_become_one_safe_path_component(given: str | None, safe: str) -> None:
    assert intake.safe_file_name(given) == safe


def test_long_file_names_are_cut() -> None:
    assert len(intake.safe_file_name("a" * 1000 + ".zip")) <= 120


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _receive(home: Path, data: bytes, *, max_bytes: int = 1000, name: str = "m.zip") -> intake.Upload:
    return asyncio.run(intake.receive(_chunks(data[3:]), home=home, packages_dir=home / "learnwares",
                                      file_name=name, max_bytes=max_bytes, first=data[:3]))


def test_receive_stores_by_content_once_and_links_the_users_name(tmp_path: Path) -> None:
    import hashlib

    data = b"some learnware bytes" * 10
    up = _receive(tmp_path, data, name="digits.zip")
    assert up.stored.id == hashlib.sha256(data).hexdigest() and up.was_new and up.size == len(data)
    assert up.link.name == "digits.zip" and up.link.read_bytes() == data
    assert up.link.resolve() == (tmp_path / "learnwares" / f"{up.stored.id}.zip").resolve()
    again = _receive(tmp_path, data, name="copy.zip")
    assert again.stored.id == up.stored.id and not again.was_new
    intake.forget(again, tmp_path / "learnwares")  # bytes the store already held stay
    assert up.stored.path.exists() and not again.link.parent.exists()
    intake.forget(up, tmp_path / "learnwares")  # bytes this upload brought go
    assert not up.stored.path.exists() and not (tmp_path / "uploads").joinpath(up.link.parent.name).exists()


@pytest.mark.parametrize("data, error", [(b"x" * 1001, intake.UploadTooLarge), (b"", intake.EmptyUpload)])
def test_receive_refuses_too_large_or_empty_and_leaves_nothing(tmp_path: Path, data: bytes, error: type) -> None:
    with pytest.raises(error):
        _receive(tmp_path, data)
    assert list((tmp_path / "uploads").iterdir()) == []
    assert not (tmp_path / "learnwares").exists() or list((tmp_path / "learnwares").iterdir()) == []


def test_sweep_removes_dangling_and_old_links_and_stale_partials(tmp_path: Path) -> None:
    live = _receive(tmp_path, b"live bytes")
    dangling = _receive(tmp_path, b"refused bytes")
    dangling.stored.path.unlink()  # what the submission does when it refuses a zip
    old = _receive(tmp_path, b"old bytes")
    partial = tmp_path / "uploads" / ".part-crashed.zip"
    partial.write_bytes(b"half")
    past = time.time() - intake.KEEP_LINKS_S - 10
    os.utime(old.link.parent, (past, past))
    os.utime(partial, (past, past))
    assert intake.sweep(tmp_path) == 3
    assert live.link.exists() and not dangling.link.parent.exists() and not old.link.parent.exists()
    assert not partial.exists() and old.stored.path.exists()  # the store is not the sweep's business
