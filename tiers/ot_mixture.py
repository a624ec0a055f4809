"""Optimal-transport distance between a mixture of data pools and a target sample, its gradient
with respect to the mixture weights, and projected-gradient mixture search (projektor: Kang,
Just, Sahu, Jia, NeurIPS 2023, arXiv 2307.02460; LAVA: Just, Kang et al., ICLR 2023).

The mixture with weights p on the simplex is one weighted empirical distribution: pool i's n_i
points each carry mass p_i / n_i; the target's m points carry 1/m. With ground cost M (squared
Euclidean / 2 between embeddings, plus an optional label cost W[y, y'] as in OTDD), the distance
is solved exactly (POT ``ot.emd``, network simplex) for small problems and by entropic OT
(``ot.sinkhorn``, log domain) for large ones. Both give dual potentials f on the mixture points;
OT is the dual objective Σ a_x f_x + Σ b_y g_y, so ∂OT/∂a_x = f_x and

    ∂OT/∂p_i = (1/n_i) Σ_{x in pool i} f_x                         (exact, up to one constant)

The constant is irrelevant on the simplex (directions with Σ d_i = 0, and the Euclidean projection
is invariant to adding c·1). ``calibrated=True`` returns projektor's form instead,
(1/n_i)(Σ_{x∈i} f_x − n_i/(N−n_i) Σ_{x∉i} f_x), which is LAVA's calibration of the same duals
(it differs from the exact directional derivative by a term; tests check the exact one against
finite differences). Departure from the projektor notebook: a Euclidean projection onto the
simplex (Duchi et al. 2008) after each step — the notebook has none, its refactor does.
"""
from __future__ import annotations

import numpy as np


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {p >= 0, Σ p = 1} (Duchi, Shalev-Shwartz, Singer, Chandra 2008)."""
    v = np.asarray(v, float)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    idx = np.arange(1, len(v) + 1)
    rho = np.nonzero(u - css / idx > 0)[0][-1]
    theta = css[rho] / (rho + 1)
    return np.maximum(v - theta, 0)


def cost_matrix(x: np.ndarray, y: np.ndarray, x_labels=None, y_labels=None, label_cost: np.ndarray | None = None,
                label_weight: float = 1.0) -> np.ndarray:
    """C-order float64 cost: ||x − y||² / 2 (+ label_weight · W[label_x, label_y])."""
    m = 0.5 * ((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T)
    np.maximum(m, 0, out=m)
    if label_cost is not None:
        m = m + label_weight * label_cost[np.asarray(x_labels)[:, None], np.asarray(y_labels)[None, :]]
    return np.ascontiguousarray(m, dtype=np.float64)


def mixture_ot(pools: list[np.ndarray], p: np.ndarray, target: np.ndarray, cost: np.ndarray | None = None,
               method: str = "auto", reg: float = 0.05, exact_max: int = 4_000_000, calibrated: bool = False) -> dict:
    """OT(mixture(p), target) and its gradient in p. ``cost``: precomputed (Σn_i × m) cost matrix."""
    import ot

    sizes = np.array([len(x) for x in pools])
    owner = np.repeat(np.arange(len(pools)), sizes)
    a = (np.asarray(p, float) / sizes)[owner]
    b = np.full(len(target), 1.0 / len(target))
    m = cost if cost is not None else cost_matrix(np.vstack(pools), target)
    use_exact = method == "exact" or (method == "auto" and m.size <= exact_max)
    live = a > 0  # pools at weight 0 still need potentials: solve on the support, extend by the c-transform
    if use_exact:
        plan, log = ot.emd(a[live], b, m[live], numItermax=10_000_000, log=True)
        f_live, g = log["u"], log["v"]
        value = float(log["cost"])
        reg_value = value
    else:
        scale = float(m.max()) or 1.0
        plan, log = ot.sinkhorn(a[live], b, m[live] / scale, reg, method="sinkhorn_log", numItermax=20000,
                                stopThr=1e-12, log=True)
        f_live, g = reg * log["log_u"] * scale, reg * log["log_v"] * scale
        value = float((plan * m[live]).sum())
        # the entropic objective whose gradient in a is f exactly: <a,f> + <b,g> - reg*scale
        reg_value = float(a[live] @ f_live + b @ g - reg * scale)
    f = np.empty(len(a))
    f[live] = f_live
    if (~live).any():  # c-transform: the potential a zero-mass point would get
        f[~live] = (m[~live] - g[None, :]).min(axis=1)
    per_pool = np.bincount(owner, weights=f, minlength=len(pools)) / sizes
    if calibrated:
        total = f.sum()
        n = sizes.sum()
        grad = np.array([(f[owner == i].sum() - sizes[i] / (n - sizes[i]) * (total - f[owner == i].sum())) / sizes[i]
                         for i in range(len(pools))])
    else:
        grad = per_pool
    # "ot": transport cost of the plan; "objective": the quantity "grad" differentiates (equal for exact OT)
    return {"ot": value, "objective": reg_value, "grad": grad, "exact": use_exact, "potentials": f}


def minimize_ot(pools, target, p0=None, steps: int = 100, lr: float = 1.0, decay: float = 0.97, method: str = "auto",
                reg: float = 0.05, seed: int = 0) -> dict:
    """Projected gradient descent of OT(mixture(p), target) on the simplex; the best iterate wins."""
    k = len(pools)
    p = project_simplex(np.full(k, 1.0 / k) if p0 is None else np.asarray(p0, float))
    m = cost_matrix(np.vstack(pools), target)
    history = []
    best = None
    for t in range(steps):
        res = mixture_ot(pools, p, target, cost=m, method=method, reg=reg)
        history.append(res["objective"])
        if best is None or res["objective"] < best[0]:
            best = (res["objective"], p.copy())
        g = res["grad"] - res["grad"].mean()
        norm = np.linalg.norm(g)
        if norm == 0:
            break
        p = project_simplex(p - lr * decay ** t * g / norm * (1.0 / np.sqrt(k)))
    return {"p": best[1], "ot": best[0], "history": history}
