"""What a user sees, in Chromium: the upload page, the run and its result in the Prefect UI, the scheduled re-check
and the registered version in the MLflow UI (issue 12, "Browser tests").

One real stack per module (see conftest.py). Each check is the path a person takes: the page's own controls,
the link it gives, the tabs of the Prefect UI. A screenshot of each screen goes to the test's tmp dir.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser_stack import TOKEN, Stack, base_env, free_port, http_ok, stop  # same directory (on sys.path)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "Iris species <v2>"  # markup-like on purpose: names are data, shown as text everywhere
RUN_TIMEOUT_MS = 300_000
STEPS = ("validate", "containerize", "check", "specify", "register", "catalog")  # ARCHITECTURE.md, in order


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _count_runs(st: Stack) -> int:
    req = urllib.request.Request(f"{st.prefect_api}/flow_runs/count", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(json.loads(r.read()))


def _stored(home: Path) -> set[str]:
    """Everything an upload could leave behind: store entries and upload links."""
    return {str(p.relative_to(home)) for d in ("learnwares", "uploads") if (home / d).exists()
            for p in (home / d).rglob("*")}


def _build_zips(root: Path) -> dict[str, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from lwlib.learnware.packager import package_learnware
    from lwlib.semantic import make_semantic_spec

    X, y = load_iris(return_X_y=True)
    spec = make_semantic_spec(name=NAME, description="Logistic regression on sepal and petal sizes",
                              input_dimension=X.shape[1], output_dimension=3, scenarios=["Nature"],
                              input_descriptions={0: "sepal length (cm)", 1: "sepal width (cm)"})
    zip_path = package_learnware(LogisticRegression(max_iter=300).fit(X, y), X, spec, root / "iris.zip")
    (root / "semantic.json").write_text(json.dumps(spec.to_reference()))
    (root / "notes.zip").write_text("these are my notes, not a learnware\n")
    return {"zip": zip_path, "semantic": root / "semantic.json", "not_zip": root / "notes.zip",
            "n_features": X.shape[1], "root": root}


@pytest.fixture(scope="module")
def zips_building(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[dict[str, Any]]]:
    """Packaging starts before the stack and runs while its servers start (a thread; the waits are I/O)."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_build_zips, tmp_path_factory.mktemp("zips"))


@pytest.fixture(scope="module")
def zips(zips_building: Future[dict[str, Any]], stack: Stack) -> dict[str, Any]:
    """A small sklearn learnware, its reference semantic JSON (with per-feature words), and a file that is no zip."""
    return zips_building.result(timeout=300)


def _fill_and_send(page: Any, st: Stack, zip_path: Path, *, token: str, semantic_file: Path | None = None,
                   form: dict[str, str] | None = None) -> None:
    page.goto(f"{st.api}/upload")
    page.set_input_files("#zip", str(zip_path))
    if semantic_file is not None:
        page.check('input[name="semantic-mode"][value="file"]')
        page.set_input_files("#semantic-file", str(semantic_file))
    if form is not None:
        page.check('input[name="semantic-mode"][value="form"]')
        for field, value in form.items():
            page.fill(f"#f-{field}", value)
    page.fill("#token", token)
    page.click("#submit")


