"""projektor's performance predictor and mixture choice (Kang, Just, Sahu, Jia, "Performance
Scaling via Optimal Transport: Enabling Data Selection from Partially Revealed Sources", NeurIPS
2023, arXiv 2307.02460; official notebook ``reds-lab/projektor`` @6da679f and the co-author
refactor ``anitksahu/projektor_multimodal`` — ``../shared/reference/selection.md`` §1).

Stage 1 — at a revealed size N, performance is linear in the OT distance to the target and
"pseudo-quadratic" in the mixture p (m sources, p_m = 1 − Σ others):

    L̂(p) = Σ_i (b2_i p_i² + b1_i p_i + b0) · OT(p) + Σ_i c1_i p_i + c0

fitted by ordinary least squares. Three designs (``ProjektorPredictor(form=...)``):

- ``"code"``: the code's features ``[OT, p_1..p_{m−1}, p_i·OT, p_i²·OT]`` (the notebook's 7
  columns for m = 3; the paper's c2 · p² columns are absent in the code);
- ``"paper"``: the paper's equation, the code's columns plus ``p_i²``;
- ``"log_counts"`` (the default; a departure): the code's columns plus ``log(p_i + 1/N)`` for
  every source i — the log of the number of training samples source i contributes at revealed
  size N, plus one. Why: when sources hold different parts of the target (disjoint class blocks),
  accuracy collapses as a source's share goes to zero and is nearly flat inside; the sample count
  of a source enters learning curves logarithmically, and the quadratic forms cannot bend that
  way. On the digits benchmark (3 data seeds × N ∈ {200, 400} × probed range inside or on the
  whole simplex, ``docs/selection.md``) held-out R² rises from 0.17–0.95 (code) and 0.18–0.94
  (paper) to 0.74–0.97.
- ``"interaction"`` and ``"linear"`` (departures, nested in the code's form with b2 = 0, and
  b2 = b1 = 0): [OT, p, p·OT] and [OT, p]. Why: the code's form has 3(m−1)+1 coefficients, 31 for
  11 pools, against the few dozen mixtures a language-model probe grid affords; the probe fit
  (``tiers.probe.fit_projektor``) chooses among all forms by cross-validation on its fitting
  mixtures, so a smaller form is used only where it predicts better there.

Stage 2 — from fits at N0 and N1, the parameter-free log projection to N:

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

FORMS = ("code", "paper", "log_counts", "interaction", "linear")


def features(ot: np.ndarray, p: np.ndarray, form: str = "code", n: float | None = None) -> np.ndarray:
    """The regression design for ``form`` (module docstring): [OT, p_1..p_{m−1},
    p_1·OT..p_{m−1}·OT, p_1²·OT..p_{m−1}²·OT] ("code"), then p_1²..p_{m−1}² ("paper") or
    log(p_1 + 1/n)..log(p_m + 1/n) ("log_counts", n = the revealed training size); the nested
    designs "interaction" [OT, p, p·OT] and "linear" [OT, p] drop the higher terms."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    ot = np.asarray(ot, float).reshape(-1, 1)
    p = np.atleast_2d(np.asarray(p, float))
    q = p[:, :-1]
    if form == "linear":
        return np.hstack([ot, q])
    if form == "interaction":
        return np.hstack([ot, q, q * ot])
    cols = [ot, q, q * ot, q * q * ot]
    if form == "paper":
        cols.append(q * q)
    elif form == "log_counts":
        if not n or n <= 0:
            raise ValueError("form 'log_counts' needs the revealed training size n > 0")
        cols.append(np.log(np.clip(p, 0.0, None) + 1.0 / n))
    return np.hstack(cols)


def log_projection(value_n0, value_n1, n0: float, n1: float, n: float):
    """Stage 2: L̂(N) from L̂(N0), L̂(N1) (exact when L is affine in log N)."""
    if not (n0 > 0 and n1 > 0 and n1 != n0):
        raise ValueError("need two distinct positive revealed sizes N0, N1")
    w1 = math.log(n / n0) / math.log(n1 / n0)
    return w1 * np.asarray(value_n1, float) + (1 - w1) * np.asarray(value_n0, float)


