"""Selection evidence in one run on a GPU machine: probe grid -> laws -> mix -> validation.

The same functions as ``tierlake probe`` (grid and fit), ``tierlake select --laws`` (the mix's
shares: :class:`tiers.probe.FittedLaws` optimized by :func:`tiers.mix_optimizer.optimize_mix`
over the probed pools) and ``tierlake validate-mix``, without Spark, so the whole loop runs in one
call of the accelerator machine (numpy, pydantic, jax, scipy, scikit-learn and POT there). Back
here, ``tierlake probe OUT`` refits from the same probes.jsonl and ``tierlake select --laws`` gives
the materialized mix; both are checked against what this script wrote.

    python bench/evidence.py work/real/probe OUTDIR --budget 8e6 --validation-recipe base --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tiers.mix_optimizer import PoolSpec, optimize_mix  # noqa: E402
from tiers.mix_validation import markdown, mix_arm, validate_mix  # noqa: E402
from tiers.probe import EMBED_FILE, PLAN_FILE, FittedLaws, fit_laws, fit_rows, load_npz, result_keys, run_plan, write_json_atomic  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_dir")
    ap.add_argument("out")
    ap.add_argument("--budget", type=float, default=8e6, help="validation bytes per arm (the mix's budget)")
    ap.add_argument("--max-epochs", type=float, default=4.0)
    ap.add_argument("--validation-recipe", default="base")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--multipliers", default="1.5,2,3,4")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--grid-seconds", type=float, default=None)
    ap.add_argument(
        "--mix-arm-only",
        action="store_true",
        help="train only the mix's arm (every seed), to compare with the other arms measured earlier at the same seeds, "
        "recipe and budget; needs no baselines.npz",
    )
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()

    def log(line):
        print(f"[{time.time() - started:7.1f}s] {line}", flush=True)

    rows = run_plan(
        args.probe_dir,
        args.device,
        lambda d, t, r: log(f"probe {d}/{t} {r['pool']} loss {r['loss']:.4f}") if d % 20 == 0 or d == t else None,
        args.grid_seconds,
    )
    shutil.copy(os.path.join(args.probe_dir, "probes.jsonl"), os.path.join(args.out, "probes.jsonl"))
    with open(os.path.join(args.probe_dir, PLAN_FILE), encoding="utf-8") as f:
        plan = json.load(f)
    done = {r["key"] for r in rows}
    missing = [e for e in plan["probes"] if not set(result_keys(e)) <= done]
    if missing:
        log(f"grid incomplete: {len(missing)} of {len(plan['probes'])} probes to go; run again to resume")
        return 1
    embeddings = load_npz(os.path.join(args.probe_dir, EMBED_FILE))
    laws = fit_laws(plan, fit_rows(plan, rows), embeddings)
    write_json_atomic(os.path.join(args.out, "laws.json"), laws)
    log(
        f"laws: QQT held-out {json.dumps({k: round(v['r2'], 4) for k, v in laws['qqt_heldout'].items()})}; "
        f"projektor held-out R2 {laws['projektor']['heldout_r2'] if laws['projektor'] else None}"
    )
    fitted = FittedLaws(laws, embeddings)
    sizes = np.array([plan["pool_bytes"][n] for n in fitted.pools], float)
    pools = [PoolSpec(name=n, size=s, b=-0.1, tau=1.0) for n, s in zip(fitted.pools, sizes)]
    res = optimize_mix(pools, args.budget, a=1.0, d=0.1, max_epochs=args.max_epochs, laws=fitted, law_budget=args.budget, law_sizes=sizes)
    mix = {
        "basis": "fitted laws",
        "predicted_loss": res.predicted_loss,
        "parameters": {"law_budget": args.budget},
        "pools": [{"pool": n, "share": float(w), "epochs": float(e)} for n, w, e in zip(fitted.pools, res.shares, res.epochs)],
    }
    write_json_atomic(os.path.join(args.out, "mix.json"), mix)
    log(
        "mix: " + ", ".join(f"{p['pool']} {p['share']:.3f}" for p in mix["pools"] if p["share"] > 1e-4) + f"; predicted loss {res.predicted_loss:.4f}"
    )
    if args.mix_arm_only:
        shares = {p["pool"]: p["share"] for p in mix["pools"] if p["share"] > 0}
        seeds = tuple(int(s) for s in args.seeds.split(","))
        arm = mix_arm(args.probe_dir, shares, args.budget, args.validation_recipe, seeds, args.device, progress=log)
        write_json_atomic(os.path.join(args.out, "mix-arm.json"), arm)
        log(f"tierlake arm: {arm['mean']:.4f} ± {arm['std']:.4f}")
        return 0
    result = validate_mix(
        args.probe_dir,
        mix,
        args.budget,
        args.validation_recipe,
        tuple(int(s) for s in args.seeds.split(",")),
        args.device,
        tuple(float(k) for k in args.multipliers.split(",")),
        args.max_epochs,
        progress=log,
    )
    result["predicted_loss_of_mix"] = res.predicted_loss
    write_json_atomic(os.path.join(args.out, "validation.json"), result)
    with open(os.path.join(args.out, "validation.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result) + "\n")
    print(markdown(result))
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