@pytest.fixture(scope="module")
def submitted(browser: Any, zips_building: Any, stack: Stack, zips: dict[str, Any],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The user's path: the zip and its semantic JSON chosen on the page, sent, followed to its result."""
    shots = tmp_path_factory.mktemp("shots")
    ctx = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
    try:
        _fill_and_send(page, stack, zips["zip"], token=TOKEN, semantic_file=zips["semantic"])
        page.locator("#run-link").wait_for(state="visible", timeout=60_000)
        try:
            page.locator("#result").wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
        finally:
            page.screenshot(path=str(shots / "upload-page.png"), full_page=True)
        out = {"message": page.inner_text("#message"), "result": page.inner_text("#result"),
               "result_elements": page.locator("#result *").count(), "run_name": page.inner_text("#run-name"),
               "run_url": page.get_attribute("#run-link", "href"), "errors": errors, "shots": shots}
        yield out
    finally:
        ctx.close()


def test_upload_page_takes_a_zip_and_spec_from_disk_and_shows_the_result(submitted: dict[str, Any],
                                                                         stack: Stack) -> None:
    assert submitted["result"].startswith("USABLE"), f"{submitted}\n{stack.logs()}"
    assert NAME in submitted["result"] and "models:/" in submitted["result"]
    assert submitted["result_elements"] == 1, "the learnware's name must be text, not markup"
    assert submitted["errors"] == []
    # the per-feature words of the JSON file cannot ride on the form: the page says so instead of losing them
    assert "Input.Description" in submitted["message"]
    assert submitted["run_url"].startswith(f"{stack.prefect_ui}/runs/flow-run/")
    listed = _get(f"{stack.api}/learnwares")["learnwares"]
    assert [r["name"] for r in listed] == [NAME] and listed[0]["status"] == "USABLE"


def test_prefect_run_page_shows_the_steps_and_the_result_table(browser: Any, stack: Stack, page: Any,
                                                               submitted: dict[str, Any]) -> None:
    page.goto(submitted["run_url"])
    page.get_by_text(submitted["run_name"], exact=True).first.wait_for()
    assert submitted["run_name"].startswith("submit-Iris-species")
    page.get_by_text("Completed", exact=True).first.wait_for()
    # every step is a task run of the run the user opened: no nested subflow to dig into
    page.get_by_text("Task Runs", exact=True).click()
    for step in STEPS:
        page.get_by_text(re.compile(rf"^{step}-[0-9a-f]{{3}}$")).first.wait_for()
    page.get_by_text("Artifacts", exact=True).click()
    card = page.get_by_text("Submission USABLE", exact=False).first
    card.wait_for()
    page.screenshot(path=str(submitted["shots"] / "prefect-run-artifacts.png"))
    card.click()
    row = page.locator("tr", has_text="iris.zip")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["iris.zip", NAME, "USABLE"], cells
    page.screenshot(path=str(submitted["shots"] / "prefect-result-table.png"))
    assert page.get_by_text("Learnware submission: USABLE").count() == 1


def test_prefect_deployment_page_lists_the_scheduled_rechecks(browser: Any, stack: Stack, page: Any,
                                                              submitted: dict[str, Any]) -> None:
    dep = _get(f"{stack.prefect_api}/deployments/name/recheck-market/nightly-recheck")
    page.goto(f"{stack.prefect_ui}/deployments/deployment/{dep['id']}")
    page.get_by_text("At 03:00 AM every day").wait_for()
    page.get_by_text("Upcoming", exact=True).click()
    rows = page.get_by_text(re.compile(r"Scheduled for \d{4}/\d{2}/\d{2} 03:00:00 AM"))
    rows.first.wait_for(timeout=60_000)  # the scheduler loop (5 s here) creates them
    page.screenshot(path=str(submitted["shots"] / "prefect-upcoming-rechecks.png"))
    assert rows.count() >= 2
    assert page.get_by_text("nightly-recheck").count() >= rows.count()


def test_mlflow_ui_shows_the_version_with_its_signature_and_alias(browser: Any, stack: Stack, page: Any,
                                                                  submitted: dict[str, Any],
                                                                  zips: dict[str, Any]) -> None:
    (record,) = _get(f"{stack.api}/learnwares")["learnwares"]
    name, version = record["registry_name"], record["registry_version"]
    page.goto(f"{stack.mlflow_ui}/#/models/{name}/versions/{version}")
    inputs = page.get_by_text(re.compile(r"^Inputs \(\d+\)$"))
    inputs.wait_for(timeout=60_000)
    outputs = page.get_by_text(re.compile(r"^Outputs \(\d+\)$"))
    assert int(re.findall(r"\d+", inputs.inner_text())[0]) >= 1
    assert int(re.findall(r"\d+", outputs.inner_text())[0]) >= 1
    inputs.click()
    outputs.click()
    page.get_by_text(f"shape: [-1,{zips['n_features']}]").wait_for()
    assert page.get_by_text(re.compile(r"^@?\s*usable$")).count() >= 1  # the alias tag next to "Aliases"
    assert page.get_by_text("Logistic regression on sepal and petal sizes").count() >= 1
    if page.get_by_role("button", name="Close").count():  # the MLflow Assistant panel covers half the page
        page.get_by_role("button", name="Close").first.click()
    page.get_by_text("Schema", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=str(submitted["shots"] / "mlflow-version.png"))


def test_a_file_that_is_not_a_zip_ends_invalid_and_leaves_nothing(browser: Any, stack: Stack, page: Any,
                                                                  zips: dict[str, Any]) -> None:
    before = _stored(stack.home)
    _fill_and_send(page, stack, zips["not_zip"], token=TOKEN,
                   form={"name": "My notes", "description": "not a model", "input-dimension": "4",
                         "output-dimension": "3"})
    page.locator("#result").wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    result = page.inner_text("#result")
    assert result.startswith("INVALID") and "not a readable zip file" in result, result
    assert str(stack.home) not in result
    assert page.inner_text("#run-name") == "submit-My-notes"
    assert not any(p.endswith(".zip") and p.startswith("learnwares/") for p in _stored(stack.home) - before)


def test_upload_page_refuses_a_wrong_token_and_a_bad_spec_before_any_run(browser: Any, stack: Stack, page: Any,
                                                                         zips: dict[str, Any]) -> None:
    before, runs = _stored(stack.home), _count_runs(stack)
    _fill_and_send(page, stack, zips["zip"], token="not-the-token")
    page.locator("#message.error").wait_for()
    assert "wrong token" in page.inner_text("#message")
    # a Table spec without its input dimension: refused in one line that names the missing part
    _fill_and_send(page, stack, zips["zip"], token=TOKEN, form={"name": "x", "description": "y"})
    page.locator("#message.error").wait_for()
    message = page.inner_text("#message")
    assert "Input is missing" in message and "\n" not in message.strip()
    assert page.locator("#run").is_hidden()
    assert _count_runs(stack) == runs and _stored(stack.home) == before


def test_upload_page_says_how_to_start_prefect_when_it_is_not_there(browser: Any, stack: Stack, page: Any,
                                                                    zips: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {**base_env(home, tmp_path / "prefect"), "LWDOCK_API_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "deployments.cli", "api", "--home", str(home), "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        for _ in range(240):
            if http_ok(f"http://127.0.0.1:{port}/health") or proc.poll() is not None:
                break
            page.wait_for_timeout(500)
        page.goto(f"http://127.0.0.1:{port}/upload")
        page.set_input_files("#zip", str(zips["zip"]))
        page.fill("#token", TOKEN)
        page.click("#submit")
        page.locator("#message.error").wait_for()
        message = page.inner_text("#message")
    finally:
        stop(proc)
    assert "no Prefect server is configured" in message and "lwdock serve" in message, message
    assert _stored(home) == set()


def test_upload_page_says_the_deployment_is_not_served_once_lwdock_serve_stops(browser: Any, stack: Stack,
                                                                               page: Any, zips: dict[str, Any]
                                                                               ) -> None:
    """Last in the module: it stops `deployments.serve`. The run would wait in Scheduled forever; the page says why."""
    stop(stack.services["serve"].proc)
    before, runs = _stored(stack.home), _count_runs(stack)
    deadline = time.monotonic() + 90  # Prefect marks it NOT_READY after its last-polled timeout (20 s here)
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{stack.api}/upload/check", data=b"", method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read())
            if answer.get("code") == "deployment_not_served":
                break
        time.sleep(2)
    assert answer.get("code") == "deployment_not_served", answer
    _fill_and_send(page, stack, zips["zip"], token=TOKEN)
    page.locator("#message.error").wait_for()
    message = page.inner_text("#message")
    assert "no `lwdock serve` is running" in message and "\n" not in message.strip(), message
    assert _count_runs(stack) == runs and _stored(stack.home) == before
