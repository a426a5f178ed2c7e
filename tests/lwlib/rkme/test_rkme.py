"""Table RKME: fitting quality, the exact gradient, caps, cleaning, herding and reference-compatible JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lwlib.base import clone
from lwlib.errors import LwdockError, NotFittedError, SpecFormatError
from lwlib.rkme.kernels import rbf_kernel
from lwlib.rkme.rkme import RKMETableSpec, _data_terms, _z_direction, effective_reduced_set_size


def _mixture(n: int, d: int = 3, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (4, d)) + shift
    return centres[rng.integers(0, 4, n)] + 0.5 * rng.normal(size=(n, d))


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return _mixture(600)


@pytest.fixture(scope="module")
def spec(data: np.ndarray) -> RKMETableSpec:
    return RKMETableSpec(reduced_set_size=30).fit(data)


def test_fit_shapes_and_simplex(spec: RKMETableSpec, data: np.ndarray) -> None:
    assert spec.z_.shape == (30, 3) and spec.beta_.shape == (30,)
    assert spec.num_points_ == 600 and spec.gamma_ == 0.1 and spec.n_features == 3
    assert spec.beta_.min() >= 0.0
    assert spec.beta_.sum() == pytest.approx(1.0, abs=1e-8)


def test_objective_never_increases(spec: RKMETableSpec) -> None:
    h = np.array(spec.objective_history_)
    assert len(h) >= 2
    assert np.all(np.diff(h) <= 1e-12)
    assert h[-1] < h[0]


def test_mmd_to_own_data_small_and_decreasing_with_k(data: np.ndarray) -> None:
    mmds = [RKMETableSpec(reduced_set_size=k).fit(data).mmd2(data) for k in (10, 50, 100)]
    assert mmds[0] > mmds[1] > mmds[2]
    assert mmds[2] < 1e-3


def test_mmd_between_distributions_is_larger(spec: RKMETableSpec, data: np.ndarray) -> None:
    other = _mixture(600, seed=1, shift=1.5)
    own = spec.mmd2(data)
    assert spec.mmd2(other) > 20 * own
    other_spec = RKMETableSpec(reduced_set_size=30).fit(other)
    assert spec.mmd2(other_spec) > 20 * own
    assert spec.mmd2(spec) == pytest.approx(0.0, abs=1e-12)


def test_more_iterations_beat_the_init(data: np.ndarray) -> None:
    init = RKMETableSpec(reduced_set_size=20, n_iter=0).fit(data).mmd2(data)
    tuned = RKMETableSpec(reduced_set_size=20, n_iter=10).fit(data).mmd2(data)
    assert tuned < init


def test_z_gradient_matches_autograd(data: np.ndarray) -> None:
    gamma = 0.3
    rng = np.random.default_rng(3)
    X = torch.from_numpy(data)
    Z = torch.from_numpy(data[rng.choice(600, 8, replace=False)] + 0.1 * rng.normal(size=(8, 3)))
    beta = torch.from_numpy(rng.dirichlet(np.ones(8)))
    Zg = Z.clone().requires_grad_(True)

    def k(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:  # independent, differentiable kernel
        return torch.exp(-gamma * ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))

    f = beta @ k(Zg, Zg) @ beta - 2.0 * beta @ k(Zg, X).mean(1)
    (auto,) = torch.autograd.grad(f, Zg)
    c, M = _data_terms(Z, X, (X * X).sum(1), gamma)
    grad, direction = _z_direction(Z, beta, rbf_kernel(Z, Z, gamma), c, M, gamma)
    torch.testing.assert_close(grad, auto, rtol=1e-9, atol=1e-12)
    assert float((grad * direction).sum()) < 0  # a descent direction


def test_deterministic_with_seed(data: np.ndarray) -> None:
    a = RKMETableSpec(reduced_set_size=25, random_state=7).fit(data)
    b = RKMETableSpec(reduced_set_size=25, random_state=7).fit(data)
    np.testing.assert_array_equal(a.z_, b.z_)
    np.testing.assert_array_equal(a.beta_, b.beta_)
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize(("k", "n", "d", "expected"), [
    (100, 50, 5, 33), (100, 1000, 20000, 65), (100, 1000, 2_000_000, 20), (100, 1, 3, 1), (100, 2, 3, 1),
    (100, 5000, 10, 100), (1000, 500, 10, 333),
])
def test_reduced_set_caps(k: int, n: int, d: int, expected: int) -> None:
    assert effective_reduced_set_size(k, n, d) == expected


def test_small_n_fit_uses_cap() -> None:
    X = _mixture(50)
    assert RKMETableSpec().fit(X).z_.shape == (33, 3)
    assert RKMETableSpec().fit(X[:1]).z_.shape == (1, 3)


def test_nan_and_inf_become_column_means(data: np.ndarray) -> None:
    X = data[:200].copy()
    X[3, 0], X[10, 1], X[20, 2] = np.nan, np.inf, -np.inf
    imputed = X.copy()
    for j, i in ((0, 3), (1, 10), (2, 20)):
        col = X[:, j]
        imputed[i, j] = col[np.isfinite(col)].mean()
    a = RKMETableSpec(reduced_set_size=10).fit(X)
    b = RKMETableSpec(reduced_set_size=10).fit(imputed)
    np.testing.assert_allclose(a.z_, b.z_)
    assert np.isfinite(a.z_).all()
    assert np.isnan(X[3, 0])  # the caller's array is not modified


def test_all_nan_column_rejected(data: np.ndarray) -> None:
    X = data[:100].copy()
    X[:, 1] = np.nan
    with pytest.raises(LwdockError, match="only NaN") as err:
        RKMETableSpec().fit(X)
    assert err.value.code == "invalid_input"


def test_reduce_false_is_exact_embedding(data: np.ndarray) -> None:
    s = RKMETableSpec(reduce=False).fit(data[:100])
    np.testing.assert_array_equal(s.z_, data[:100])
    np.testing.assert_allclose(s.beta_, 1 / 100)
    assert s.mmd2(data[:100]) == pytest.approx(0.0, abs=1e-12)


def test_signed_beta_sums_to_one(data: np.ndarray) -> None:
    s = RKMETableSpec(reduced_set_size=15, nonnegative_beta=False).fit(data)
    assert s.beta_.sum() == pytest.approx(1.0, abs=1e-6)
    assert s.mmd2(data) < RKMETableSpec(reduced_set_size=15, n_iter=0).fit(data).mmd2(data) * 1.5


def test_herding_samples_near_data_and_keeps_beta(spec: RKMETableSpec, data: np.ndarray) -> None:
    beta_before = spec.beta_.copy()
    S = spec.herding(50, random_state=0)
    assert S.shape == (50, 3)
    np.testing.assert_array_equal(spec.beta_, beta_before)
    nearest = np.sqrt(((S[:, None, :] - data[None]) ** 2).sum(-1)).min(1)
    assert np.median(nearest) < 0.5
    np.testing.assert_array_equal(S, spec.herding(50, random_state=0))
    assert spec.mmd2(S) < spec.mmd2(_mixture(50, seed=5, shift=3.0))


def test_not_fitted_and_params(data: np.ndarray) -> None:
    s = RKMETableSpec(reduced_set_size=5, gamma=0.5)
    with pytest.raises(NotFittedError):
        s.mmd2(data)
    assert clone(s).get_params()["gamma"] == 0.5
    with pytest.raises(LwdockError) as err:
        RKMETableSpec(gamma=-1.0).fit(data)
    assert err.value.code == "invalid_parameter"


def test_dimension_mismatch(spec: RKMETableSpec) -> None:
    with pytest.raises(LwdockError) as err:
        spec.mmd2(np.zeros((5, 4)))
    assert err.value.code == "spec_dim_mismatch"


# ------------------------------------------------------------------ JSON
def _reference_text(z: list, beta: list, gamma: float = 0.1, n: int = 7, type_: str = "RKMETableSpecification",
                    **extra: object) -> str:
    """What the reference's save writes: public state in __init__ order, compact separators."""
    state = {"z": z, "beta": beta, "gamma": gamma, "num_points": n, "type": type_, **extra}
    return json.dumps(state, separators=(",", ":"))


