"""Probes: proxy models trained on the pools of a curated corpus, and the laws fitted to them.

Three steps, each resumable and each a plain function (no Spark):

1. :func:`make_plan` — which probes to train: every pool at several unique-token counts and
   repetition levels (the QQT size and repetition axes; Goyal et al., CVPR 2024, fit their laws
   on 2–10 passes over a pool) plus random mixtures of all pools (Dirichlet shares, one pass at
   a fixed size: projektor's stage 1, Kang et al., NeurIPS 2023). By default a pool's
   repetition levels are one learning curve (one run at a constant learning rate, scored as it
   passes each level: QQT's test error against samples seen), not one run each. A curve reads
   its pool in a seeded hash order, so each unique size is a random sample of the pool as QQT's
   pools are; mixtures read pools best first, as selection keeps them.
2. :func:`run_plan` — trains every probe not yet in ``probes.jsonl`` (one JSON line per probe
   or curve checkpoint, appended as it finishes: a killed grid resumes where it stopped) with
   :mod:`tiers.proxy_lm`, scoring bits per byte on the selection split of every target benchmark.
   Needs only numpy, pydantic and jax, so the same call runs on a GPU machine
   (``python -m tiers.probe run OUT``).
3. :func:`fit_laws` — per pool QQT (a, b, τ) with one irreducible loss d shared by all pools, on
   target loss (:func:`tiers.qqt.fit_pools_shared_d`), with held-out checks (the largest size left out, then the largest repetition level left out),
   and projektor's predictor (OT distance of a mixture's embedding sample to the targets plus the
   shares → loss, :class:`tiers.projektor.ProjektorPredictor`) with its R² on held-out mixtures.
   The result is ``laws.json``, which ``tierlake select --laws`` optimizes (:class:`FittedLaws`).

Units: probes count bytes (the proxy's tokens); ``laws.json`` says so, and selection converts a
budget in tokens with the corpus's bytes per token. docs/selection.md ("Evidence") has the
reasoning and the measurements.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator

from tiers.proxy_lm import RECIPES, ProxyRecipe, StreamSlice, TrainedProxy, bits_per_byte, train

PLAN_FILE, RESULTS_FILE, LAWS_FILE = "plan.json", "probes.jsonl", "laws.json"
POOLS_FILE, TARGETS_FILE, EVAL_FILE, EMBED_FILE = "pools.npz", "targets.npz", "evaluation.npz", "embeddings.npz"


class ProbeParams(BaseModel):
    """The probe grid (``tierlake probe`` options and a recipe's ``probe`` section)."""

    model_config = {"extra": "forbid"}
    sizes: list[float] = Field(default_factory=lambda: [2.5e5, 5e5, 1e6, 2e6], description="unique bytes per pool probe (the size axis)")
    repeats: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], description="passes over those bytes (the repetition axis)")
    mixtures: int = Field(40, ge=0, description="random mixtures of all pools for projektor's predictor")
    mixture_tokens: float = Field(2e6, gt=0, description="bytes each mixture probe is trained on (one pass)")
    mixture_alpha: float = Field(
        1.0,
        gt=0,
        description="Dirichlet concentration of the mixture draws: below 1 puts "
        "most of a mixture on few pools, so the predictor sees the "
        "simplex's corners too",
    )
    mixture_seeds: list[int] | None = Field(
        None, description="training seeds per mixture probe (default: the first of `seeds`); the predictor is fitted on each mixture's mean"
    )
    recipe: str = Field("small", description=f"proxy size: one of {sorted(RECIPES)}")
    pool_design: Literal["runs", "curves"] = Field(
        "curves",
        description="runs: one training run per pool, size and repetition level, each on its own "
        "cosine schedule; curves: one run per pool and size at a constant learning rate after "
        "warm-up, scored on the targets as it passes each repetition level (QQT's test error "
        "against samples seen)",
    )
    curve_batch: int | None = Field(
        None,
        ge=1,
        description="windows per step of the curve probes (default: the recipe's); a smaller batch "
        "gives a probe more optimizer steps per byte, so its loss measures data rather than steps",
    )
    curve_dropout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="dropout of the curve probes (0: none, as the recipes): up to 16 passes over a few hundred kB "
        "overfit the proxy without it, and the target loss rises again, which QQT's decay cannot describe "
        "(0.1 lifted the real lake's QQT held-out R² from 0.58 / 0.12 to 0.74 / 0.74: docs/selection.md)",
    )
    curve_order: Literal["hash", "score"] = Field(
        "hash",
        description="order of a pool's documents in the curve probes, whose prefixes are the unique sizes: hash "
        "(default): a seeded random order, so every size is a random sample of its pool, as QQT's pools are; "
        "score: best betr_score first, as selection and the mixture probes take a pool. In score order a larger "
        "size also holds other documents, and the laws' held-out checks fail (the real lake: 0.74 / 0.74 in score "
        "order, 0.83 / 0.84 in hash order; docs/selection.md, 'Curve order')",
    )
    seeds: list[int] = Field(default_factory=lambda: [0], description="training seeds per probe")
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    min_pool_bytes: float = Field(0, ge=0, description="pools smaller than this are left out (default: the smallest size)")
    eval_bytes: int = Field(1_000_000, ge=1000, description="target bytes scored per benchmark")
    embed_sample: int = Field(500, ge=10, description="documents per pool embedded for the OT distance")
    seed: int = Field(0, description="seed of the mixture draws and the held-out split")

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, v):
        if v not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {v!r}")
        return v

    @field_validator("sizes", "repeats")
    @classmethod
    def _positive(cls, v):
        if not v or any(x <= 0 for x in v):
            raise ValueError("give at least one positive value")
        return sorted(set(v))


