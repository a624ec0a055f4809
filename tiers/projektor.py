"""projektor's performance predictor and mixture choice (Kang, Just, Sahu, Jia, "Performance
Scaling via Optimal Transport: Enabling Data Selection from Partially Revealed Sources", NeurIPS
2023, arXiv 2307.02460; official notebook ``reds-lab/projektor`` @6da679f and the co-author
refactor ``anitksahu/projektor_multimodal`` — ``../shared/reference/selection.md`` §1).

Stage 1 — at a revealed size N, performance is linear in the OT distance to the target and
"pseudo-quadratic" in the mixture p (m sources, p_m = 1 − Σ others):

    L̂(p) = Σ_i (b2_i p_i² + b1_i p_i + b0) · OT(p) + Σ_i c1_i p_i + c0

fitted by ordinary least squares on the code's features ``[OT, p_1..p_{m−1}, p_i·OT, p_i²·OT]``
(the notebook's 7 columns for m = 3; the c2 · p² columns of the paper are absent in the code and
here). Stage 2 — from fits at N0 and N1, the parameter-free log projection to N:

    L̂(N) = [log(N/N0) · L̂(N1) − log(N/N1) · L̂(N0)] / log(N1/N0)

Mixture choice: projected gradient ascent of L̂(N) on the simplex with
∂L̂/∂p = ∂L̂/∂OT · ∂OT/∂p + ∂L̂/∂p|_OT, the OT gradient from the dual potentials
(:mod:`tiers.ot_mixture`). Departures, both from the notebook's bugs as the reference records
them: the combined (N0, N1) gradient is used (the notebook applies the N0 one), and every step is
followed by a Euclidean projection onto the simplex (the notebook has none). The search starts
from every vertex, the uniform mix and the best probe, so it is deterministic.
"""
from __future__ import annotations

import math

import numpy as np

from tiers.ot_mixture import project_simplex


def features(ot: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The regression design: [OT, p_1..p_{m−1}, p_1·OT..p_{m−1}·OT, p_1²·OT..p_{m−1}²·OT]."""
    ot = np.asarray(ot, float).reshape(-1, 1)
    q = np.atleast_2d(np.asarray(p, float))[:, :-1]
    return np.hstack([ot, q, q * ot, q * q * ot])


def log_projection(value_n0, value_n1, n0: float, n1: float, n: float):
    """Stage 2: L̂(N) from L̂(N0), L̂(N1) (exact when L is affine in log N)."""
    if not (n0 > 0 and n1 > 0 and n1 != n0):
        raise ValueError("need two distinct positive revealed sizes N0, N1")
    w1 = math.log(n / n0) / math.log(n1 / n0)
    return w1 * np.asarray(value_n1, float) + (1 - w1) * np.asarray(value_n0, float)


class ProjektorPredictor:
    """Stage-1 OLS model at one revealed size (scikit-learn ``LinearRegression``, as the code)."""

    def fit(self, ot: np.ndarray, p: np.ndarray, performance: np.ndarray) -> "ProjektorPredictor":
        from sklearn.linear_model import LinearRegression

        p = np.atleast_2d(np.asarray(p, float))
        if len(p) != len(ot) or len(p) != len(performance):
            raise ValueError("ot, p and performance need one row per probe")
        if len(p) < 3 * p.shape[1]:
            raise ValueError(f"{len(p)} probes are too few for {3 * (p.shape[1] - 1) + 2} coefficients")
        self.m_ = p.shape[1]
        self.model_ = LinearRegression().fit(features(ot, p), np.asarray(performance, float))
        return self

    def predict(self, ot, p) -> np.ndarray:
        return self.model_.predict(features(ot, p))

    def partials(self, ot: float, p: np.ndarray) -> tuple[float, np.ndarray]:
        """(∂L̂/∂OT, ∂L̂/∂p at fixed OT) at one point; p's last coordinate is 1 − Σ others, so its
        partial is 0 and the free coordinates carry the rest."""
        k = self.m_ - 1
        coef = self.model_.coef_
        c_ot, c_p, c_pot, c_p2ot = coef[0], coef[1:1 + k], coef[1 + k:1 + 2 * k], coef[1 + 2 * k:1 + 3 * k]
        q = np.asarray(p, float)[:k]
        d_ot = c_ot + c_pot @ q + c_p2ot @ (q * q)
        d_p = np.zeros(self.m_)
        d_p[:k] = c_p + c_pot * ot + 2 * c_p2ot * q * ot
        return float(d_ot), d_p


def project_floor_simplex(v: np.ndarray, floor: float) -> np.ndarray:
    """Euclidean projection onto {p >= floor, Σ p = 1} (a shifted, scaled simplex)."""
    m = len(v)
    if floor * m > 1:
        raise ValueError(f"a floor of {floor} on {m} sources exceeds the simplex")
    return floor + (1 - m * floor) * project_simplex((np.asarray(v, float) - floor) / (1 - m * floor))


def choose_mixture(predictors: dict[float, ProjektorPredictor], distance, n: float, starts: list[np.ndarray],
                   steps: int = 100, lr: float = 0.05, decay: float = 0.97, floor: float = 0.0) -> dict:
    """Maximize L̂(N) over the simplex. ``predictors``: {N0: model, N1: model} (or one model for N
    itself); ``distance(p)`` -> dict with ``ot`` and ``grad`` (:class:`tiers.ot_mixture.MixtureOT`
    at each revealed size is the same target, so one distance serves both). Returns the best
    iterate over all starts. ``floor``: keep every share >= floor — the search stays inside the
    probed range, where the fitted form is valid (it does not extrapolate to the simplex's edges)."""
    sizes = sorted(predictors)

    def value_and_grad(p):
        res = distance(p)
        vals, grads = [], []
        for n_i in sizes:
            model = predictors[n_i]
            d_ot, d_p = model.partials(res["ot"], p)
            vals.append(float(model.predict([res["ot"]], [p])[0]))
            # L̂ as a function on R^m (p_m enters only through OT): its gradient's component along the
            # simplex (after removing the mean) is the directional derivative the ascent needs
            grads.append(d_ot * res["grad"] + d_p)
        if len(sizes) == 1:
            return vals[0], grads[0], res["ot"]
        n0, n1 = sizes
        return float(log_projection(vals[0], vals[1], n0, n1, n)), log_projection(grads[0], grads[1], n0, n1, n), res["ot"]

    best = None
    for start in starts:
        p = project_floor_simplex(np.asarray(start, float), floor)
        for t in range(steps):
            v, g, ot_value = value_and_grad(p)
            if best is None or v > best["predicted"] + 1e-12:
                best = {"p": p.copy(), "predicted": v, "ot": ot_value}
            g = g - g.mean()
            norm = np.linalg.norm(g)
            if norm < 1e-12:
                break
            p = project_floor_simplex(p + lr * decay ** t * g / norm, floor)
    return best
