"""Does the chosen mix train a better model? Proxy models on equal tokens, several arms, test splits.

Arms, each trained from scratch at the validation size on the same number of bytes T, with the
same seeds (common random numbers, so arm differences are not seed noise):

* ``tierlake`` — the mix of ``mix.json`` (``tierlake select --laws``): pool i contributes w_i·T
  bytes from its best-first stream (``min(S_i, w_i·T)`` unique, repeated as the mix says);
* ``natural`` — the whole curated corpus (every tier) in its natural proportions, a seeded random
  order, as many unique bytes as T allows;
* ``uniform`` — equal shares of every eligible pool (capped at ``max_epochs`` passes like the
  optimizer's uniform start);
* ``best_pool`` — the single pool whose own proxy (one seed, every pool tried) scores best;
* ``random_subset`` — random eligible documents with as many unique bytes as the mix has,
  repeated to T.

Target loss is bits per byte on the benchmarks' *test* splits (``evaluation.npz``), never used for
selection. The compute multiplier: ``natural`` is also trained on k·T bytes (k in ``multipliers``)
and the factor at which its loss reaches ``tierlake``'s is read off by linear interpolation in
log(bytes) (BETR reports 2.1× over DCLM-Baseline at scale). docs/selection.md ("Evidence") has the
measurements. Runs on CPU or CUDA (``python -m tiers.mix_validation``, numpy + pydantic + jax).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from tiers.probe import EVAL_FILE, PLAN_FILE, POOLS_FILE, load_npz, plan_array_name, write_json_atomic
from tiers.proxy_lm import RECIPES, StreamSlice, bits_per_byte, train


def capped_uniform(sizes: np.ndarray, budget: float, max_epochs: float) -> np.ndarray:
    from tiers.ot_mixture import project_capped_simplex

    caps = np.minimum(1.0, max_epochs * sizes / budget)
    if caps.sum() < 1:
        caps = caps / caps.sum()
    return project_capped_simplex(np.full(len(sizes), 1.0 / len(sizes)), caps)


def whole(stream: np.ndarray, seen: float) -> list[StreamSlice]:
    """One stream as a training plan: as many unique bytes as ``seen`` allows, repeated past that."""
    return [StreamSlice(stream, int(min(len(stream), seen)), int(seen))]


def load_inputs(probe_dir: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(plan, pool streams by name, test-split streams by benchmark) of a ``tierlake probe`` folder."""
    with open(os.path.join(probe_dir, PLAN_FILE), encoding="utf-8") as f:
        plan = json.load(f)
    pools = load_npz(os.path.join(probe_dir, POOLS_FILE))
    streams = {name: pools[plan_array_name(plan, name)] for name in plan["pools"]}
    return plan, streams, load_npz(os.path.join(probe_dir, EVAL_FILE))


def mix_budget(mix: dict, budget: float | None) -> float:
    """Bytes per arm: ``budget`` when given, else the budget a mix chosen with --laws was chosen for."""
    budget = budget or (mix.get("parameters") or {}).get("law_budget")
    if not budget:
        raise ValueError("give --budget (bytes per arm): this mix was not chosen with --laws, so it has no budget in bytes")
    return float(budget)


def mix_parts(streams: dict[str, np.ndarray], shares: dict[str, float], budget: float) -> list[StreamSlice]:
    parts = []
    for name, w in shares.items():
        seen = int(round(w * budget))
        if seen > 0:
            parts.append(StreamSlice(streams[name], int(min(len(streams[name]), seen)), seen))
    return parts


def arm_loss(parts: list[StreamSlice], recipe_name: str, seed: int, device: str, evaluation: dict[str, np.ndarray], eval_bytes: int) -> dict:
    model = train(parts, RECIPES[recipe_name], seed=seed, device=device)
    losses = {b: bits_per_byte(model, s, eval_bytes) for b, s in sorted(evaluation.items())}
    return {
        "seed": seed,
        "loss": float(np.mean(list(losses.values()))),
        "losses": losses,
        "tokens_seen": model.tokens_seen,
        "unique": int(sum(p.unique for p in parts)),
        "seconds": round(model.seconds, 2),
        "device": model.device,
    }


def loss_summary(rows: list[dict]) -> dict:
    """Mean, sample standard deviation, range and seeds of one arm's runs (:func:`arm_loss` rows)."""
    v = np.array([r["loss"] for r in rows])
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "seeds": [r["seed"] for r in rows],
    }


