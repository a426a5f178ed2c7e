"""Fixtures of the browser tests: one real dock stack per module, and Debian's Chromium driven by Playwright.

The browser tests skip, with the reason, when Playwright or /usr/bin/chromium is missing (before any server starts:
ask for ``browser`` before ``stack``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser_stack import (BIN, CHROMIUM, CHROMIUM_ARGS, TOKEN, Stack, base_env, free_port, http_ok,  # same dir
                           stop)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prefect server + `deployments.serve` + `lwdock api` + `mlflow ui`, started in parallel where they can be."""
    base = tmp_path_factory.mktemp("browser-stack")
    home = base / "home"
    home.mkdir()
    pport, aport, mport = free_port(), free_port(), free_port()
    st = Stack(base=base, home=home, prefect_api=f"http://127.0.0.1:{pport}/api",
               prefect_ui=f"http://127.0.0.1:{pport}", api=f"http://127.0.0.1:{aport}",
               mlflow_ui=f"http://127.0.0.1:{mport}")
    env = base_env(home, base / "prefect")
    try:
        # the UI must be told where its API is when the server is not on the default port 4200
        st.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                    str(pport)],
                 {**env, "PREFECT_UI_API_URL": st.prefect_api, "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
                  # a deployment no runner polls turns NOT_READY in ~20 s (default 60 s), for the "not served" test
                  "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "2",
                  "PREFECT_SERVER_SERVICES_FOREMAN_DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS": "20"})
        # one worker: four workers importing MLflow at once on a 2-core machine time out and respawn for minutes
        st.start("mlflow-ui", [str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
                               "--host", "127.0.0.1", "--port", str(mport), "--workers", "1"], env, cwd=base)
        # `lwdock api` needs only the server's URL, not the server: it starts meanwhile
        served = {**env, "PREFECT_API_URL": st.prefect_api}
        st.start("api", [sys.executable, "-m", "deployments.cli", "api", "--home", str(home), "--port", str(aport)],
                 {**served, "LWDOCK_API_TOKEN": TOKEN})
        st.wait("prefect-server", lambda: http_ok(f"{st.prefect_api}/health"), 180)
        st.start("serve", [sys.executable, "-m", "deployments.serve"], {**served, "PREFECT_RUNNER_POLL_FREQUENCY": "3"})
        st.wait("api", lambda: http_ok(f"{st.api}/health"), 120)
        st.wait("serve", lambda: "being served" in st.services["serve"].log.read_text(errors="replace"), 120)
        # the dock's first registry write must not race `mlflow ui` creating the same sqlite store
        st.wait("mlflow-ui", lambda: http_ok(f"{st.mlflow_ui}/health"), 240)
        yield st
    finally:
        for svc in reversed(list(st.services.values())):
            stop(svc.proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: Debian's Chromium is not at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[browser]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser context per test; its console errors are collected on ``page.errors``."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("dialog", lambda d: (pg.errors.append(f"dialog: {d.message}"), d.dismiss()))
    try:
        yield pg
    finally:
        ctx.close()
