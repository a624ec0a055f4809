"""projektor on real data: scikit-learn's bundled digits split into three sources with skewed class
profiles (as projektor's CIFAR-10 ``prep_train_data.py``), logistic regression as the model.

    .venv/bin/python bench/projektor_digits.py [--n 400] [--reps 8] [--compare-forms] [--write]

1. probes: the mixtures of the 0.1 grid with every share >= 0.1 (the probed range), each trained ``reps`` times on N samples; the OT of
   each mixture to the validation sample (features + OTDD label cost, exact);
2. stage 1: fit L̂ = f(OT, p) on the probes, predict 40 held-out random mixtures (inside the
   simplex) -> R², MAE;
3. choice: the predicted-best mixture (projected gradient ascent) against the best of the dense
   0.05 grid (231 mixtures), the uniform mix and the best single source — all by measured accuracy;
4. stage 2: probes at N0 = N/2 and N1 = 3N/4, log-projected to N -> MAE against the measured.

Stage 1 is measured for every predictor form (``tiers.projektor.FORMS``); the choice and stage 2
use the default form. ``--compare-forms`` adds stage-1 R² of every form over 3 data seeds × N in
{200, 400} × probed range (inside, or the whole simplex).

Common random numbers: rep r of every mixture uses the same seed, so mixture comparisons are not
swamped by sampling noise. Writes docs/benchmarks.md's "projektor" section with ``--write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tiers.ot_mixture import MixtureOT, label_cost  # noqa: E402
from tiers.projektor import FORMS, ProjektorPredictor, choose_mixture, log_projection, project_floor_simplex  # noqa: E402

# source profiles (fraction of each class), after projektor's CIFAR-10 example
PROFILES = np.array(
    [
        [0.2425] * 4 + [0.005] * 6,
        [0.0057] * 4 + [0.32] * 3 + [0.0057] * 3,
        [0.0014] * 7 + [0.33] * 3,
    ]
)
PROFILES = PROFILES / PROFILES.sum(1, keepdims=True)


class DigitsSources:
    """Train / validation / test split of digits; sources sample training points by class profile."""

    def __init__(self, seed: int = 0, pool_per_source: int = 300):
        from sklearn.datasets import load_digits
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        x, y = x[order], y[order]
        self.test = slice(0, 600)
        self.val = slice(600, 900)
        self.train = slice(900, None)
        scaler = StandardScaler().fit(x[self.train])
        self.x = scaler.transform(x)
        self.y = y
        self.by_class = [np.flatnonzero(y[self.train] == c) + 900 for c in range(10)]
        self.pca = PCA(20, random_state=seed).fit(self.x[self.train])
        self.z = self.pca.transform(self.x)
        # the revealed sample of each source (what OT sees), and the target
        self.pool_points, self.pool_labels = [], []
        for s in range(3):
            idx = self.sample_source(s, pool_per_source, np.random.default_rng(seed + 100 + s))
            self.pool_points.append(self.z[idx])
            self.pool_labels.append(self.y[idx])
        val_idx = np.arange(600, 900)
        w = label_cost(self.z[np.r_[self.train]], self.y[self.train], 10, seed=seed)
        self.distance = MixtureOT(
            self.pool_points,
            self.z[val_idx],
            quantize_pool=None,
            quantize_target=None,
            method="exact",
            pool_labels=self.pool_labels,
            target_labels=self.y[val_idx],
            label_costs=w,
        )

    def sample_source(self, s: int, n: int, rng) -> np.ndarray:
        classes = rng.choice(10, size=n, p=PROFILES[s])
        return np.array([rng.choice(self.by_class[c]) for c in classes], dtype=int)

    def accuracy(self, p: np.ndarray, n: int, rep: int) -> float:
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(10_000 + rep)
        counts = np.floor(np.asarray(p) * n).astype(int)
        counts[np.argmax(p)] += n - counts.sum()
        idx = np.concatenate([self.sample_source(s, c, rng) for s, c in enumerate(counts) if c > 0])
        model = LogisticRegression(max_iter=300, C=0.1).fit(self.x[idx], self.y[idx])
        return float((model.predict(self.x[self.test]) == self.y[self.test]).mean())

    def mean_accuracy(self, p, n, reps) -> float:
        return float(np.mean([self.accuracy(p, n, r) for r in range(reps)]))


def simplex_grid(step: float) -> np.ndarray:
    k = int(round(1 / step))
    return np.array([[i / k, j / k, (k - i - j) / k] for i in range(k + 1) for j in range(k + 1 - i)])


def r2(pred, actual) -> float:
    actual = np.asarray(actual)
    return float(1 - ((np.asarray(pred) - actual) ** 2).sum() / ((actual - actual.mean()) ** 2).sum())


def held_out_mixtures(rng, count: int, floor: float) -> np.ndarray:
    """Random Dirichlet(1) mixtures with every share >= floor (rejection sampling)."""
    out = []
    while len(out) < count:
        p = rng.dirichlet(np.ones(3))
        if p.min() >= floor:
            out.append(p)
    return np.array(out)


def run(n: int = 400, reps: int = 8, seed: int = 0, dense_step: float = 0.05, heldout: int = 40, floor: float = 0.1, probe_step: float = 0.1) -> dict:
    """``floor``: the probed range is the mixtures with every share >= floor (the 0.1 grid inside it)."""
    t0 = time.time()
    src = DigitsSources(seed)
    grid = simplex_grid(probe_step)
    inside = grid.min(1) >= floor - 1e-9
    acc = {size: np.array([src.mean_accuracy(p, size, reps) for p in grid]) for size in (n, n // 2, (3 * n) // 4)}
    ots = np.array([src.distance(p)["ot"] for p in grid])
    rng = np.random.default_rng(seed + 1)
    held = held_out_mixtures(rng, heldout, floor)
    held_all = held_out_mixtures(rng, heldout, 0.0)
    held_acc = np.array([src.mean_accuracy(p, n, reps) for p in held])
    held_all_acc = np.array([src.mean_accuracy(p, n, reps) for p in held_all])
    held_ot = np.array([src.distance(p)["ot"] for p in held])
    held_all_ot = np.array([src.distance(p)["ot"] for p in held_all])
    model = ProjektorPredictor().fit(ots[inside], grid[inside], acc[n][inside], n=n)
    model_all = ProjektorPredictor().fit(ots, grid, acc[n], n=n)
    held_pred = model.predict(held_ot, held)
    by_form = {}
    for form in FORMS:
        m_in = ProjektorPredictor(form).fit(ots[inside], grid[inside], acc[n][inside], n=n)
        m_all = ProjektorPredictor(form).fit(ots, grid, acc[n], n=n)
        by_form[form] = {
            "r2": r2(m_in.predict(held_ot, held), held_acc),
            "mae_pts": float(np.abs(m_in.predict(held_ot, held) - held_acc).mean() * 100),
            "full_simplex_r2": r2(m_all.predict(held_all_ot, held_all), held_all_acc),
        }
    starts = [project_floor_simplex(np.eye(3)[i], floor) for i in range(3)] + [np.full(3, 1 / 3), grid[inside][int(np.argmax(acc[n][inside]))]]
    chosen = choose_mixture({n: model}, src.distance, n, starts, floor=floor)
    chosen_acc = src.mean_accuracy(chosen["p"], n, reps)
    dense = simplex_grid(dense_step)
    dense_acc = np.array([src.mean_accuracy(p, n, reps) for p in dense])
    best_i = int(np.argmax(dense_acc))
    uniform_acc = src.mean_accuracy(np.full(3, 1 / 3), n, reps)
    single = [src.mean_accuracy(np.eye(3)[i], n, reps) for i in range(3)]
    # stage 2: revealed sizes N0, N1 < N, projected to N on the held-out mixtures
    n0, n1 = n // 2, (3 * n) // 4
    m0 = ProjektorPredictor().fit(ots[inside], grid[inside], acc[n0][inside], n=n0)
    m1 = ProjektorPredictor().fit(ots[inside], grid[inside], acc[n1][inside], n=n1)
    proj = log_projection(m0.predict(held_ot, held), m1.predict(held_ot, held), n0, n1, n)
    chosen2 = choose_mixture({n0: m0, n1: m1}, src.distance, n, starts, floor=floor)
    chosen2_acc = src.mean_accuracy(chosen2["p"], n, reps)
    return {
        "n": n,
        "reps": reps,
        "floor": floor,
        "probe_step": probe_step,
        "probes": int(inside.sum()),
        "heldout": heldout,
        "ot_accuracy_pearson": float(np.corrcoef(ots, acc[n])[0, 1]),
        "stage1_r2": r2(held_pred, held_acc),
        "stage1_mae_pts": float(np.abs(held_pred - held_acc).mean() * 100),
        "full_simplex_r2": r2(model_all.predict(held_all_ot, held_all), held_all_acc),
        "full_simplex_mae_pts": float(np.abs(model_all.predict(held_all_ot, held_all) - held_all_acc).mean() * 100),
        "chosen_p": [round(float(v), 3) for v in chosen["p"]],
        "chosen_predicted": chosen["predicted"],
        "chosen_acc": chosen_acc,
        "dense_points": len(dense),
        "dense_best_p": dense[best_i].round(3).tolist(),
        "dense_best_acc": float(dense_acc[best_i]),
        "uniform_acc": uniform_acc,
        "single_acc": single,
        "stage2": {
            "n0": n0,
            "n1": n1,
            "r2": r2(proj, held_acc),
            "mae_pts": float(np.abs(proj - held_acc).mean() * 100),
            "chosen_p": [round(float(v), 3) for v in chosen2["p"]],
            "chosen_acc": chosen2_acc,
        },
        "forms": by_form,
        "default_form": ProjektorPredictor().form,
        "seconds": time.time() - t0,
    }


def stage1_r2(src: "DigitsSources", n: int, floor: float, reps: int, heldout: int = 40, seed: int = 0) -> dict:
    """Held-out stage-1 R² of every predictor form: probes on the 0.1 grid with every share >=
    floor, ``heldout`` Dirichlet mixtures in the same range."""
    grid = simplex_grid(0.1)
    probes = grid[grid.min(1) >= floor - 1e-9]
    acc = np.array([src.mean_accuracy(p, n, reps) for p in probes])
    ots = np.array([src.distance(p)["ot"] for p in probes])
    held = held_out_mixtures(np.random.default_rng(seed + 1), heldout, floor)
    held_acc = np.array([src.mean_accuracy(p, n, reps) for p in held])
    held_ot = np.array([src.distance(p)["ot"] for p in held])
    return {form: r2(ProjektorPredictor(form).fit(ots, probes, acc, n=n).predict(held_ot, held), held_acc) for form in FORMS}


def form_comparison(reps: int = 12, seeds=(0, 1, 2), sizes=(200, 400), heldout: int = 40) -> list[dict]:
    """Stage-1 held-out R² of every predictor form across data seeds, N and the probed range."""
    rows = []
    for seed in seeds:
        src = DigitsSources(seed)
        for n in sizes:
            for floor in (0.1, 0.0):
                row = {"seed": seed, "n": n, "floor": floor, **stage1_r2(src, n, floor, reps, heldout, seed)}
                rows.append(row)
                print(row, flush=True)
    return rows


def markdown(res: dict, command: str) -> str:
    s2 = res["stage2"]
    return "\n".join(
        [
            f"Command: `{command}` on {platform.machine()} ({os.cpu_count()} cores), {res['seconds']:.0f} s.",
            "",
            f"digits, 3 class-skewed sources, logistic regression, N = {res['n']} training samples, "
            f"{res['reps']} reps per mixture (common random numbers). Probed range: every share >= {res['floor']} — "
            f"{res['probes']} probe mixtures on the {res['probe_step']} grid; {res['heldout']} held-out Dirichlet mixtures inside it; "
            f"the choice is compared against the dense 0.05 grid over the whole simplex ({res['dense_points']} mixtures).",
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| Pearson(OT, accuracy) over the probes | {res['ot_accuracy_pearson']:.3f} | (negative) |",
            f"| stage 1 R² on held-out mixtures (form {res['default_form']}) | {res['stage1_r2']:.3f} | ≥ 0.8 |",
            f"| stage 1 MAE on held-out mixtures | {res['stage1_mae_pts']:.2f} pts | |",
            *[
                f"| stage 1 R² / MAE, form {f} | {v['r2']:.3f} / {v['mae_pts']:.2f} pts | (reported) |"
                for f, v in res["forms"].items()
                if f != res["default_form"]
            ],
            f"| chosen mixture (predicted best) | {res['chosen_p']} → {100 * res['chosen_acc']:.2f}% | |",
            f"| best of the dense grid | {res['dense_best_p']} → {100 * res['dense_best_acc']:.2f}% | chosen within 1 pt |",
            f"| uniform mix | {100 * res['uniform_acc']:.2f}% | chosen better |",
            f"| best single source | {100 * max(res['single_acc']):.2f}% | chosen better |",
            f"| whole simplex (every grid probe incl. edges and vertices; held-out anywhere): R² / MAE | "
            f"{res['full_simplex_r2']:.3f} / {res['full_simplex_mae_pts']:.2f} pts | (reported) |",
            f"| stage 2: N0={s2['n0']}, N1={s2['n1']} → N={res['n']}, R² / MAE | {s2['r2']:.3f} / {s2['mae_pts']:.2f} pts | (reported) |",
            f"| stage 2 chosen mixture | {s2['chosen_p']} → {100 * s2['chosen_acc']:.2f}% | (reported) |",
            "",
            "Whole-simplex R² by form: " + ", ".join(f"{f} {v['full_simplex_r2']:.3f}" for f, v in res["forms"].items()) + ".",
        ]
    )


def comparison_markdown(rows: list[dict], reps: int) -> str:
    lines = [
        f"Stage-1 held-out R² by predictor form ({reps} reps per mixture, 36 probes inside / 66 on the whole "
        "simplex, 40 held-out Dirichlet mixtures in the same range):",
        "",
        "| data seed | N | probed range | " + " | ".join(FORMS) + " |",
        "|---|---|---|" + "---|" * len(FORMS),
    ]
    for r in rows:
        rng = "every share ≥ 0.1" if r["floor"] > 0 else "whole simplex"
        lines.append(f"| {r['seed']} | {r['n']} | {rng} | " + " | ".join(f"{r[f]:.3f}" for f in FORMS) + " |")
    lines.append("| | | median | " + " | ".join(f"{np.median([r[f] for r in rows]):.3f}" for f in FORMS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe-step", type=float, default=0.1, help="probe grid step (default 0.1)")
    ap.add_argument(
        "--compare-forms", action="store_true", help="also compare the predictor forms over 3 data seeds x N in {200, 400} x probed range"
    )
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md and docs/selection.md")
    args = ap.parse_args(argv)
    res = run(args.n, args.reps, args.seed, probe_step=args.probe_step)
    cmd = "bench/projektor_digits.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(res, cmd.strip())
    if args.compare_forms:
        text += "\n\n" + comparison_markdown(form_comparison(), 12)
    print(text)
    if args.write:
        from bench.bench_markdown import replace_section

        for doc in ("docs/benchmarks.md", "docs/selection.md"):
            replace_section(doc, "projektor on digits", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
