"""Write a probe folder's probes.jsonl from a committed probes.parquet (flows/probe_job.py's table),
so a grid prepared again with the same pools, sizes, seeds and recipe trains only the probes that
are new: probe keys hash the data plan, seed and recipe (tiers/probe.py, ``probe_key``).

    .venv/bin/python bench/probes_from_parquet.py bench/results/real-qa-lake-h100/probes.parquet work/realqa/probe-a03
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from flows.probe_job import read_probes_parquet  # noqa: E402


def main(parquet: str, probe_dir: str) -> int:
    rows = read_probes_parquet(parquet)
    path = os.path.join(probe_dir, "probes.jsonl")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(path + ".tmp", path)
    with open(os.path.join(probe_dir, "plan.json"), encoding="utf-8") as f:
        planned = {e["key"] for e in json.load(f)["probes"]}
    reused = sum(r["key"] in planned for r in rows)
    print(f"{len(rows)} probes written to {path}; {reused} of the plan's {len(planned)} are among them")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
