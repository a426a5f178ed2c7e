"""The deploying stage end to end: real submission flow builds the market, the deploy flow finds and reuses."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from lwlib.learnware.packager import package_learnware
from lwlib.semantic import make_semantic_spec
from lwlib.settings import Settings
from lwlib.status import Status
from lwlib.userdata import save_table

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

GROUPS = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 1, 7)]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from flows.submit import submit_batch

    root = tmp_path_factory.mktemp("deploy")
    mp = pytest.MonkeyPatch()
    mp.setenv("LWDOCK_HOME", str(root / "home"))  # deployed flows take their dock home from the environment
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    test_mask = rng.random(len(y)) < 0.3
    zips = []
    for i, g in enumerate(GROUPS):
        m = np.isin(y, g) & ~test_mask
        clf = LogisticRegression(max_iter=300).fit(X[m], y[m])
        sem = make_semantic_spec(name=f"Digits {'-'.join(map(str, g))} classifier",
                                 description=f"Recognises handwritten digits {g} from 8x8 images",
                                 data_type="Table", task_type="Classification", scenarios=["Education"],
                                 input_dimension=64, output_dimension=10)
        zips.append(str(package_learnware(clf, X[m], sem, root / f"lw{i}.zip")))
    home = root / "home"
    results = submit_batch(zip_paths=zips)
    assert all(r.status is Status.USABLE for r in results), [r.reason for r in results]
    yield {"home": home, "ids": [r.learnware_id for r in results], "X": X[test_mask], "y": y[test_mask],
           "root": root}
    mp.undo()


def test_user_from_one_learnwares_distribution_gets_it_top1_and_a_deployable_solution(market: dict) -> None:
    import mlflow

    from flows.deploy import find_and_reuse

    X, y = market["X"], market["y"]
    mask = np.isin(y, GROUPS[1])
    data = save_table(market["root"] / "user1.npy", X[mask])
    out = find_and_reuse(user_data=str(data), reuser="top1", register_name="user1-sol")
    assert out.singles[0]["learnware_id"] == market["ids"][1]
    assert out.reuser == "top1" and out.learnware_ids == [market["ids"][1]]
    pred = np.load(out.predictions_path)
    acc = float((pred.reshape(-1) == y[mask]).mean())
    assert acc > 0.9
    mlflow.set_tracking_uri(Settings(home=market["home"]).mlflow_uri)
    model = mlflow.pyfunc.load_model("models:/user1-sol@usable")
    np.testing.assert_array_equal(np.asarray(model.predict(X[mask][:30])).reshape(-1), pred[:30].reshape(-1))


def test_user_from_a_mixture_gets_both_learnwares_and_job_selector_beats_mean_in_market(market: dict) -> None:
    from flows.deploy import find_and_reuse

    X, y = market["X"], market["y"]
    a, b = np.flatnonzero(np.isin(y, GROUPS[0])), np.flatnonzero(np.isin(y, GROUPS[2]))
    rows = np.concatenate([a[: int(0.6 * len(a))], b[: int(0.4 * len(a))]])
    data = save_table(market["root"] / "user2.npy", X[rows])
    out = find_and_reuse(user_data=str(data), reuser="job_selector")
    assert out.mixtures and {market["ids"][0], market["ids"][2]} <= set(out.mixtures[0]["learnware_ids"])
    pred = np.load(out.predictions_path).reshape(-1)
    acc = float((pred == y[rows]).mean())
    single_accs = []
    for g in GROUPS:  # mean in market: each learnware alone labels only its own classes right
        single_accs.append(float(np.isin(y[rows], g).mean()))
    assert acc > np.mean(single_accs) + 0.2


def test_requirement_matching_nothing_returns_empty_result_with_message(market: dict) -> None:
    from flows.deploy import find_and_reuse

    data = save_table(market["root"] / "user3.npy", market["X"][:50])
    out = find_and_reuse(user_data=str(data),
                         requirement={"Data": {"Type": "Class", "Values": ["Image"]}})
    assert out.singles == [] and out.model_uri is None and out.message


def test_user_in_another_feature_space_is_served_through_description_alignment(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No learnware shares the user's columns; the requirement's Input descriptions align them."""
    from sklearn.linear_model import Ridge

    from flows.deploy import find_and_reuse
    from flows.submit import submit_batch

    names = ["temperature", "humidity", "wind speed", "pressure", "rainfall"]
    rng = np.random.default_rng(0)
    centres = [np.full(5, -3.0), np.zeros(5), np.full(5, 3.0)]
    coefs = [np.array([1.0, -2, 0, 1, 3]), np.array([-1.0, 0, 2, 2, -1]), np.array([2.0, 1, -1, 0, 1])]
    zips = []
    for i, (c, w) in enumerate(zip(centres, coefs)):
        X = c + rng.standard_normal((300, 5))
        sem = make_semantic_spec(name=f"Weather regressor {i}", description="Predicts a weather index",
                                 task_type="Regression", scenarios=["Nature"], input_dimension=5,
                                 input_descriptions=dict(enumerate(names)), output_dimension=1)
        zips.append(str(package_learnware(Ridge().fit(X, X @ w), X, sem, tmp_path / f"w{i}.zip")))
    home = tmp_path / "home"
    monkeypatch.setenv("LWDOCK_HOME", str(home))
    assert all(r.status is Status.USABLE for r in submit_batch(zip_paths=zips))

    cols = [4, 0, 3, 1]  # the user has 4 of the 5 columns, in another order
    Xu_full = centres[2] + rng.standard_normal((200, 5))
    requirement = {"Input": {"Dimension": 4, "Description": {str(j): names[c] for j, c in enumerate(cols)}}}
    data = save_table(tmp_path / "user.npy", Xu_full[:, cols])
    out = find_and_reuse(user_data=str(data), requirement=requirement, reuser="top1")
    assert out.singles and out.reuser == "top1"
    pred = np.load(out.predictions_path).reshape(-1)
    y = Xu_full @ coefs[2]
    mse = float(np.mean((pred - y) ** 2))
    mean_in_market = np.mean([np.mean((Xu_full @ w - y) ** 2) for w in coefs])
    assert mse < 0.5 * mean_in_market

    import mlflow  # the deployed solution maps user rows the same way (its column maps are saved with it)

    mlflow.set_tracking_uri(Settings(home=home).mlflow_uri)
    served = mlflow.pyfunc.load_model(out.model_uri.rsplit("/", 1)[0] + "@usable")
    np.testing.assert_allclose(np.asarray(served.predict(Xu_full[:40, cols])).reshape(-1), pred[:40], rtol=1e-6)


