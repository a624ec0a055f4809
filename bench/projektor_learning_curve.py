"""How projektor's held-out R² grows with the number of mixture probes it is fitted on.

    .venv/bin/python bench/projektor_learning_curve.py PROBE_DIR [--counts 90,120,150,180]

Fits :func:`tiers.probe.fit_projektor` on the first N mixture probes of a probe folder (the
mixtures are drawn in sequence, so the first N are the grid a smaller ``--mixtures`` would have
planned) and prints the main split's held-out R² beside the median and quartiles over the 20
further random splits that ``laws.json`` reports. One split of a few dozen mixtures is a noisy
estimate; this says whether more mixtures would still raise it. docs/selection.md ("Curve order")
has the figures of the real QA lake.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tiers.probe import EMBED_FILE, PLAN_FILE, fit_projektor, fit_rows, load_npz, read_results  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_dir")
    ap.add_argument("--counts", default="90,120,150,180", help="numbers of mixtures to fit on, comma-separated")
    ap.add_argument("--holdout-fraction", type=float, default=0.25)
    args = ap.parse_args(argv)
    with open(os.path.join(args.probe_dir, PLAN_FILE), encoding="utf-8") as f:
        plan = json.load(f)
    mixtures = [r for r in fit_rows(plan, read_results(args.probe_dir)) if r["kind"] == "mixture"]
    embeddings = load_npz(os.path.join(args.probe_dir, EMBED_FILE))
    print("| mixtures | held out | main split R² | median over 20 other splits | quartiles |")
    print("|---|---|---|---|---|")
    for count in (int(c) for c in args.counts.split(",")):
        if count > len(mixtures):
            print(f"skipped {count}: the folder has {len(mixtures)} mixture probes")
            continue
        res = fit_projektor(plan["pools"], mixtures[:count], embeddings, plan["mixture_tokens"], args.holdout_fraction, 0)
        other = res["heldout_r2_other_splits"]
        print(
            f"| {count} | {res['heldout_points']} | {res['heldout_r2']:.3f} | {other['median']:.3f} | {other['q25']:.3f}–{other['q75']:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
