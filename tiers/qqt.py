"""Quality-quantity tradeoff (QQT) scaling laws for data filtering (Goyal, Maini, Lipton,
Raghunathan, Kolter, "Scaling Laws for Data Filtering — Data Curation cannot be Compute Agnostic",
CVPR 2024, arXiv 2404.07177), following the published code (locuslab/scaling_laws_data_filtering
@251f695: ``objective.py``, ``grid_search.py``, ``estimate_best_pool.py``) where it and the paper's
prose differ (``../shared/reference/selection.md`` §2).

Per pool with S unique samples, n samples seen, k = floor(n / S) completed passes:

    b_j  = b · 0.5^(j / τ)                      (utility halves every τ repetitions)
    y(n) = [(a · min(S, n) / 1e5)^b_0 + d] · Π_{j=1..k} [min((j+1)·S, n) / (j·S)]^b_j
    accuracy = 1 − y

A union of p equal-size pools (size p·S) uses b_eff,j = (1/p) Σ_i b_i · 0.5^(j / τ_i) in the same
formula. Convention (``tau_convention``): the reference code multiplies every τ_i by p before
combining (``c_list = c_list * num_buckets`` in ``estimate_best_pool.py``), which is what
reproduces its published frontier, so that is the default (``"scaled"``); ``"plain"`` uses τ_i as
fitted. The frontier (``estimate_best_buckets``): pools in quality order, for each budget the
top-k union with the lowest predicted error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

NORMALIZER = 1e5


@dataclass(frozen=True)
class Pool:
    name: str
    b: float
    tau: float
    size: float


def error(n: float, size: float, a: float, bs, taus, d: float, tau_convention: Literal["scaled", "plain"] = "scaled") -> float:
    """Predicted error after ``n`` samples seen of the uniform union of pools (b_i, τ_i), each of
    ``size`` unique samples."""
    bs, taus = np.asarray(bs, float), np.asarray(taus, float)
    p = len(bs)
    if tau_convention == "scaled":
        taus = taus * p
    total = p * size
    k = int(math.floor(n / total))
    y = (a * min(total, n) / NORMALIZER) ** bs.mean() + d
    for j in range(1, k + 1):
        b_j = float(np.mean(bs * 0.5 ** (j / taus)))
        y *= (min((j + 1) * total, n) / (j * total)) ** b_j
    return float(y)


def frontier(pools: list[Pool], a: float, d: float, budgets: list[float], tau_convention: Literal["scaled", "plain"] = "scaled") -> list[dict]:
    """For each budget: accuracy of every top-k union and the best k (pools in quality order)."""
    if len({p.size for p in pools}) > 1:
        raise ValueError("QQT combines equal-size pools; give pools of one size")
    out = []
    for n in budgets:
        acc = {}
        for k in range(1, len(pools) + 1):
            top = pools[:k]
            acc[str(k)] = 1.0 - error(n, top[0].size, a, [p.b for p in top], [p.tau for p in top], d, tau_convention)
        best = max(acc, key=lambda key: (acc[key], -int(key)))
        out.append({"budget": n, "best_k": int(best), "pools": [p.name for p in pools[: int(best)]], "accuracy": acc})
    return out


def _error_vec(n: float, size: float, a: np.ndarray, b: np.ndarray, tau: np.ndarray, d: float) -> np.ndarray:
    """:func:`error` of one pool for arrays of (a, b, τ) at once (the grid search's inner loop)."""
    k = int(math.floor(n / size))
    y = (a * min(size, n) / NORMALIZER) ** b + d
    for j in range(1, k + 1):
        y = y * (min((j + 1) * size, n) / (j * size)) ** (b * 0.5 ** (j / tau))
    return y


def fit_pool(samples_seen, errors, size: float, d: float = 0.1, a: float | None = None, grid: int = 60, seed: int = 0) -> dict:
    """Fit (a, b, τ) of one pool to observed (n, error) points, d fixed (as the reference).

    The reference grid (a: [1e-4, a_max], b: [-0.5, -0.005], τ: [1, 10]) gives a start; a
    bounded least-squares refinement (scipy) then polishes it — at least as good as the grid by
    construction, since it starts there and only accepts a lower SSE."""
    from scipy.optimize import least_squares

    n = np.asarray(samples_seen, float)
    y = np.asarray(errors, float)

    def sse(params):
        aa, bb, tt = params
        return float(sum((error(ni, size, aa, [bb], [tt], d, "plain") - yi) ** 2 for ni, yi in zip(n, y)))

    a_grid = np.array([a]) if a is not None else np.geomspace(1e-4, 1.0, grid)
    b_grid = -np.geomspace(0.005, 0.5, grid)
    t_grid = np.linspace(1, 10, max(10, grid // 3))
    rng = np.random.default_rng(seed)
    # the reference shuffles the grid and stops after 100,000 evaluations; evaluated as arrays here
    A, B, T = (g.ravel() for g in np.meshgrid(a_grid, b_grid, t_grid, indexing="ij"))
    keep = rng.permutation(len(A))[:100_000]
    A, B, T = A[keep], B[keep], T[keep]
    total = np.zeros(len(A))
    for ni, yi in zip(n, y):
        total += (_error_vec(ni, size, A, B, T, d) - yi) ** 2
    i = int(np.argmin(total))
    best, best_sse = (float(A[i]), float(B[i]), float(T[i])), float(total[i])
    lo = [1e-6 if a is None else a * (1 - 1e-9), -2.0, 0.1]
    hi = [10.0 if a is None else a * (1 + 1e-9) + 1e-12, -1e-6, 100.0]
    res = least_squares(
        lambda p: [error(ni, size, p[0], [p[1]], [p[2]], d, "plain") - yi for ni, yi in zip(n, y)], x0=np.clip(best, lo, hi), bounds=(lo, hi)
    )
    refined = (float(res.x[0]), float(res.x[1]), float(res.x[2]))
    if sse(refined) < best_sse:
        best, best_sse = refined, sse(refined)
    return {"a": float(best[0]), "b": float(best[1]), "tau": float(best[2]), "d": d, "sse": best_sse}


def mixture_error(
    n: float,
    shares,
    sizes,
    a: float | np.ndarray,
    bs,
    taus,
    d: float | np.ndarray,  # per pool or shared
    tau_convention: Literal["scaled", "plain"] = "scaled",
) -> float:
    """Predicted error after ``n`` samples of a *weighted* mixture: pool i supplies a share w_i of
    the stream and has S_i unique samples, so it enters its j-th repeat at n = j·S_i / w_i.

    Between consecutive repeat events the error follows the QQT power law with the mixture's
    current utility b(n) = Σ_i w_i · b_i · 0.5^(j_i(n) / τ_i); before the first repeat it is
    (a·n/1e5)^b(0) + d. This is the reference's formula written per stream position: for equal
    shares of equal-size pools the events fall at multiples of the union size and it equals
    :func:`error` exactly (tested). Our extension to unequal shares and sizes; under ``"scaled"``
    each τ_i is multiplied by the effective number of pools 1/Σw_i² (= p for p equal shares, the
    reference's factor).

    ``a`` and ``d`` may be per-pool arrays (laws fitted per pool on proxy-model loss,
    :func:`fit_pools_shared_d`): the mixture's scale term is then exp(Σ_i w_i b_i log(a_i n / 1e5)),
    which is (a n / 1e5)^(Σ w_i b_i) when every a_i is equal (the reference shares one a), and its
    irreducible term Σ_i w_i d_i (= d when d is shared, as fitted by tierlake probe)."""
    w = np.asarray(shares, float)
    live = w > 0
    w, sizes = w[live] / w[live].sum(), np.asarray(sizes, float)[live]
    bs, taus = np.asarray(bs, float)[live], np.asarray(taus, float)[live]
    if np.ndim(d):
        d = float(w @ np.asarray(d, float)[live])
    if np.ndim(a):  # per-pool scale: the power term is exp(Σ w_i b_i log(a_i n / 1e5))
        log_a = np.log(np.asarray(a, float)[live])

        def power(x):
            return float(np.exp(w @ (bs * (log_a + math.log(x / NORMALIZER)))))
    else:

        def power(x):
            return float((a * x / NORMALIZER) ** float(w @ bs))

    if tau_convention == "scaled":
        taus = taus / float((w * w).sum())
    # repeat events (stream position, pool) in order; a pool's j-th repeat at j·S_i/w_i
    events_n, events_pool = [], []
    for i in range(len(w)):
        k = int(math.floor(n * w[i] / sizes[i] + 1e-12))
        if k:
            events_n.append(np.arange(1, k + 1) * sizes[i] / w[i])
            events_pool.append(np.full(k, i))
    level = np.zeros(len(w))
    if not events_n:
        return power(n) + d
    ev_n, ev_pool = np.concatenate(events_n), np.concatenate(events_pool)
    order = np.argsort(ev_n, kind="stable")
    ev_n, ev_pool = ev_n[order], ev_pool[order]
    first = float(ev_n[0])
    y = power(first) + d
    position = first
    for at, pool in zip(ev_n, ev_pool):
        if at > position:
            y *= (at / position) ** float(w @ (bs * 0.5 ** (level / taus)))
            position = at
        level[pool] += 1
    if n > position:
        y *= (n / position) ** float(w @ (bs * 0.5 ** (level / taus)))
    return float(y)


def _law_points(unique, seen, a, b, tau, d):
    """Predicted loss at each (unique, seen) point for arrays of parameters (broadcast)."""
    out = []
    for s_i, n_i in zip(unique, seen):
        out.append(_error_vec(float(n_i), float(s_i), a, b, tau, d))
    return np.array(out)


def fit_pools_shared_d(points: dict[str, tuple], seed: int = 0, grid: int = 24) -> dict[str, dict]:
    """Fit every pool's (a, b, τ) with one irreducible loss d shared by all pools — the reference's
    structure (QQT shares d across pools, it is a property of the target and the model, not of a
    pool) — to probe points ``points[pool] = (unique, seen, loss)``.

    d is chosen on a grid over [0, lowest loss of any pool) by the summed SSE of the per-pool fits
    at that d (:func:`fit_pool_points` with d fixed); a pool that does not help the target then
    shows as b near 0 (its loss stays near 1 + d) instead of a floor of its own that would let an
    extrapolation run anywhere."""
    floor = min(float(np.min(v[2])) for v in points.values())
    best = None
    for d in np.linspace(0.0, floor * 0.995, grid):
        fits = {name: fit_pool_points(v[0], v[1], v[2], seed=seed, fixed_d=float(d)) for name, v in points.items()}
        total = sum(f["sse"] for f in fits.values())
        if best is None or total < best[0]:
            best = (total, fits)
    assert best is not None  # the grid has at least one point
    return best[1]


def fit_pool_points(unique, seen, loss, min_d: float = 0.0, seed: int = 0, fixed_d: float | None = None) -> dict:
    """Fit all four QQT parameters (a, b, τ, d) of one pool to probe points that each have their
    own pool size: a probe trained on the first ``unique`` tokens of the pool for ``seen`` tokens
    (``seen / unique`` passes) and measured ``loss`` on the targets.

    The reference fixes d and fits one pool size; proxy probes vary the unique size and the
    repetitions at once (a size axis and a repetition axis), and a loss has a floor of its own,
    so d is fitted too, bounded by [min_d, min(loss)). Start: a shuffled grid as the reference
    (a log-spaced, b in [-2, -0.005], τ in [0.25, 20], d on [min_d, min loss)); then bounded least
    squares from the best grid points, the lowest SSE wins."""
    from scipy.optimize import least_squares

    unique, seen, y = (np.asarray(v, float) for v in (unique, seen, loss))
    free = 4 if fixed_d is None else 3
    if len(y) < free:
        raise ValueError(f"{len(y)} probe points are too few to fit {free} parameters")
    top_d = float(y.min()) * 0.999
    a_grid = np.geomspace(1e-5, 1e2, 24)
    b_grid = -np.geomspace(0.005, 2.0, 24)
    t_grid = np.geomspace(0.25, 20, 10)
    d_grid = np.linspace(min_d, top_d, 12) if fixed_d is None else np.array([fixed_d])
    A, B, T, D = (g.ravel() for g in np.meshgrid(a_grid, b_grid, t_grid, d_grid, indexing="ij"))
    keep = np.random.default_rng(seed).permutation(len(A))[:100_000]
    A, B, T, D = A[keep], B[keep], T[keep], D[keep]
    sse_grid = ((_law_points(unique, seen, A, B, T, D) - y[:, None]) ** 2).sum(0)
    lo, hi = [math.log(1e-8), -5.0, math.log(0.05), min_d], [math.log(1e4), -1e-4, math.log(200.0), top_d]
    if fixed_d is not None:
        lo, hi = lo[:3], hi[:3]

    def residuals(p):
        d = p[3] if fixed_d is None else fixed_d
        return _law_points(unique, seen, math.exp(p[0]), p[1], math.exp(p[2]), d) - y

    best = None
    for i in np.argsort(sse_grid)[: 5 if fixed_d is None else 2]:
        x0 = np.clip([math.log(A[i]), B[i], math.log(T[i]), D[i]][: len(lo)], np.array(lo) + 1e-9, np.array(hi) - 1e-9)
        res = least_squares(residuals, x0=x0, bounds=(lo, hi))
        sse = float((res.fun**2).sum())
        if best is None or sse < best[0]:
            best = (sse, res.x)
    assert best is not None  # at least one start point
    sse, p = best
    return {
        "a": math.exp(p[0]),
        "b": float(p[1]),
        "tau": math.exp(p[2]),
        "d": float(p[3]) if fixed_d is None else float(fixed_d),
        "sse": sse,
        "points": len(y),
    }


def predict_points(law: dict, unique, seen) -> np.ndarray:
    """A fitted law's loss at (unique, seen) points."""
    return _law_points(np.asarray(unique, float), np.asarray(seen, float), law["a"], law["b"], law["tau"], law["d"])
