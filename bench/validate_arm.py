"""Train one validation arm (a mix.json's shares) with the given seeds: the short GPU run that
checks a new mix against arms already measured with the same seeds, recipe and budget.

    python bench/validate_arm.py PROBE_DIR MIX_JSON OUT_JSON --budget 8e6 --recipe base --seeds 0,1,2
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tiers.mix_validation import mix_arm  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("probe_dir")
ap.add_argument("mix_json")
ap.add_argument("out_json")
ap.add_argument("--budget", type=float, required=True)
ap.add_argument("--recipe", default="base")
ap.add_argument("--seeds", default="0,1,2")
ap.add_argument("--device", default="auto")
args = ap.parse_args()
shares = {p["pool"]: p["share"] for p in json.load(open(args.mix_json))["pools"] if p["share"] > 0}
seeds = tuple(int(s) for s in args.seeds.split(","))
out = mix_arm(args.probe_dir, shares, args.budget, args.recipe, seeds, args.device, progress=print)
json.dump(out, open(args.out_json, "w"), indent=2)
print(json.dumps({k: out[k] for k in ("mean", "std")}))
