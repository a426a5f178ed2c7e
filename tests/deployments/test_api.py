"""`lwdock api` against a real uvicorn on a free port (subprocess): endpoints, errors, token rules, refresh."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from test_cli import D, _id, add  # same directory (pytest puts it on sys.path)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, home: Path, *, token: str | None, protect_reads: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        e = {**os.environ, **(env or {})}
        e.pop("LWDOCK_API_TOKEN", None)
        if token:
            e["LWDOCK_API_TOKEN"] = token
        e.setdefault("PREFECT_CLIENT_MAX_RETRIES", "0")
        args = [sys.executable, "-m", "deployments.cli", "api", "--home", str(home), "--port", str(self.port)]
        self.log = home.parent / f"api-{self.port}.log"
        self.proc = subprocess.Popen(args + (["--protect-reads"] if protect_reads else []), cwd=ROOT, env=e,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/openapi.json", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("api did not start")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("api") / "dock"
    for i, name in enumerate(["alpha api", "beta api", "gamma api", "delta api"]):
        add(h, name, 5.0 * i)
    return h


@pytest.fixture(scope="module")
def api(home) -> Iterator[Server]:
    s = Server(home, token=TOKEN)
    yield s
    s.stop()


def rows(mean: float, n: int = 80) -> list[list[float]]:
    return (mean + np.random.default_rng(int(mean)).normal(size=(n, D))).tolist()


def test_reads_are_open_and_answer_like_the_snapshot(api, home):
    from lwlib.market import MarketSnapshot

    st, health = api.call("GET", "/health")
    assert st == 200 and health["searchable"] == 4 and health["writes"] is True
    st, page = api.call("GET", "/learnwares?limit=2&offset=1")
    assert st == 200 and page["total"] == 4 and [r["name"] for r in page["learnwares"]] == ["beta api", "gamma api"]
    st, one = api.call("GET", "/learnwares/gamma%20api")
    assert st == 200 and one["id"] == _id("gamma api") and one["status"] == "USABLE" and "history" in one
    X = rows(10.0)
    st, found = api.call("POST", "/search", {"data": X, "top_k": 3})
    assert st == 200, found
    local = MarketSnapshot.open(home).search(None, user_X=np.asarray(X), top_k=3)
    assert [m["learnware_id"] for m in found["singles"]] == [m.learnware_id for m in local.singles]
    np.testing.assert_allclose([m["score"] for m in found["singles"]], [m.score for m in local.singles])
    assert found["names"][_id("gamma api")] == "gamma api"
    spec = MarketSnapshot.open(home).user_spec(np.asarray(X))
    st, by_rkme = api.call("POST", "/search", {"rkme": spec.to_dict(), "top_k": 3})
    assert st == 200 and by_rkme["singles"][0]["learnware_id"] == _id("gamma api")
    st, sem = api.call("POST", "/search", {"semantic": {"Name": {"Type": "String", "Values": "delta"}}})
    assert st == 200 and [m["learnware_id"] for m in sem["semantic"]] == [_id("delta api")]
    st, spec_doc = api.call("GET", "/openapi.json")
    assert {"/search", "/learnwares", "/learnwares/{ref}", "/submissions"} <= set(spec_doc["paths"])


@pytest.mark.parametrize("body,status,code", [
    ({}, 400, "invalid_request"),
    ({"data": [[1.0] * D], "rkme": {}}, 400, "invalid_request"),
    ({"data": [[1.0, 2.0], [3.0]]}, 400, "invalid_input"),
    ({"data": [[1.0] * D], "top_k": 0}, 422, "invalid_request"),
    ({"data": [[1.0] * D], "colour": "red"}, 422, "invalid_request"),
    ({"rkme": {"z": [[1.0]], "beta": [1.0], "gamma": 0.1, "num_points": 1, "type": "Nope"}}, 400,
     "spec_type_mismatch"),
    ({"data": [[1.0] * D], "labels": [1]}, 400, "invalid_request"),
])
def test_bad_requests_get_one_json_error(api, body, status, code):
    st, err = api.call("POST", "/search", body)
    assert (st, err["code"]) == (status, code), err
    assert set(err) == {"error", "code"} and "\n" not in err["error"]


def test_non_finite_rows_are_refused(api):
    st, err = api.call("POST", "/search", raw=b'{"data": [[NaN, 1, 1, 1, 1]]}')
    assert st == 400 and err["code"] == "invalid_input" and "NaN" in err["error"]


def test_unknown_learnware_is_404(api):
    st, err = api.call("GET", "/learnwares/nothing-like-this")
    assert st == 404 and err["code"] == "not_found"


def test_writes_need_the_token_and_a_refused_write_changes_nothing(api, home, tmp_path):
    lid = _id("delta api")
    for token in (None, "wrong"):
        st, err = api.call("DELETE", f"/learnwares/{lid[:12]}", token=token)
        assert (st, err["code"]) == (401, "unauthorized")
        st, err = api.call("POST", "/submissions", {"zip_location": str(tmp_path / "x.zip")}, token=token)
        assert st == 401
    assert api.call("GET", f"/learnwares/{lid[:12]}")[0] == 200
    st, err = api.call("POST", "/submissions", {"zip_location": str(tmp_path / "none.zip")}, token=TOKEN)
    assert (st, err["code"]) == (400, "zip_not_found")
    z = tmp_path / "lw.zip"
    z.write_bytes(b"PK")
    st, err = api.call("POST", "/submissions", {"zip_location": str(z)}, token=TOKEN)
    assert (st, err["code"]) == (503, "prefect_not_configured") and "lwdock serve" in err["error"]
    st, out = api.call("DELETE", f"/learnwares/{lid[:12]}", token=TOKEN)
    assert st == 200 and out == {"deleted": lid, "name": "delta api"}
    assert api.call("GET", f"/learnwares/{lid[:12]}")[0] == 404
    st, health = api.call("GET", "/health")
    assert health["searchable"] == 3  # the warm snapshot refreshed


def test_the_snapshot_refreshes_when_the_catalog_changes(api, home):
    add(home, "epsilon api", 40.0)
    st, found = api.call("POST", "/search", {"data": rows(40.0)})
    assert st == 200 and found["singles"][0]["learnware_id"] == _id("epsilon api")


def test_no_token_configured_refuses_writes(home):
    s = Server(home, token=None)
    try:
        st, err = s.call("DELETE", f"/learnwares/{_id('alpha api')[:12]}", token="anything")
        assert (st, err["code"]) == (403, "writes_disabled") and "lwdock api token" in err["error"]
        assert s.call("GET", "/learnwares")[0] == 200
    finally:
        s.stop()


def test_protected_reads_need_the_token(home):
    s = Server(home, token=TOKEN, protect_reads=True)
    try:
        assert s.call("GET", "/learnwares")[0] == 401
        assert s.call("POST", "/search", {"data": rows(0.0)})[0] == 401
        assert s.call("GET", "/learnwares", token=TOKEN)[0] == 200
    finally:
        s.stop()


def test_unreachable_prefect_is_503(home, tmp_path):
    s = Server(home, token=TOKEN, env={"PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api"})
    try:
        z = tmp_path / "lw.zip"
        z.write_bytes(b"PK")
        st, err = s.call("POST", "/submissions", {"zip_location": str(z)}, token=TOKEN)
        assert st == 503 and err["code"] in ("prefect_unreachable", "deployment_not_served"), err
    finally:
        s.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_submit_starts_the_served_deployment_on_a_real_prefect_server(home, tmp_path):
    """A real `prefect server start`: 503 while the deployment is not registered, a flow run id once it is."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "prefect.log"
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    s = None
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                urllib.request.urlopen(f"{api_url}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-2000:]
                time.sleep(0.5)
        s = Server(home, token=TOKEN, env={"PREFECT_API_URL": api_url, "PREFECT_HOME": env["PREFECT_HOME"]})
        z = tmp_path / "lw.zip"
        z.write_bytes(b"PK")
        st, err = s.call("POST", "/submissions", {"zip_location": str(z)}, token=TOKEN)
        assert (st, err["code"]) == (503, "deployment_not_served"), err
        reg = subprocess.run([sys.executable, "-c", "from deployments.serve import build_deployments\n"
                              "[d.apply() for d in build_deployments() if d.name == 'submit']"],
                             cwd=ROOT, env={**env, "PREFECT_API_URL": api_url}, capture_output=True, text=True,
                             timeout=300)
        assert reg.returncode == 0, reg.stderr[-3000:]
        st, run = s.call("POST", "/submissions", {"zip_location": str(z)}, token=TOKEN)
        assert st == 202 and run["deployment"] == "submit-from-ui/submit", run
        with urllib.request.urlopen(f"{api_url}/flow_runs/{run['flow_run_id']}", timeout=10) as r:
            flow_run = json.loads(r.read())
        assert flow_run["parameters"]["request"]["zip_location"] == str(z)
    finally:
        if s is not None:
            s.stop()
        os.killpg(server.pid, 15)
        server.wait(30)


def test_labels_go_through_the_deploying_stages_search(api):
    X = rows(10.0)
    st, lab = api.call("POST", "/search", {"data": X, "labelled_data": X[:12], "labels": [0, 1] * 6, "top_k": 3})
    assert st == 200, lab
    assert lab["evidence"].get("n_labels") == 12 and lab["singles"]