def test_labelled_requirement_uses_the_labels_and_records_the_weights_it_deploys(market: dict) -> None:
    """With 20 labels the ranking says which evidence decided, auto is scored on the labels, and the weights the
    result reports are exactly the ones MLflow recorded for the deployed solution."""
    from mlflow import MlflowClient

    from flows.deploy import find_and_reuse

    X, y = market["X"], market["y"]
    mask = np.flatnonzero(np.isin(y, GROUPS[2]))
    rng = np.random.default_rng(1)
    lab = rng.choice(mask, 20, replace=False)
    data = save_table(market["root"] / "user4.npy", X[mask])
    labels = save_table(market["root"] / "user4-labels.npz", X[lab], y[lab])
    out = find_and_reuse(user_data=str(data), labelled_data=str(labels), register_name="user4-sol")
    assert out.singles[0]["learnware_id"] == market["ids"][2]
    assert out.evidence["decided_by"] in {"agreement", "labels", "specifications", "combination"}
    assert out.evidence["n_labels"] == 20 and "held_out_loss" in out.evidence["reuse"]
    pred = np.load(out.predictions_path).reshape(-1)
    assert float((pred == y[mask]).mean()) > 0.9
    client = MlflowClient(tracking_uri=Settings(home=market["home"]).mlflow_uri)
    version = client.get_model_version_by_alias("user4-sol", "usable")
    params = client.get_run(version.run_id).data.params
    assert params["weights"] == ",".join(f"{w:.4f}" for w in out.weights)
    assert params["learnwares"] == ",".join(out.learnware_ids) and params["n_labels"] == "20"
    assert version.description  # a registered solution says what it is


def test_serve_model_serves_a_solution_as_printed_and_refuses_bad_input_in_one_line(market: dict) -> None:
    """`lwdock serve-model NAME` sets the tracking URI and PATH itself; a wrong width is a 400 with one message."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from flows.deploy import find_and_reuse

    X, y = market["X"], market["y"]
    mask = np.isin(y, GROUPS[3])
    find_and_reuse(user_data=str(save_table(market["root"] / "user5.npy", X[mask])), reuser="top1",
                   register_name="served-sol")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("MLFLOW_TRACKING_URI", "PATH")}
    env["PATH"] = "/usr/bin:/bin"  # the command must find mlflow/uvicorn itself
    proc = subprocess.Popen([str(Path(sys.executable).with_name("lwdock")), "serve-model", "served-sol", "--port",
                             str(port), "--home", str(market["home"])], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def post(rows: list[list[float]]) -> tuple[int, dict]:
        req = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": rows}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(1)
        status, body = post([[1.0, 2.0, 3.0]])
        assert status == 400 and "\n" not in body["message"] and "stack_trace" not in body
        assert body["message"] == "input of shape (1, 3) does not match the model's input shape (-1, 64)"
        status, body = post(X[mask][:5].tolist())
        assert status == 200 and len(body["predictions"]) == 5
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
