"""Containment funnel vs a naive exact all-pairs check, on generated lakes with planted relations.

    .venv/bin/python bench/containment.py [--sizes 100,300,1000] [--naive-sample 3000]

For each size: generate the lake (connectors/containment_lake.py), run the funnel
(catalog -> schema -> min-max -> content -> exact) and the naive check: every ordered pair whose
column names are a subset (the only free test) is verified exactly by reading both tables and
comparing row hashes, nothing cached. When a size has more candidate pairs than
``--naive-sample``, the naive time is measured on a seeded random sample of that many pairs and
scaled to all pairs (marked "extrapolated"). Precision and recall are against the ground truth by
construction. Writes bench/results/containment.json and the "Containment" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402

from connectors.containment_lake import generate_containment_lake, truth_pairs  # noqa: E402
from connectors.lake_catalog import build_catalog, read_table  # noqa: E402
from curation.containment import exact_ratio, normalize_name, row_hashes, schema_of  # noqa: E402
from curation.containment_stage import find_containment  # noqa: E402
from curation.params import ContainmentParams  # noqa: E402


def naive_check(tables, pair) -> bool:
    i, j = pair
    a, b = read_table(tables[i]), read_table(tables[j])
    norm_b = {normalize_name(c): c for c in b.column_names}
    cols_a = sorted(a.column_names, key=normalize_name)
    ha = row_hashes(a, cols_a)
    hb = row_hashes(b, [norm_b[normalize_name(c)] for c in cols_a])
    return exact_ratio(ha, hb)[0] >= 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,300,1000")
    ap.add_argument("--naive-sample", type=int, default=3000)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sizes": {}}
    for n in [int(x) for x in args.sizes.split(",")]:
        root = tempfile.mkdtemp(prefix=f"clake{n}-")
        records = generate_containment_lake(os.path.join(root, "lake"), n)
        truth = truth_pairs(records)
        t = time.time()
        tables, _ = build_catalog(os.path.join(root, "lake"), os.path.join(root, "catalog.json"))
        edges, funnel = find_containment(tables, ContainmentParams())
        funnel_s = time.time() - t
        t = time.time()
        build_catalog(os.path.join(root, "lake"), os.path.join(root, "catalog.json"))
        rescan_s = time.time() - t
        got = {(e["child"], e["parent"]) for e in edges}
        tp = len(got & truth)
        # naive: every pair whose column names are a subset, verified exactly, nothing cached
        schemas = [set(schema_of(x)) for x in tables]
        cand = [(i, j) for i in range(len(tables)) for j in range(len(tables)) if i != j and schemas[i] <= schemas[j]]
        sample = cand if len(cand) <= args.naive_sample else random.Random(0).sample(cand, args.naive_sample)
        t = time.time()
        found = [p for p in sample if naive_check(tables, p)]
        naive_sample_s = time.time() - t
        naive_s = naive_sample_s * len(cand) / max(len(sample), 1)
        naive_pairs = {(tables[i].path, tables[j].path) for i, j in found}
        res = {
            "tables": len(tables),
            "ordered_pairs": funnel["ordered_pairs"],
            "truth_pairs": len(truth),
            "found": len(got),
            "precision": round(tp / max(len(got), 1), 4),
            "recall": round(tp / max(len(truth), 1), 4),
            "funnel": [(s["stage"], s["pairs_left"], s["seconds"]) for s in funnel["stages"]],
            "pruned_before_verification_pct": funnel["pruned_before_verification_pct"],
            "funnel_s": round(funnel_s, 2),
            "rescan_cached_catalog_s": round(rescan_s, 3),
            "naive_candidate_pairs": len(cand),
            "naive_pairs_checked": len(sample),
            "naive_s": round(naive_s, 1),
            "naive_extrapolated": len(sample) < len(cand),
            "naive_agrees_on_checked_pairs": naive_pairs
            == {(tables[i].path, tables[j].path) for i, j in sample if (tables[i].path, tables[j].path) in truth},
            "speedup": round(naive_s / funnel_s, 1),
        }
        results["sizes"][n] = res
        print(json.dumps({n: res}, indent=1), flush=True)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "containment.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    lines = [
        f"Command: `.venv/bin/python bench/containment.py --sizes {args.sizes} --naive-sample {args.naive_sample}`  ",
        f"Machine: {results['machine']}  ",
        f"Date: {results['date']}. One process. Funnel time includes the catalog scan.",
        "",
        "| tables | ordered pairs | planted ⊑ pairs | precision | recall | pairs left: schema / min-max / content / verified | pruned before verification | funnel s | naive s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results["sizes"].items():
        left = " / ".join(f"{p:,}" for _, p, _ in r["funnel"])
        naive = f"{r['naive_s']:,}" + (
            " (extrapolated from " + f"{r['naive_pairs_checked']:,} of {r['naive_candidate_pairs']:,} pairs)" if r["naive_extrapolated"] else ""
        )
        lines.append(
            f"| {n:,} | {r['ordered_pairs']:,} | {r['truth_pairs']:,} | {r['precision']} | {r['recall']} | {left} | "
            f"{r['pruned_before_verification_pct']}% | {r['funnel_s']} | {naive} | {r['speedup']}x |"
        )
    lines += [
        "",
        "Re-scanning an unchanged lake with the catalog cache: "
        + ", ".join(f"{n} tables {r['rescan_cached_catalog_s']} s" for n, r in results["sizes"].items())
        + ".",
    ]
    replace_section(args.markdown, "Containment: funnel vs naive all-pairs", "\n".join(lines))


if __name__ == "__main__":
    main()
