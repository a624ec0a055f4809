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


def frontier(pools: list[Pool], a: float, d: float, budgets: list[float],
             tau_convention: Literal["scaled", "plain"] = "scaled") -> list[dict]:
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
        out.append({"budget": n, "best_k": int(best), "pools": [p.name for p in pools[:int(best)]], "accuracy": acc})
    return out


def _error_vec(n: float, size: float, a: np.ndarray, b: np.ndarray, tau: np.ndarray, d: float) -> np.ndarray:
    """:func:`error` of one pool for arrays of (a, b, τ) at once (the grid search's inner loop)."""
    k = int(math.floor(n / size))
    y = (a * min(size, n) / NORMALIZER) ** b + d
    for j in range(1, k + 1):
        y = y * (min((j + 1) * size, n) / (j * size)) ** (b * 0.5 ** (j / tau))
    return y


def fit_pool(samples_seen, errors, size: float, d: float = 0.1, a: float | None = None, grid: int = 60,
             seed: int = 0) -> dict:
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
    res = least_squares(lambda p: [error(ni, size, p[0], [p[1]], [p[2]], d, "plain") - yi for ni, yi in zip(n, y)],
                        x0=np.clip(best, lo, hi), bounds=(lo, hi))
    refined = tuple(float(v) for v in res.x)
    if sse(refined) < best_sse:
        best, best_sse = refined, sse(refined)
    return {"a": float(best[0]), "b": float(best[1]), "tau": float(best[2]), "d": d, "sse": best_sse}


def mixture_error(n: float, shares, sizes, a: float, bs, taus, d: float,
                  tau_convention: Literal["scaled", "plain"] = "scaled") -> float:
    """Predicted error after ``n`` samples of a *weighted* mixture: pool i supplies a share w_i of
    the stream and has S_i unique samples, so it enters its j-th repeat at n = j·S_i / w_i.

    Between consecutive repeat events the error follows the QQT power law with the mixture's
    current utility b(n) = Σ_i w_i · b_i · 0.5^(j_i(n) / τ_i); before the first repeat it is
    (a·n/1e5)^b(0) + d. This is the reference's formula written per stream position: for equal
    shares of equal-size pools the events fall at multiples of the union size and it equals
    :func:`error` exactly (tested). Our extension to unequal shares and sizes; under ``"scaled"``
    each τ_i is multiplied by the effective number of pools 1/Σw_i² (= p for p equal shares, the
    reference's factor)."""
    w = np.asarray(shares, float)
    live = w > 0
    w, sizes = w[live] / w[live].sum(), np.asarray(sizes, float)[live]
    bs, taus = np.asarray(bs, float)[live], np.asarray(taus, float)[live]
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
        return float((a * n / NORMALIZER) ** float(w @ bs) + d)
    ev_n, ev_pool = np.concatenate(events_n), np.concatenate(events_pool)
    order = np.argsort(ev_n, kind="stable")
    ev_n, ev_pool = ev_n[order], ev_pool[order]
    first = float(ev_n[0])
    y = (a * first / NORMALIZER) ** float(w @ bs) + d
    position = first
    for at, pool in zip(ev_n, ev_pool):
        if at > position:
            y *= (at / position) ** float(w @ (bs * 0.5 ** (level / taus)))
            position = at
        level[pool] += 1
    if n > position:
        y *= (n / position) ** float(w @ (bs * 0.5 ** (level / taus)))
    return float(y)