def mix_arm(probe_dir: str, shares: dict[str, float], budget: float, recipe: str, seeds: tuple[int, ...], device: str, progress=None) -> dict:
    """Train one mix's arm alone with each seed: the short run that checks a new mix against arms
    measured earlier with the same seeds, recipe and budget (no baselines.npz needed)."""
    plan, streams, evaluation = load_inputs(probe_dir)
    parts = mix_parts(streams, shares, budget)
    runs = []
    for seed in seeds:
        runs.append(arm_loss(parts, recipe, seed, device, evaluation, plan["eval_bytes"]))
        if progress is not None:
            progress(f"mix arm seed {seed}: loss {runs[-1]['loss']:.4f}")
    summary = loss_summary(runs)
    return {"shares": shares, "budget_bytes": budget, "recipe": recipe, "runs": runs, "mean": summary["mean"], "std": summary["std"]}


def compute_multiplier(target_loss: float, tokens: list[float], losses: list[float]) -> float | None:
    """Smallest k at which the natural curve (mean loss per token count, sorted by tokens) reaches
    ``target_loss``, interpolating linearly in log tokens; None when it never does."""
    pts = sorted(zip(tokens, losses))
    if pts[0][1] <= target_loss:
        return 1.0
    for (t0, l0), (t1, l1) in zip(pts, pts[1:]):
        if l1 <= target_loss:
            frac = (l0 - target_loss) / (l0 - l1)
            return float(math.exp(math.log(t0) + frac * (math.log(t1) - math.log(t0))) / pts[0][0])
    return None


def validate_mix(
    probe_dir: str,
    mix: dict,
    budget: float,
    recipe: str = "base",
    seeds: tuple[int, ...] = (0, 1, 2),
    device: str = "auto",
    multipliers: tuple[float, ...] = (1.5, 2, 3, 4),
    max_epochs: float = 4.0,
    eval_bytes: int | None = None,
    progress=print,
) -> dict:
    """Train every arm at ``budget`` bytes with each seed; returns the table as a dict."""
    plan, streams, evaluation = load_inputs(probe_dir)
    base = load_npz(os.path.join(probe_dir, "baselines.npz"))
    eval_bytes = eval_bytes or plan["eval_bytes"]
    shares = {p["pool"]: float(p["share"]) for p in mix["pools"] if p["share"] > 0}
    unknown = sorted(set(shares) - set(streams))
    if unknown:
        raise ValueError(f"the mix uses pools the probe folder lacks: {unknown}")
    sizes = np.array([len(streams[n]) for n in plan["pools"]], float)
    uniform = dict(zip(plan["pools"], capped_uniform(sizes, budget, max_epochs)))
    mix_unique = sum(min(len(streams[n]), w * budget) for n, w in shares.items())
    started = time.time()

    def run(name, parts, seed):
        row = arm_loss(parts, recipe, seed, device, evaluation, eval_bytes)
        progress(
            f"{name:<14} seed {seed}  loss {row['loss']:.4f} bpb  unique {row['unique']:>10,}  seen {row['tokens_seen']:>10,}  {row['seconds']:.1f}s"
        )
        return row

    # the best single pool: every pool alone at T with the first seed, the lowest loss wins
    singles = {n: run(f"single {n}", whole(s, budget), seeds[0]) for n, s in streams.items()}
    best_pool = min(singles, key=lambda n: singles[n]["loss"])
    arms = {
        "tierlake": lambda: mix_parts(streams, shares, budget),
        "natural": lambda: whole(base["natural"], budget),
        "uniform": lambda: mix_parts(streams, uniform, budget),
        "best_pool": lambda: whole(streams[best_pool], budget),
        "random_subset": lambda: [StreamSlice(base["eligible"], int(mix_unique), int(budget))],
    }
    results: dict[str, list[dict]] = {}
    for name, parts in arms.items():
        results[name] = [singles[best_pool] if name == "best_pool" and seed == seeds[0] else run(name, parts(), seed) for seed in seeds]
    natural_curve = {1.0: results["natural"]}
    for k in multipliers:
        t = budget * k
        natural_curve[k] = [run(f"natural x{k:g}", whole(base["natural"], t), seed) for seed in seeds]

    table = {name: loss_summary(rows) for name, rows in results.items()}
    ours = np.array([r["loss"] for r in results["tierlake"]])
    comparisons = {}
    for name in ("natural", "uniform", "best_pool", "random_subset"):
        other = np.array([r["loss"] for r in results[name]])
        diff = other - ours  # positive: the mix is better (lower loss), paired by seed
        spread = max(table["tierlake"]["std"], table[name]["std"])
        comparisons[name] = {
            "mean_gain": float(diff.mean()),
            "paired_std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
            "seed_spread": spread,
            "gain_over_2x_spread": bool(diff.mean() > 2 * spread),
            "better_every_seed": bool((diff > 0).all()),
        }
    curve_tokens = [budget * k for k in natural_curve]
    curve_losses = [float(np.mean([r["loss"] for r in rows])) for rows in natural_curve.values()]
    multiplier = compute_multiplier(table["tierlake"]["mean"], curve_tokens, curve_losses)
    return {
        "budget_bytes": budget,
        "recipe": recipe,
        "parameters": RECIPES[recipe].parameter_count(),
        "seeds": list(seeds),
        "device": results["tierlake"][0]["device"],
        "benchmarks": sorted(evaluation),
        "mix_shares": shares,
        "mix_unique_bytes": mix_unique,
        "uniform_shares": uniform,
        "best_pool": best_pool,
        "single_pools": {n: r["loss"] for n, r in singles.items()},
        "arms": table,
        "comparisons": comparisons,
        "natural_curve": {"bytes": curve_tokens, "loss": curve_losses},
        "compute_multiplier": multiplier,
        "multiplier_note": None if multiplier is not None else f"natural mix did not reach the mix's loss within {max(multipliers):g}x the bytes",
        "runs": results,
        "seconds": round(time.time() - started, 1),
    }


