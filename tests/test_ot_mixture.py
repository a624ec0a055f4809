"""OT between a pool mixture and a target: gradients against finite differences, the simplex
projection, projected-gradient search."""

import numpy as np
import pytest

from tiers.ot_mixture import minimize_ot, mixture_ot, project_simplex


def _pools(seed=0):
    rng = np.random.default_rng(seed)
    pools = [rng.normal(loc=c, size=(30 + 5 * i, 4)) for i, c in enumerate([0.0, 1.0, 2.0])]
    target = rng.normal(loc=1.5, size=(40, 4))
    return pools, target


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
def test_gradient_matches_finite_differences(method):
    pools, target = _pools()
    p = np.array([0.2137, 0.3311, 0.4552])  # generic masses: no degenerate transport basis
    res = mixture_ot(pools, p, target, method=method, reg=0.01)
    assert res["exact"] == (method == "exact")
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        d = np.zeros(3)
        d[i], d[j] = 1.0, -1.0
        eps = 1e-5
        up = mixture_ot(pools, p + eps * d, target, method=method, reg=0.01)["objective"]
        down = mixture_ot(pools, p - eps * d, target, method=method, reg=0.01)["objective"]
        assert (up - down) / (2 * eps) == pytest.approx(res["grad"] @ d, rel=1e-5, abs=1e-7)


def test_zero_weight_pool_gets_a_potential():
    pools, target = _pools(1)
    res = mixture_ot(pools, np.array([0.0, 0.4, 0.6]), target, method="exact")
    assert np.isfinite(res["grad"]).all()


def test_simplex_projection_is_the_euclidean_projection():
    from scipy.optimize import minimize

    rng = np.random.default_rng(2)
    for _ in range(20):
        v = rng.normal(size=5) * 2
        p = project_simplex(v)
        assert p.min() >= 0 and p.sum() == pytest.approx(1.0)
        ref = minimize(
            lambda x: ((x - v) ** 2).sum(),
            np.full(5, 0.2),
            method="SLSQP",
            bounds=[(0, 1)] * 5,
            constraints={"type": "eq", "fun": lambda x: x.sum() - 1},
            options={"ftol": 1e-12},
        ).x
        assert ((p - v) ** 2).sum() <= ((ref - v) ** 2).sum() + 1e-9  # no feasible point is closer
        assert np.abs(p - ref).max() < 1e-3
    assert project_simplex(np.array([0.2, 0.3, 0.5])) == pytest.approx([0.2, 0.3, 0.5])


def test_projected_gradient_moves_weight_to_the_pool_like_the_target():
    rng = np.random.default_rng(3)
    pools = [rng.normal(loc=c, size=(40, 3)) for c in (0.0, 3.0, 6.0)]
    target = rng.normal(loc=3.0, size=(50, 3))
    res = minimize_ot(pools, target, steps=40)
    assert res["p"].argmax() == 1 and res["p"][1] > 0.8
    assert res["ot"] < res["history"][0]