def probe_key(entry: dict, recipe: ProxyRecipe) -> str:
    """Stable id of a probe: its data plan, seed and the model recipe (and a curve's checkpoints)."""
    # a recipe without dropout keys as it did before the field existed, so earlier probes are reused
    body: dict = {"parts": entry["parts"], "seed": entry["seed"], "recipe": recipe.model_dump(exclude={"dropout"} if not recipe.dropout else None)}
    if "checkpoints" in entry:
        body["checkpoints"] = entry["checkpoints"]
    if "warmup_steps" in entry:
        body["warmup_steps"] = entry["warmup_steps"]
    if "order" in entry:  # only hash order is recorded, so probes in selection's order keep their keys
        body["order"] = entry["order"]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_key(entry: dict, seen: int) -> str:
    """Result key of one checkpoint of a learning-curve probe."""
    return f"{entry['key']}@{seen}"


def result_keys(entry: dict) -> list[str]:
    """The result rows a planned probe writes: one, or one per checkpoint of a curve."""
    return [checkpoint_key(entry, c) for c in entry["checkpoints"]] if entry["kind"] == "curve" else [entry["key"]]


def make_plan(pool_names: list[str], pool_bytes: list[int], benchmarks: list[str], params: ProbeParams) -> dict:
    """The probe grid for pools of the given sizes (bytes)."""
    recipe = RECIPES[params.recipe]
    floor = params.min_pool_bytes or min(params.sizes)
    kept = [(n, b) for n, b in zip(pool_names, pool_bytes) if b >= floor]
    if not kept:
        raise ValueError(f"no pool holds {floor:.0f} bytes, the smallest probe size: lower --sizes")
    left_out = sorted(set(pool_names) - {n for n, _ in kept})
    entries = []
    curve_bytes: list[int] = []  # bytes seen by each curve probe
    for name, size in kept:
        for unique in params.sizes:
            if unique > size:
                continue
            for seed in params.seeds:
                if params.pool_design == "curves":
                    top = max(params.repeats)
                    curve_bytes.append(int(unique * top))
                    entries.append(
                        {
                            "kind": "curve",
                            "pool": name,
                            "repeats": top,
                            "seed": seed,
                            "parts": {name: [int(unique), int(unique * top)]},
                            "checkpoints": [int(unique * r) for r in params.repeats],
                        }
                    )
                    continue
                for r in params.repeats:
                    entries.append({"kind": "pool", "pool": name, "repeats": r, "seed": seed, "parts": {name: [int(unique), int(unique * r)]}})
    rng = np.random.default_rng(params.seed)
    names = [n for n, _ in kept]
    sizes = dict(kept)
    for _ in range(params.mixtures if len(kept) > 1 else 0):
        shares = rng.dirichlet(np.full(len(names), params.mixture_alpha))
        parts = {}
        for n, s in zip(names, shares):
            seen = int(round(s * params.mixture_tokens))
            if seen > 0:
                parts[n] = [int(min(seen, sizes[n])), seen]
        for seed in params.mixture_seeds or params.seeds[:1]:
            entries.append(
                {
                    "kind": "mixture",
                    "pool": "mixture",
                    "repeats": 1,
                    "seed": seed,
                    "parts": parts,
                    "shares": {n: float(s) for n, s in zip(names, shares)},
                }
            )
    curve_recipe = recipe.model_copy(update={"batch": params.curve_batch or recipe.batch, "dropout": params.curve_dropout})
    if curve_bytes:
        # one warm-up for every curve of the grid: the recipe's fraction of the shortest curve. With a
        # warm-up proportional to each run's length, a longer curve would still be warming up where a
        # shorter one is not, and points of different sizes at equal bytes seen would not compare.
        warm = max(1, int(recipe.warmup * (min(curve_bytes) // (curve_recipe.batch * curve_recipe.context))))
        for e in entries:
            if e["kind"] == "curve":
                e["warmup_steps"] = warm
    for e in entries:
        if e["kind"] == "curve" and params.curve_order == "hash":
            e["order"] = "hash"
        e["key"] = probe_key(e, curve_recipe if e["kind"] == "curve" else recipe)
    return {
        "recipe_name": params.recipe,
        "recipe": recipe.model_dump(),
        "pool_design": params.pool_design,
        "curve_recipe": curve_recipe.model_dump(),
        "curve_order": params.curve_order,
        "unit": "bytes",
        "pools": names,
        "pool_bytes": {n: int(b) for n, b in kept},
        "left_out": left_out,
        "benchmarks": benchmarks,
        "mixture_tokens": params.mixture_tokens,
        "eval_bytes": params.eval_bytes,
        "device": params.device,
        "probes": entries,
    }


def load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, allow_pickle=False, **arrays)
    os.replace(tmp, path)


def read_results(out: str) -> list[dict]:
    path = os.path.join(out, RESULTS_FILE)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill: that probe runs again
                    continue
    return rows


def fit_rows(plan: dict, rows: list[dict]) -> list[dict]:
    """The probe results a fit uses: every planned probe, and every earlier probe in OUT of the
    same proxy recipe over the plan's pools (a pool probe of a planned pool and of the plan's pool
    design, curve batch and curve dropout, a mixture at the plan's mixture size) — probes of an earlier grid on the same pools, or restored with
    ``bench/probes_from_parquet.py``, add points instead of being dropped. One row per key."""
    planned = {k for e in plan["probes"] for k in result_keys(e)}
    pools = set(plan["pools"])
    tokens = plan["mixture_tokens"]
    design = plan.get("pool_design", "runs")
    curve_batch = (plan.get("curve_recipe") or plan["recipe"])["batch"]
    curve_dropout = (plan.get("curve_recipe") or plan["recipe"]).get("dropout") or 0.0  # none: a plan from before dropout
    curve_order = plan.get("curve_order", "score")  # none: a plan from before the option, whose curves were in score order
    kept: dict[str, dict] = {}
    for r in rows:
        if r["key"] in planned:
            kept[r["key"]] = r
        elif r.get("recipe") == plan["recipe_name"] and set(r["shares"]) <= pools:
            same_pool_design = (r.get("pool_design") or "runs") == design and (
                design == "runs"
                or (
                    (r.get("batch") or plan["recipe"]["batch"]) == curve_batch
                    and (r.get("dropout") or 0.0) == curve_dropout
                    and (r.get("order") or "score") == curve_order  # null: a probes.parquet row in score order
                )
            )
            if (r["kind"] == "pool" and same_pool_design) or (
                r["kind"] == "mixture" and abs(sum(s for _, s in r["parts"].values()) - tokens) <= 0.01 * tokens
            ):
                kept[r["key"]] = r
    return list(kept.values())


def run_plan(out: str, device: str | None = None, progress=None, limit_seconds: float | None = None, step_progress=None) -> list[dict]:
    """Train every planned probe that ``probes.jsonl`` lacks; returns all result rows.

    ``progress(done, total, row)`` after each probe; ``limit_seconds``: stop starting new probes
    after this long (the rest run on the next call); ``step_progress(step, steps)`` inside each."""
    with open(os.path.join(out, PLAN_FILE), encoding="utf-8") as f:
        plan = json.load(f)
    recipe = ProxyRecipe(**plan["recipe"])
    curve_recipe = ProxyRecipe(**plan.get("curve_recipe", plan["recipe"]))
    pools = load_npz(os.path.join(out, POOLS_FILE))
    targets = load_npz(os.path.join(out, TARGETS_FILE))
    done = {r["key"] for r in read_results(out)}
    todo = [e for e in plan["probes"] if not set(result_keys(e)) <= done]
    started = time.time()
    device = device or plan.get("device", "auto")
    with open(os.path.join(out, RESULTS_FILE), "a", encoding="utf-8") as log:
        for i, entry in enumerate(todo):
            if limit_seconds is not None and time.time() - started > limit_seconds:
                break
            parts = [StreamSlice(pools[plan_array_name(plan, name, entry.get("order"))], u, s) for name, (u, s) in entry["parts"].items()]

            def score(model: TrainedProxy, seen: int | None = None, entry: dict = entry) -> dict:
                losses = {b: bits_per_byte(model, targets[b], plan["eval_bytes"]) for b in plan["benchmarks"]}
                return result_row(plan, entry, model, losses, seen, curve_recipe)

            if entry["kind"] == "curve":
                curve_rows: list[dict] = []
                train(
                    parts,
                    curve_recipe,
                    seed=entry["seed"],
                    device=device,
                    progress=step_progress,
                    checkpoints=entry["checkpoints"],
                    on_checkpoint=lambda c, m, rows=curve_rows: rows.append(score(m, c)),
                    warmup_steps=entry.get("warmup_steps"),  # absent in plans written before 2026-12-06
                )
                rows_out = curve_rows
            else:
                rows_out = [score(train(parts, recipe, seed=entry["seed"], device=device, progress=step_progress))]
            for row in rows_out:
                log.write(json.dumps(row) + "\n")
            log.flush()
            if progress is not None:
                progress(i + 1, len(todo), row)
    return read_results(out)


def result_row(
    plan: dict, entry: dict, model: TrainedProxy, losses: dict[str, float], seen: int | None = None, curve_recipe: ProxyRecipe | None = None
) -> dict:
    """One ``probes.jsonl`` row: a probe's result, or (``seen``) one checkpoint of a curve probe,
    which reads as a pool probe of that many bytes seen."""
    unique = int(entry["parts"][entry["pool"]][0]) if seen is not None else 0  # a curve has one part: its pool
    row = {
        "key": entry["key"] if seen is None else checkpoint_key(entry, seen),
        "kind": entry["kind"] if seen is None else "pool",
        "pool": entry["pool"],
        "shares": entry.get("shares") or {entry["pool"]: 1.0},
        "parts": entry["parts"] if seen is None else {entry["pool"]: [unique, seen]},
        "unique_tokens": int(sum(u for u, _ in entry["parts"].values())),
        "tokens_seen": int(model.tokens_seen),
        "repeats": entry["repeats"] if seen is None else round(seen / unique, 6),
        "seed": entry["seed"],
        "loss": float(np.mean(list(losses.values()))),
        "losses": losses,
        "train_loss": model.train_loss,
        "seconds": round(model.seconds, 3),
        "device": model.device,
        "recipe": plan["recipe_name"],
    }
    if seen is not None:
        row.update(pool_design="curves", batch=curve_recipe.batch if curve_recipe else None, curve=entry["key"])
        if curve_recipe is not None and curve_recipe.dropout:
            row["dropout"] = curve_recipe.dropout
        if "order" in entry:
            row["order"] = entry["order"]
    return row


def plan_array_name(plan: dict, pool: str, order: str | None = None) -> str:
    """The pools.npz array of a pool: in selection's order, or (``order="hash"``) in seeded hash order."""
    return f"pool{plan['pools'].index(pool)}" + ("_hash" if order == "hash" else "")


# ---------------------------------------------------------------- fitting


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    sst = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / sst if sst > 0 else float("nan")


def _pool_points(rows: list[dict], pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique, seen, mean loss over seeds) of one pool's probes."""
    groups: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        if r["kind"] == "pool" and r["pool"] == pool:
            u, s = r["parts"][pool]
            groups.setdefault((u, s), []).append(r["loss"])
    keys = sorted(groups)
    return (np.array([k[0] for k in keys], float), np.array([k[1] for k in keys], float), np.array([np.mean(groups[k]) for k in keys]))


def fit_laws(
    plan: dict, rows: list[dict], embeddings: dict[str, np.ndarray] | None = None, holdout_fraction: float = 0.25, seed: int = 0, form: str = "auto"
) -> dict:
    """``laws.json``: QQT laws per pool with held-out checks, and projektor's predictor."""
    from tiers.qqt import fit_pools_shared_d, predict_points

    pools = plan["pools"]
    points = {pool: _pool_points(rows, pool) for pool in pools}
    points = {pool: v for pool, v in points.items() if len(v[2]) >= 4}
    held: dict[str, list] = {"size": [], "repetition": []}
    predictions = {}
    laws = fit_pools_shared_d(points, seed=seed) if points else {}
    for pool, law in laws.items():
        u, s, y = points[pool]
        law["r2_in_sample"] = _r2(y, predict_points(law, u, s))
        predictions[pool] = {"unique": u.tolist(), "seen": s.tolist(), "measured": y.tolist(), "predicted": predict_points(law, u, s).tolist()}
    # held-out: the largest unique size, then the largest repetition level, left out of the fit (every pool at once)
    for axis in ("size", "repetition"):
        masks = {pool: (u == u.max()) if axis == "size" else ((s / u) >= (s / u).max() - 1e-9) for pool, (u, s, y) in points.items()}
        train = {pool: tuple(v[~masks[pool]] for v in points[pool]) for pool in points if (~masks[pool]).sum() >= 3 and masks[pool].any()}
        if not train:
            continue
        part = fit_pools_shared_d(train, seed=seed)
        for pool, law in part.items():
            u, s, y = points[pool]
            m = masks[pool]
            pred = predict_points(law, u[m], s[m])
            held[axis] += [
                {"pool": pool, "unique": float(a), "seen": float(b), "measured": float(c), "predicted": float(d)}
                for a, b, c, d in zip(u[m], s[m], y[m], pred)
            ]
    checks = {}
    for axis, pts in held.items():
        if pts:
            m = np.array([p["measured"] for p in pts])
            p = np.array([p["predicted"] for p in pts])
            checks[axis] = {"points": len(pts), "r2": _r2(m, p), "mae": float(np.abs(m - p).mean()), "rows": pts}
    all_pts = held["size"] + held["repetition"]
    if all_pts:
        m = np.array([p["measured"] for p in all_pts])
        p = np.array([p["predicted"] for p in all_pts])
        checks["all"] = {"points": len(all_pts), "r2": _r2(m, p), "mae": float(np.abs(m - p).mean())}
    out = {
        "unit": plan["unit"],
        "recipe": plan["recipe_name"],
        "benchmarks": plan["benchmarks"],
        "pools": pools,
        "pool_bytes": plan["pool_bytes"],
        "qqt": laws,
        "qqt_heldout": checks,
        "qqt_points": predictions,
        "curve_order": plan.get("curve_order", "score"),  # the pool order the QQT points were measured in
        "projektor": None,
    }
    mixtures = [r for r in rows if r["kind"] == "mixture"]
    if embeddings is None or len(mixtures) < 8 or len(laws) != len(pools):
        out["projektor_note"] = "not fitted: needs the embedding samples, >= 8 mixture probes and a law for every pool"
    else:
        try:
            out["projektor"] = fit_projektor(pools, mixtures, embeddings, plan["mixture_tokens"], holdout_fraction, seed, form)
        except ValueError as exc:
            out["projektor_note"] = f"not fitted: {exc}"
    return out


def mixture_distance(pools: list[str], embeddings: dict[str, np.ndarray], seed: int = 0):
    """projektor's OT(mixture, targets) on the stored embedding samples (tiers.ot_mixture)."""
    from tiers.ot_mixture import MixtureOT

    pool_emb = [embeddings[f"pool{i}"] for i in range(len(pools))]
    return MixtureOT(pool_emb, embeddings["targets"], quantize_pool=64, quantize_target=256, seed=seed)


SPLIT_REPEATS = 20  # further random held-out splits whose R² fit_projektor reports beside the main one


def fit_projektor(
    pools: list[str], mixtures: list[dict], embeddings: dict[str, np.ndarray], n: float, holdout_fraction: float, seed: int, form: str = "auto"
) -> dict:
    """Stage-1 predictor on the mixture probes; R² on a held-out share of them (deterministic)."""
    from tiers.projektor import FORMS, ProjektorPredictor

    distance = mixture_distance(pools, embeddings, seed)
    by_mix: dict[tuple, list[dict]] = {}
    for m in mixtures:  # a mixture probed with several seeds is one point: its mean loss
        by_mix.setdefault(tuple(round(m["shares"].get(name, 0.0), 12) for name in pools), []).append(m)
    mixtures = [{**group[0], "loss": float(np.mean([g["loss"] for g in group])), "seeds": len(group)} for group in by_mix.values()]
    p = np.array([[m["shares"].get(name, 0.0) for name in pools] for m in mixtures])
    ot_values = np.array([distance(row)["ot"] for row in p])
    y = np.array([m["loss"] for m in mixtures])
    n_test = max(2, int(round(holdout_fraction * len(y))))
    forms = [form] if form != "auto" else [f for f in ("log_counts", "code", "interaction", "linear") if f in FORMS]
    candidates = [(f, ridge) for f in forms for ridge in (False, True)]

    def held_out_check(split_seed: int):
        """Hold out a random share, choose the design by 5-fold CV on the rest, fit there, score the share."""
        order = np.random.default_rng(split_seed).permutation(len(y))
        test, fit_idx = order[:n_test], order[n_test:]
        results = {}
        for f, ridge in candidates:
            try:
                model = ProjektorPredictor(f, ridge).fit(ot_values[fit_idx], p[fit_idx], y[fit_idx], n=n)
            except ValueError:
                continue
            results[(f, ridge)] = _r2(y[test], model.predict(ot_values[test], p[test]))
        if not results:
            raise ValueError(f"{len(y)} mixture probes are too few for projektor's predictor with {len(pools)} pools")
        best = max(results, key=lambda c: _cv_r2(c, ot_values[fit_idx], p[fit_idx], y[fit_idx], n, split_seed))
        return best, results, test, fit_idx

    best, results, test, fit_idx = held_out_check(seed)
    heldout = results[best]
    # the same check on other random splits: one split of a few dozen mixtures is a noisy estimate
    others = [held_out_check(seed + 1 + k) for k in range(SPLIT_REPEATS)]
    split_r2 = np.array([res[b] for b, res, _, _ in others])
    best_form, ridge = best
    full = ProjektorPredictor(best_form, ridge).fit(ot_values, p, y, n=n)
    held_out = set(test.tolist())
    return {
        "form": best_form,
        "ridge": ridge,
        "n": n,
        "heldout_r2": heldout,
        "heldout_points": int(n_test),
        "fit_points": int(len(fit_idx)),
        "coefficients": full.to_dict(),
        "candidates_heldout_r2": {f"{f}{' ridge' if r else ''}": v for (f, r), v in results.items()},
        "heldout_r2_other_splits": {
            "splits": SPLIT_REPEATS,
            "median": float(np.median(split_r2)),
            "q25": float(np.percentile(split_r2, 25)),
            "q75": float(np.percentile(split_r2, 75)),
        },
        "points": [
            {"shares": row.tolist(), "ot": float(o), "measured": float(v), "predicted": float(pv), "heldout": i in held_out}
            for i, (row, o, v, pv) in enumerate(zip(p, ot_values, y, full.predict(ot_values, p)))
        ],
    }


def _cv_r2(candidate: tuple[str, bool], ot_values, p, y, n, seed, folds: int = 5) -> float:
    from tiers.projektor import ProjektorPredictor

    form, ridge = candidate
    order = np.random.default_rng(seed + 1).permutation(len(y))
    preds = np.empty(len(y))
    for k in range(folds):
        test = order[k::folds]
        train_idx = np.setdiff1d(order, test)
        try:
            preds[test] = ProjektorPredictor(form, ridge).fit(ot_values[train_idx], p[train_idx], y[train_idx], n=n).predict(ot_values[test], p[test])
        except ValueError:
            return -math.inf
    return _r2(y, preds)


# ---------------------------------------------------------------- selection objective


class FittedLaws:
    """Predicted target loss of a mixture from ``laws.json``, in one objective.

        L̂(w, T) = QQT(w, T) + [P(w) − QQT(w, N_mix)]

    QQT(w, n) is the weighted-mixture QQT law (:func:`tiers.qqt.mixture_error`) with each pool's
    fitted (a, b, τ, d); P(w) is projektor's predictor (OT distance of the mixture to the targets
    and the shares) fitted on mixture probes at N_mix bytes. The bracket is the mixture's
    interaction that the per-pool laws miss, measured at the size it was probed at and carried to
    the budget T unchanged; both terms are target loss in bits per byte, so no exchange rate is
    set by hand. Without a projektor fit the bracket is 0 (QQT alone). The search keeps every
    share within :meth:`trust_caps`, where the predictor was fitted."""

    def __init__(self, laws: dict, embeddings: dict[str, np.ndarray] | None = None, seed: int = 0):
        self.laws = laws
        self.pools = list(laws["qqt"])
        q = [laws["qqt"][p] for p in self.pools]
        self.a = np.array([x["a"] for x in q])
        self.b = np.array([x["b"] for x in q])
        self.tau = np.array([x["tau"] for x in q])
        self.d = np.array([x["d"] for x in q])
        self.projektor = None
        if laws.get("projektor") and embeddings is not None:
            from tiers.projektor import ProjektorPredictor

            self.projektor = ProjektorPredictor.from_dict(laws["projektor"]["coefficients"])
            self.n_mix = float(laws["projektor"]["n"])
            self.distance = mixture_distance(laws["pools"], embeddings, seed)

    def trust_caps(self) -> np.ndarray:
        """Per pool, the largest share any mixture probe gave it: the predictor was fitted inside
        these bounds and is not trusted outside them (projektor's own search keeps to the probed
        range, :func:`tiers.projektor.choose_mixture`'s ``floor``). All ones without a predictor."""
        if self.projektor is None:
            return np.ones(len(self.pools))
        shares = np.array([pt["shares"] for pt in self.laws["projektor"]["points"]], float)
        return shares.max(axis=0)

    def qqt_loss(self, w: np.ndarray, n: float, sizes: np.ndarray) -> float:
        from tiers.qqt import mixture_error

        return mixture_error(n, w, sizes, self.a, self.b, self.tau, self.d, "plain")

    def correction(self, w: np.ndarray, sizes: np.ndarray) -> tuple[float, np.ndarray]:
        """P(w) − QQT(w, N_mix) and its gradient (QQT part by central differences)."""
        if self.projektor is None:
            return 0.0, np.zeros(len(w))
        res = self.distance(w)
        value = float(self.projektor.predict([res["ot"]], [w])[0])
        d_ot, d_p = self.projektor.partials(res["ot"], w)
        grad = d_ot * np.asarray(res["grad"]) + d_p
        mix_sizes = np.maximum(sizes, 1.0)
        base = self.qqt_loss(w, self.n_mix, mix_sizes)
        h = 1e-4
        for i in range(len(w)):
            e = np.zeros(len(w))
            e[i] = h
            grad[i] -= (self.qqt_loss(np.maximum(w + e, 0), self.n_mix, mix_sizes) - self.qqt_loss(np.maximum(w - e, 0), self.n_mix, mix_sizes)) / (
                2 * h
            )
        return value - base, grad

    def predict(self, w: np.ndarray, n: float, sizes: np.ndarray) -> float:
        return self.qqt_loss(w, n, sizes) + self.correction(w, sizes)[0]


def write_json_atomic(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=float)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m tiers.probe run OUT [--device cuda] [--limit-seconds S]``: train the planned
    probes of a prepared OUT on this machine (a GPU machine needs only numpy, pydantic and jax)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tiers.probe", description=main.__doc__)
    ap.add_argument("command", choices=["run"])
    ap.add_argument("out")
    ap.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    ap.add_argument("--limit-seconds", type=float, default=None)
    args = ap.parse_args(argv)

    def report(done, total, row):
        print(
            f"[{done}/{total}] {row['kind']} {row['pool']} unique={row['unique_tokens']} seen={row['tokens_seen']} "
            f"loss={row['loss']:.4f} bpb {row['seconds']:.1f}s {row['device']}",
            flush=True,
        )

    rows = run_plan(args.out, args.device, report, args.limit_seconds)
    print(f"{len(rows)} probes in {os.path.join(args.out, RESULTS_FILE)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