def markdown(result: dict) -> str:
    lines = [
        f"Proxy `{result['recipe']}` ({result['parameters']:,} parameters), {result['budget_bytes']:,.0f} bytes per arm, "
        f"seeds {result['seeds']}, device {result['device']}; test-split loss in bits per byte "
        f"({', '.join(result['benchmarks'])}, mean).",
        "",
        "| arm | mean | std | min | max | mix better by (paired mean) | > 2x seed spread |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["arms"].items():
        comp = result["comparisons"].get(name)
        extra = f"{comp['mean_gain']:+.4f} | {'yes' if comp['gain_over_2x_spread'] else 'no'}" if comp else "– | –"
        label = f"best_pool ({result['best_pool']})" if name == "best_pool" else name
        lines.append(f"| {label} | {row['mean']:.4f} | {row['std']:.4f} | {row['min']:.4f} | {row['max']:.4f} | {extra} |")
    m = result["compute_multiplier"]
    lines += [
        "",
        "Compute multiplier vs the natural mix: "
        + (f"**{m:.2f}x**" if m else result["multiplier_note"])
        + " (natural-mix loss at "
        + ", ".join(f"{b / result['budget_bytes']:g}x: {v:.4f}" for b, v in zip(result["natural_curve"]["bytes"], result["natural_curve"]["loss"]))
        + ").",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m tiers.mix_validation PROBE_DIR MIX_JSON OUT_JSON --budget BYTES``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tiers.mix_validation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_dir")
    ap.add_argument("mix_json", help="mix.json of `tierlake select --laws`")
    ap.add_argument("out_json")
    ap.add_argument("--budget", type=float, help="bytes per arm (default: the mix's budget in bytes, law_budget)")
    ap.add_argument("--recipe", default="base", choices=sorted(RECIPES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--multipliers", default="1.5,2,3,4")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--max-epochs", type=float, default=4.0)
    ap.add_argument("--eval-bytes", type=int)
    args = ap.parse_args(argv)
    with open(args.mix_json, encoding="utf-8") as f:
        mix = json.load(f)
    try:
        budget = mix_budget(mix, args.budget)
    except ValueError as exc:
        ap.error(str(exc))
    result = validate_mix(
        args.probe_dir,
        mix,
        budget,
        args.recipe,
        tuple(int(s) for s in args.seeds.split(",")),
        args.device,
        tuple(float(k) for k in args.multipliers.split(",") if k),
        args.max_epochs,
        args.eval_bytes,
        progress=lambda line: print(line, flush=True),
    )
    write_json_atomic(args.out_json, result)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
