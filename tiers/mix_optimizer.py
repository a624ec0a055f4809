"""The joint training-mix optimizer: for a token budget T, the pool shares w that maximize

    value(w) = [1 − y_QQT(T; w)]  −  λ · OT(w) / OT(uniform)

subject to Σ w = 1 and w_i · T ≤ max_epochs · S_i (no pool repeated more than ``max_epochs``
times). The first term is the QQT-predicted accuracy of the weighted mixture
(:func:`tiers.qqt.mixture_error`: quality through each pool's utility b_i, quantity through the
repetition decay τ_i — Goyal et al., CVPR 2024); the second is projektor's target alignment, the
OT distance of the mixture's embedding sample to the target sample (:mod:`tiers.ot_mixture`,
Kang et al., NeurIPS 2023), made unit-free by the uniform mix's distance and weighted by λ
(``alignment_weight``: 0 = QQT alone; λ = 0.05 means closing the uniform mix's whole distance to
the target is worth 5 points of predicted accuracy).

Search: projected gradient ascent on the capped simplex {0 ≤ w ≤ u, Σ w = 1}
(:func:`tiers.ot_mixture.project_capped_simplex`). The OT gradient is the dual-potential one; the
QQT term is piecewise smooth in w (repeat events move with w), so its gradient is a central
finite difference, which is cheap (a closed form per evaluation). Starts, all deterministic:
the uniform mix, the size-proportional mix and the QQT frontier's best top-k union; the best
iterate of all wins. Same inputs and seed (the seed only drives the pool quantization) → same mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tiers.ot_mixture import project_capped_simplex
from tiers.qqt import mixture_error


@dataclass
class PoolSpec:
    name: str
    size: float  # unique tokens (or samples) in the pool
    b: float  # QQT utility (negative; more negative = more useful per sample)
    tau: float  # repetitions for the utility to halve
    documents: int = 0
    meta: dict = field(default_factory=dict)


@dataclass
class MixResult:
    shares: np.ndarray
    tokens: np.ndarray
    epochs: np.ndarray
    predicted_accuracy: float | None  # QQT accuracy under priors (relative); None with fitted laws
    alignment_ot: float | None
    uniform_ot: float | None
    value: float
    history: list
    predicted_loss: float | None = None  # target loss in bits per byte, with fitted laws

    def rows(self, pools: list[PoolSpec]) -> list[dict]:
        return [
            {"pool": p.name, "share": float(s), "tokens": float(t), "epochs": float(e), "pool_tokens": p.size, "b": p.b, "tau": p.tau}
            for p, s, t, e in zip(pools, self.shares, self.tokens, self.epochs)
        ]


def repetition_caps(pools: list[PoolSpec], budget: float, max_epochs: float) -> np.ndarray:
    caps = np.minimum(1.0, max_epochs * np.array([p.size for p in pools], float) / budget)
    if caps.sum() < 1:
        total = sum(p.size for p in pools)
        raise ValueError(
            f"budget {budget:.4g} exceeds what the pools hold at {max_epochs} epochs ({max_epochs * total:.4g}); raise max_epochs or lower the budget"
        )
    return caps


def optimize_mix(
    pools: list[PoolSpec],
    budget: float,
    a: float,
    d: float,
    distance=None,
    alignment_weight: float = 0.0,
    max_epochs: float = 4.0,
    steps: int = 100,
    lr: float = 0.1,
    decay: float = 0.97,
    tau_convention: str = "scaled",
    laws=None,
    law_budget: float | None = None,
    law_sizes: np.ndarray | None = None,
) -> MixResult:
    """``distance(w)`` -> {"ot", "grad"} (a :class:`tiers.ot_mixture.MixtureOT`), required when
    ``alignment_weight`` > 0.

    ``laws`` (a :class:`tiers.probe.FittedLaws` over these pools, in this order) replaces the
    objective by the fitted one: minimize the predicted target loss at ``law_budget`` with pool
    sizes ``law_sizes`` (both in the laws' unit, bytes); ``a``, ``d``, ``distance`` and
    ``alignment_weight`` are then unused (the fit sets the OT term's weight)."""
    if laws is not None:
        assert law_budget is not None and law_sizes is not None, "fitted laws need law_budget and law_sizes"
        return _optimize_fitted(pools, budget, laws, float(law_budget), np.asarray(law_sizes, float), max_epochs, steps, lr, decay)
    if alignment_weight < 0:
        raise ValueError("alignment_weight must be >= 0")
    if alignment_weight > 0 and distance is None:
        raise ValueError("alignment_weight > 0 needs a target distance (pool and target embeddings)")
    m = len(pools)
    sizes = np.array([p.size for p in pools], float)
    bs = np.array([p.b for p in pools], float)
    taus = np.array([p.tau for p in pools], float)
    caps = repetition_caps(pools, budget, max_epochs)
    uniform = project_capped_simplex(np.full(m, 1.0 / m), caps)
    ot_ref = float(distance(uniform)["ot"]) if distance is not None else None
    scale = ot_ref if ot_ref else 1.0

    def accuracy(w):
        return 1.0 - mixture_error(budget, w, sizes, a, bs, taus, d, tau_convention)

    def value_and_grad(w):
        acc = accuracy(w)
        grad = np.zeros(m)
        h = 1e-4
        for i in range(m):
            e = np.zeros(m)
            e[i] = h
            grad[i] = (accuracy(np.maximum(w + e, 0)) - accuracy(np.maximum(w - e, 0))) / (2 * h)
        ot_value = None
        value = acc
        if alignment_weight > 0:
            res = distance(w)
            ot_value = float(res["ot"])
            value -= alignment_weight * ot_value / scale
            grad -= alignment_weight * np.asarray(res["grad"]) / scale
        return value, grad, (acc, ot_value)

    # starts: uniform, size-proportional, and the best top-k union of pools in quality order
    order = np.argsort(bs)  # most negative b first = highest quality
    best_k, best_acc = 1, -np.inf
    for k in range(1, m + 1):
        w = np.zeros(m)
        w[order[:k]] = 1.0 / k
        w = project_capped_simplex(w, caps)
        if accuracy(w) > best_acc:
            best_k, best_acc = k, accuracy(w)
    topk = np.zeros(m)
    topk[order[:best_k]] = 1.0 / best_k
    starts = [uniform, project_capped_simplex(sizes / sizes.sum(), caps), project_capped_simplex(topk, caps)]

    (value, w, (acc, ot_value)), history = _ascend(starts, value_and_grad, caps, steps, lr, decay)
    tokens = w * budget
    return MixResult(
        shares=w, tokens=tokens, epochs=tokens / sizes, predicted_accuracy=acc, alignment_ot=ot_value, uniform_ot=ot_ref, value=value, history=history
    )


def _ascend(starts: list[np.ndarray], value_and_grad, caps: np.ndarray, steps: int, lr: float, decay: float):
    """Projected gradient ascent on the capped simplex from each start; the best iterate wins.
    ``value_and_grad(w)`` -> (value, gradient, info); returns ((value, w, info), history).

    The starts' paths are independent, so they run on threads (the exact OT solve, most of a
    step, releases the GIL); the best iterate and the history are then taken in start order,
    exactly as one start after the other would give them."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def path(start):
        w, visited = start, []
        for t in range(steps):
            value, grad, info = value_and_grad(w)
            visited.append((value, w.copy(), info))
            g = grad - grad.mean()
            norm = np.linalg.norm(g)
            if norm < 1e-12:
                break
            w_next = project_capped_simplex(w + lr * decay**t * g / norm, caps)
            if np.abs(w_next - w).max() < 1e-9:
                break
            w = w_next
        return visited

    workers = min(len(starts), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="tierlake-mix") as pool:
            paths = list(pool.map(path, starts))
    else:
        paths = [path(start) for start in starts]
    best, history = None, []
    for visited in paths:
        for value, w, info in visited:
            history.append(value)
            if best is None or value > best[0] + 1e-12:
                best = (value, w, info)
    return best, history


def _optimize_fitted(
    pools: list[PoolSpec], budget: float, laws, law_budget: float, law_sizes: np.ndarray, max_epochs: float, steps: int, lr: float, decay: float
) -> MixResult:
    """The mix that minimizes the fitted laws' predicted target loss (:class:`tiers.probe.FittedLaws`)."""
    m = len(pools)
    caps = repetition_caps(pools, budget, max_epochs)
    trusted = np.minimum(caps, laws.trust_caps())
    if trusted.sum() >= 1:  # stay where the mixture predictor was fitted when the budget allows it
        caps = trusted

    def qqt(w):
        return laws.qqt_loss(w, law_budget, law_sizes)

    def value_and_grad(w):
        corr, corr_grad = laws.correction(w, law_sizes)
        grad = -corr_grad
        h = 1e-4
        for i in range(m):
            e = np.zeros(m)
            e[i] = h
            grad[i] -= (qqt(np.maximum(w + e, 0)) - qqt(np.maximum(w - e, 0))) / (2 * h)
        return -(qqt(w) + corr), grad, None

    # starts: uniform, size-proportional, every single pool (capped), the best two by predicted loss alone
    sizes = np.array([p.size for p in pools], float)
    starts = [project_capped_simplex(np.full(m, 1.0 / m), caps), project_capped_simplex(sizes / sizes.sum(), caps)]
    for i in range(m):
        starts.append(project_capped_simplex(np.eye(m)[i], caps))
    (value, w, _), history = _ascend(starts, value_and_grad, caps, steps, lr, decay)
    tokens = w * budget
    return MixResult(
        shares=w,
        tokens=tokens,
        epochs=tokens / sizes,
        predicted_accuracy=None,
        alignment_ot=None,
        uniform_ot=None,
        value=value,
        history=history,
        predicted_loss=-value,
    )
