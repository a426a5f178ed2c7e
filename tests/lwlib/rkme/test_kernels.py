"""Kernel algebra: the RBF kernel, batched MMD² against padded stacks, self terms and the median heuristic."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf

import lwlib.rkme.kernels as kernels
from lwlib.errors import LwdockError
from lwlib.rkme.kernels import mmd2_batch, median_heuristic_gamma, rbf_kernel, self_inner_products, stack_specs
from lwlib.rkme.rkme import RKMETableSpec


@pytest.fixture(scope="module")
def specs() -> list[RKMETableSpec]:
    rng = np.random.default_rng(0)
    out = []
    for i, k in enumerate((5, 12, 8, 20)):  # different K ⇒ padding is exercised
        X = rng.normal(i * 0.7, 1.0 + 0.2 * i, (150, 4))
        out.append(RKMETableSpec(reduced_set_size=k, n_iter=2).fit(X))
    return out


def test_rbf_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    np.testing.assert_allclose(rbf_kernel(A, B, 0.3).numpy(), sk_rbf(A, B, gamma=0.3), rtol=1e-10)
    assert rbf_kernel(A, A, 0.3).diagonal().numpy() == pytest.approx(np.ones(7))


def test_batched_mmd_equals_pairwise(specs: list[RKMETableSpec]) -> None:
    Zs, betas = stack_specs(specs)
    assert Zs.shape == (4, 20, 4) and betas.shape == (4, 20)
    q = specs[1]
    for gamma in (0.1, 0.7):
        expected = np.array([q.mmd2(s, gamma=gamma) for s in specs])
        got = mmd2_batch(q.z_, q.beta_, Zs, betas, gamma)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        # spec call form of the INTERFACES contract, positional and keyword, with cached self terms
        cache = self_inner_products(Zs, betas, gamma)
        np.testing.assert_allclose(mmd2_batch(q, Zs, betas, gamma), expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mmd2_batch(q, Zs=Zs, betas=betas, gamma=gamma, self_terms=cache), expected,
                                   rtol=1e-9, atol=1e-12)
    assert got[1] == pytest.approx(0.0, abs=1e-10)


def test_blocks_do_not_change_results(specs: list[RKMETableSpec], monkeypatch: pytest.MonkeyPatch) -> None:
    Zs, betas = stack_specs(specs)
    whole = mmd2_batch(specs[0], Zs, betas, 0.2)
    monkeypatch.setattr(kernels, "_MAX_BLOCK_ENTRIES", 50)  # forces one spec per block
    np.testing.assert_allclose(mmd2_batch(specs[0], Zs, betas, 0.2), whole, rtol=1e-12)


def test_self_inner_products(specs: list[RKMETableSpec]) -> None:
    Zs, betas = stack_specs(specs)
    expected = [s.inner_product(s, gamma=0.4) for s in specs]
    np.testing.assert_allclose(self_inner_products(Zs, betas, 0.4), expected, rtol=1e-10)


def test_stack_rejects_mixed_dimensions(specs: list[RKMETableSpec]) -> None:
    other = RKMETableSpec(reduced_set_size=3, n_iter=0).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(LwdockError) as err:
        stack_specs([specs[0], other])
    assert err.value.code == "spec_dim_mismatch"
    with pytest.raises(LwdockError):
        stack_specs([])
    Zs, betas = stack_specs(specs)
    with pytest.raises(LwdockError) as err:
        mmd2_batch(other, Zs, betas, 0.1)
    assert err.value.code == "spec_dim_mismatch"


def test_median_heuristic_scales_with_data() -> None:
    X = np.random.default_rng(2).normal(size=(3000, 6))
    g = median_heuristic_gamma(X)
    d = np.sqrt(((X[:300, None] - X[None, :300]) ** 2).sum(-1))
    assert g == pytest.approx(1 / (2 * np.median(d[np.triu_indices(300, 1)]) ** 2), rel=0.1)
    assert median_heuristic_gamma(3 * X) == pytest.approx(g / 9, rel=1e-9)
    assert median_heuristic_gamma(np.ones((5, 2))) == 1.0
