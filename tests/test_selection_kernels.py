"""Selection kernels: the weighted-mixture QQT law, the joint optimizer, projektor's predictor and
projection, quantized OT and the capped-simplex projection."""

import numpy as np
import pytest

from tiers.mix_optimizer import PoolSpec, optimize_mix, repetition_caps
from tiers.ot_mixture import MixtureOT, mixture_ot, project_capped_simplex, quantize
from tiers.projektor import (
    ProjektorPredictor,
    choose_mixture,
    features,
    log_projection,
    project_floor_simplex,
)
from tiers.qqt import Pool, error, frontier, mixture_error

TMARS = dict(bs=[-0.160, -0.125, -0.100, -0.085], taus=[6.73, 8.55, 5.27, 2.27])


@pytest.mark.parametrize("convention", ["scaled", "plain"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_mixture_error_equals_the_reference_union_for_equal_shares(convention, k):
    bs, taus = TMARS["bs"][:k], TMARS["taus"][:k]
    for n in (5e6, 32e6, 128e6, 640e6, 1.28e9):
        assert mixture_error(n, [1 / k] * k, [12.8e6] * k, 0.025, bs, taus, 0.1, convention) == pytest.approx(
            error(n, 12.8e6, 0.025, bs, taus, 0.1, convention), rel=1e-12
        )


def test_mixture_error_ignores_zero_shares_and_repeats_small_pools_sooner():
    base = mixture_error(1e8, [0.5, 0.5, 0.0], [1e7, 1e7, 1e7], 0.025, [-0.1, -0.1, -0.3], [5, 5, 5], 0.1)
    assert base == pytest.approx(mixture_error(1e8, [0.5, 0.5], [1e7, 1e7], 0.025, [-0.1, -0.1], [5, 5], 0.1))
    # same utilities, one pool 10x smaller: it repeats 10x more often, so the error is higher
    small = mixture_error(1e8, [0.5, 0.5], [1e7, 1e6], 0.025, [-0.1, -0.1], [5, 5], 0.1)
    assert small > base


def test_optimizer_is_at_least_the_qqt_frontier_and_respects_caps():
    pools = [PoolSpec(f"top{10 * (i + 1)}", 12.8e6, b, t) for i, (b, t) in enumerate(zip(TMARS["bs"], TMARS["taus"]))]
    qpools = [Pool(p.name, p.b, p.tau, p.size) for p in pools]
    for budget in (32e6, 640e6):
        res = optimize_mix(pools, budget, 0.025, 0.1, max_epochs=100)
        best = frontier(qpools, 0.025, 0.1, [budget])[0]
        assert res.predicted_accuracy >= best["accuracy"][str(best["best_k"])] - 1e-9
        assert res.shares.sum() == pytest.approx(1.0)
    capped = optimize_mix(pools, 640e6, 0.025, 0.1, max_epochs=15)
    assert (capped.epochs <= 15 + 1e-6).all()
    again = optimize_mix(pools, 640e6, 0.025, 0.1, max_epochs=15)
    assert np.array_equal(capped.shares, again.shares)  # deterministic
    with pytest.raises(ValueError, match="exceeds what the pools hold"):
        repetition_caps(pools, 1e12, 4)


def test_alignment_pulls_the_mix_toward_the_target():
    rng = np.random.default_rng(0)
    pools = [PoolSpec("a", 1e7, -0.12, 5), PoolSpec("b", 1e7, -0.12, 5)]
    emb = [rng.normal(0, 1, (200, 4)), rng.normal(3, 1, (200, 4))]
    target = rng.normal(3, 1, (150, 4))
    dist = MixtureOT(emb, target, quantize_pool=32, quantize_target=64)
    plain = optimize_mix(pools, 2e7, 0.025, 0.1)
    aligned = optimize_mix(pools, 2e7, 0.025, 0.1, distance=dist, alignment_weight=0.2)
    assert plain.shares[1] == pytest.approx(0.5, abs=0.05)  # equal pools: QQT alone is indifferent-to-balanced
    assert aligned.shares[1] > 0.8 and aligned.alignment_ot < aligned.uniform_ot


def test_capped_simplex_projection_is_the_euclidean_projection():
    from scipy.optimize import minimize

    rng = np.random.default_rng(4)
    for _ in range(15):
        v = rng.normal(size=5)
        caps = rng.uniform(0.15, 0.6, 5)
        p = project_capped_simplex(v, caps)
        ref = minimize(
            lambda x: ((x - v) ** 2).sum(),
            np.full(5, 0.2),
            method="SLSQP",
            bounds=list(zip([0] * 5, caps)),
            constraints={"type": "eq", "fun": lambda x: x.sum() - 1},
            options={"ftol": 1e-14},
        ).x
        assert p.sum() == pytest.approx(1) and (p <= caps + 1e-9).all() and (p >= 0).all()
        assert np.abs(p - ref).max() < 1e-4
    with pytest.raises(ValueError):
        project_capped_simplex(np.ones(3), np.full(3, 0.2))
    assert project_floor_simplex(np.array([1.0, 0, 0]), 0.1) == pytest.approx([0.8, 0.1, 0.1])


def test_weighted_points_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    pools = [rng.normal(c, 1, (25, 3)) for c in (0.0, 1.0, 2.0)]
    weights = [rng.dirichlet(np.ones(25)) for _ in pools]
    target = rng.normal(1.2, 1, (30, 3))
    p = np.array([0.2137, 0.3311, 0.4552])
    res = mixture_ot(pools, p, target, method="exact", pool_weights=weights)
    d = np.array([1.0, -1.0, 0.0])
    eps = 1e-6
    up = mixture_ot(pools, p + eps * d, target, method="exact", pool_weights=weights)["objective"]
    down = mixture_ot(pools, p - eps * d, target, method="exact", pool_weights=weights)["objective"]
    assert (up - down) / (2 * eps) == pytest.approx(res["grad"] @ d, rel=1e-5)


def test_quantized_ot_is_close_to_the_raw_distance():
    rng = np.random.default_rng(6)
    pools = [rng.normal(c, 1, (600, 8)) for c in (0.0, 1.5, 3.0)]
    target = rng.normal(1.0, 1, (500, 8))
    p = np.array([0.5, 0.3, 0.2])
    raw = MixtureOT(pools, target, None, None, method="exact")(p)["ot"]
    quant = MixtureOT(pools, target, 64, 128)(p)["ot"]
    assert quant == pytest.approx(raw, rel=0.2)  # quantization lowers the within-cluster spread only
    c, w = quantize(pools[0], 64)
    assert len(c) <= 64 and w.sum() == pytest.approx(1)


@pytest.mark.parametrize("form", ["code", "paper", "log_counts", "interaction", "linear"])
def test_projektor_recovers_a_planted_law_and_its_partials(form):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(3), 40)
    ot = rng.uniform(1, 3, 40)
    n = 400
    design = features(ot, p, form, n)
    true = rng.normal(0, 0.05, design.shape[1] + 1)  # intercept + one coefficient per column
    y = true[0] + design @ true[1:]
    model = ProjektorPredictor(form).fit(ot, p, y, n=n)
    assert model.coef_ == pytest.approx(true[1:], abs=1e-8)
    # partials agree with central finite differences of the fitted form, on every coordinate
    q, o = np.array([0.3, 0.25, 0.45]), 2.0
    d_ot, d_p = model.partials(o, q)
    eps = 1e-6
    assert (model.predict([o + eps], [q]) - model.predict([o - eps], [q]))[0] / (2 * eps) == pytest.approx(d_ot, rel=1e-5)
    for i in range(3):
        e = np.eye(3)[i] * eps
        fd = (model.predict([o], [q + e]) - model.predict([o], [q - e]))[0] / (2 * eps)
        assert fd == pytest.approx(d_p[i], rel=1e-5, abs=1e-9)
    if form in ("code", "interaction", "linear"):
        assert d_p[2] == 0  # the code's columns see p_1..p_{m-1} only
    if form in ("interaction", "linear"):  # nested designs: fewer columns than the code's form
        assert design.shape[1] < features(ot, p, "code", n).shape[1]


def test_projektor_form_validation():
    with pytest.raises(ValueError, match="form must be one of"):
        ProjektorPredictor("cubic")
    p = np.random.default_rng(0).dirichlet(np.ones(3), 20)
    with pytest.raises(ValueError, match="revealed training size"):
        ProjektorPredictor("log_counts").fit(np.ones(20), p, np.ones(20))
    with pytest.raises(ValueError, match="too few"):
        ProjektorPredictor("log_counts").fit(np.ones(8), p[:8], np.ones(8), n=100)


def test_log_projection_is_exact_in_log_n():
    # the log projection is exact for performance affine in log N and reproduces its anchors
    f = lambda n: 0.3 + 0.05 * np.log(n)  # noqa: E731
    assert log_projection(f(1000), f(1500), 1000, 1500, 10_000) == pytest.approx(f(10_000))
    assert log_projection(f(1000), f(1500), 1000, 1500, 1000) == pytest.approx(f(1000))
    with pytest.raises(ValueError):
        log_projection(1, 2, 100, 100, 1000)


def test_choose_mixture_finds_the_planted_optimum():
    # performance = −OT (OT to a target made of pool 1): the best mixture is all of pool 1
    rng = np.random.default_rng(8)
    pools = [rng.normal(c, 1, (60, 3)) for c in (0.0, 2.0, 4.0)]
    dist = MixtureOT(pools, rng.normal(2.0, 1, (60, 3)), None, None, method="exact")
    grid = np.array([[i / 5, j / 5, 1 - (i + j) / 5] for i in range(6) for j in range(6 - i)])
    ots = np.array([dist(g)["ot"] for g in grid])
    model = ProjektorPredictor().fit(ots, grid, -ots, n=1000)
    best = choose_mixture({1000: model}, dist, 1000, [np.eye(3)[i] for i in range(3)])
    assert best["p"][1] > 0.9