def test_json_round_trip_ours(spec: RKMETableSpec, tmp_path) -> None:
    path = spec.save(tmp_path / "a" / "stat.json")
    loaded = RKMETableSpec.load(path)
    np.testing.assert_array_equal(loaded.z_, spec.z_)
    np.testing.assert_array_equal(loaded.beta_, spec.beta_)
    assert loaded.save(tmp_path / "b.json").read_bytes() == path.read_bytes()
    assert path.read_text().startswith('{"z":[[')
    assert list(json.loads(path.read_text())) == ["z", "beta", "gamma", "num_points", "type"]


def test_reference_layout_round_trips_bytes(tmp_path) -> None:
    rng = np.random.default_rng(0)
    z, beta = rng.normal(size=(4, 3)).tolist(), rng.dirichlet(np.ones(4)).tolist()
    for text in (_reference_text(z, beta), _reference_text(z, beta, gamma=1, type_="RKMEStatSpecification")):
        (tmp_path / "ref.json").write_text(text)
        loaded = RKMETableSpec.load(tmp_path / "ref.json")
        assert loaded.to_json() == text
        assert loaded.save(tmp_path / "out.json").read_bytes() == text.encode()


def test_reference_extra_keys_ignored(tmp_path) -> None:
    text = _reference_text([[1.0, 2.0]], [1.0], cuda_idx=-1, device="cpu")
    (tmp_path / "ref.json").write_text(text)
    loaded = RKMETableSpec.load(tmp_path / "ref.json")
    assert loaded.to_json() == _reference_text([[1.0, 2.0]], [1.0])


@pytest.mark.parametrize(("text", "code"), [
    ('{"z":[[NaN]],"beta":[1.0],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}', "spec_nonfinite"),
    ('{"z":[[1e999]],"beta":[1.0],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}', "spec_nonfinite"),
    ('{"z":[[1.0],[1.0,2.0]],"beta":[0.5,0.5],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}',
     "spec_shape"),
    ('{"z":[[1.0]],"beta":[0.5,0.5],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}', "spec_shape"),
    ('{"z":[["a"]],"beta":[1.0],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}', "spec_shape"),
    ('{"z":[],"beta":[],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}', "spec_shape"),
    ('{"z":[[1.0]],"beta":[1.0],"gamma":-1,"num_points":1,"type":"RKMETableSpecification"}', "spec_gamma"),
    ('{"z":[[1.0]],"beta":[1.0],"gamma":0.1,"num_points":true,"type":"RKMETableSpecification"}',
     "spec_num_points"),
    ('{"z":[[1.0]],"beta":[1.0],"gamma":0.1,"type":"RKMETableSpecification"}', "spec_missing_key"),
    ('{"z":[[1.0]],"beta":[1.0],"gamma":0.1,"num_points":1,"type":"RKMETextSpecification"}', "spec_type_mismatch"),
    ('{"z":[[1.0]],"beta":', "spec_bad_json"),
    ("[1, 2]", "spec_not_object"),
])
def test_corrupt_json_rejected(tmp_path, text: str, code: str) -> None:
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(SpecFormatError) as err:
        RKMETableSpec.load(tmp_path / "bad.json")
    assert err.value.code == code