class ProjektorPredictor:
    """Stage-1 OLS model at one revealed size (scikit-learn ``LinearRegression``, as the code).

    ``form``: "log_counts" (default), "code" or "paper" — see the module docstring. ``fit``'s
    ``n`` (the revealed training size the probes were trained on) is required for "log_counts".
    ``ridge``: ridge regression on standardized columns, the penalty by leave-one-out CV (a
    departure for many sources: the code form has 3(m−1)+1 coefficients, 25 for 9 pools, and OLS
    overfits the few dozen mixtures a probe grid affords; the model stays linear in the columns).
    """

    def __init__(self, form: str = "log_counts", ridge: bool = False):
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form, self.ridge = form, ridge

    def fit(self, ot: np.ndarray, p: np.ndarray, performance: np.ndarray, n: float | None = None) -> "ProjektorPredictor":
        from sklearn.linear_model import LinearRegression

        p = np.atleast_2d(np.asarray(p, float))
        if len(p) != len(ot) or len(p) != len(performance):
            raise ValueError("ot, p and performance need one row per probe")
        self.m_, self.n_ = p.shape[1], n
        design = features(ot, p, self.form, n)
        y = np.asarray(performance, float)
        if self.ridge:
            # ridge on standardized columns, the penalty chosen by efficient leave-one-out CV, then mapped back
            # to the raw columns: still one linear model, so predict() and partials() are unchanged
            from sklearn.linear_model import RidgeCV

            mean, std = design.mean(0), design.std(0)
            std[std == 0] = 1.0
            model = RidgeCV(alphas=np.logspace(-6, 3, 40)).fit((design - mean) / std, y)
            self.coef_ = np.asarray(model.coef_, float) / std
            self.intercept_ = float(model.intercept_ - self.coef_ @ mean)
            self.alpha_ = float(model.alpha_)
            return self
        if len(p) <= design.shape[1] + 1:
            raise ValueError(f"{len(p)} probes are too few for {design.shape[1] + 1} coefficients (form {self.form!r})")
        model = LinearRegression().fit(design, y)
        self.coef_, self.intercept_ = np.asarray(model.coef_, float), float(model.intercept_)
        return self

    def predict(self, ot, p) -> np.ndarray:
        return features(ot, p, self.form, self.n_) @ self.coef_ + self.intercept_

    def to_dict(self) -> dict:
        """The fitted model as plain JSON (no pickle): form, m, n, coefficients, intercept."""
        return {
            "form": self.form,
            "ridge": self.ridge,
            "alpha": getattr(self, "alpha_", None),
            "m": self.m_,
            "n": self.n_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ProjektorPredictor":
        model = cls(d["form"], bool(d.get("ridge", False)))
        model.m_, model.n_ = int(d["m"]), d["n"]
        model.coef_, model.intercept_ = np.asarray(d["coef"], float), float(d["intercept"])
        return model

    def partials(self, ot: float, p: np.ndarray) -> tuple[float, np.ndarray]:
        """(∂L̂/∂OT, ∂L̂/∂p at fixed OT) at one point, L̂ read as a function on R^m: the code's and
        the paper's columns use p_1..p_{m−1} only (p_m's partial is 0 there); the log-count
        columns use every p_i."""
        k = self.m_ - 1
        coef = self.coef_
        zeros = np.zeros(k)
        c_ot, c_p = coef[0], coef[1 : 1 + k]
        c_pot = coef[1 + k : 1 + 2 * k] if self.form != "linear" else zeros
        c_p2ot = coef[1 + 2 * k : 1 + 3 * k] if self.form not in ("linear", "interaction") else zeros
        extra = coef[1 + 3 * k :]
        p = np.asarray(p, float)
        q = p[:k]
        d_ot = c_ot + c_pot @ q + c_p2ot @ (q * q)
        d_p = np.zeros(self.m_)
        d_p[:k] = c_p + c_pot * ot + 2 * c_p2ot * q * ot
        if self.form == "paper":
            d_p[:k] += 2 * extra * q
        elif self.form == "log_counts":
            assert self.n_ is not None  # fit requires n for this form
            d_p += extra / (np.clip(p, 0.0, None) + 1.0 / self.n_)
        return float(d_ot), d_p


def project_floor_simplex(v: np.ndarray, floor: float) -> np.ndarray:
    """Euclidean projection onto {p >= floor, Σ p = 1} (a shifted, scaled simplex)."""
    m = len(v)
    if floor * m > 1:
        raise ValueError(f"a floor of {floor} on {m} sources exceeds the simplex")
    return floor + (1 - m * floor) * project_simplex((np.asarray(v, float) - floor) / (1 - m * floor))


def choose_mixture(
    predictors: dict[float, ProjektorPredictor],
    distance,
    n: float,
    starts: list[np.ndarray],
    steps: int = 100,
    lr: float = 0.05,
    decay: float = 0.97,
    floor: float = 0.0,
) -> dict:
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
            p = project_floor_simplex(p + lr * decay**t * g / norm, floor)
    assert best is not None, "steps must be at least 1"
    return best
