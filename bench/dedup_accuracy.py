"""Pair precision/recall of a tierlake run's dedup against the demo lake's ground truth.

    python bench/dedup_accuracy.py WORKDIR [--threshold 0.8]

Predicted duplicates = documents that end in the same cluster (following ``duplicate_of`` chains
through exact then near dedup). Recall is over planted near-duplicate pairs, by their exact
word-5-gram Jaccard; precision is over every predicted pair, scored by exact Jaccard of the
original texts. Only sources with given ids (encyclopedia, forum, mathcourse) are scored: the
webcrawl source has derived ids, which the ground truth does not record.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import pyarrow.parquet as pq

from curation.minhash import jaccard_of_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir")
    ap.add_argument("--threshold", type=float, default=0.8)
    args = ap.parse_args()
    out, lake = os.path.join(args.workdir, "output"), os.path.join(args.workdir, "lake")
    removed = pq.read_table(os.path.join(out, "removed"), columns=["id", "duplicate_of", "kind"]).to_pylist()
    parent = {r["id"]: r["duplicate_of"] for r in removed if r["duplicate_of"]}

    def cluster(x):
        seen = 0
        while x in parent and seen < 100:
            x, seen = parent[x], seen + 1
        return x

    truth = pq.read_table(os.path.join(lake, "ground_truth", "documents.parquet")).to_pylist()
    scored_sources = {"encyclopedia", "forum", "mathcourse"}
    near = [t for t in truth if t["kind"] == "near_duplicate" and t["source"] in scored_sources]
    bins = [(0.5, 0.7), (0.7, args.threshold), (args.threshold, args.threshold + 0.05), (args.threshold + 0.05, 1.01)]
    recall = {}
    for lo, hi in bins:
        pairs = [t for t in near if lo <= t["jaccard"] < hi]
        hit = sum(cluster(t["key"]) == cluster(t["dup_of"]) for t in pairs)
        recall[f"[{lo:.2f},{min(hi, 1.0):.2f})"] = {"pairs": len(pairs), "found": hit, "rate": round(hit / len(pairs), 4) if pairs else None}
    # precision over predicted pairs among scored sources (texts from the lake files)
    texts = {}
    for src, col in (("encyclopedia", "doc_id"), ("forum", "id")):
        import glob

        for f in sorted(glob.glob(os.path.join(lake, "corpus", src, "*"))):
            if f.endswith(".zst"):
                import zstandard

                data = zstandard.ZstdDecompressor().decompressobj().decompress(open(f, "rb").read())
            else:
                import gzip

                data = gzip.decompress(open(f, "rb").read())
            for line in data.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("text") is not None:
                    texts[rec[col]] = rec["text"]
    clusters: dict[str, list[str]] = {}
    for r in removed:
        if r["kind"] == "near" and r["id"] in texts:
            clusters.setdefault(cluster(r["id"]), []).append(r["id"])
    tp = fp = 0
    for root, members in clusters.items():
        group = [m for m in set(members + [root]) if m in texts]
        for x, y in itertools.combinations(group, 2):
            if jaccard_of_texts(texts[x], texts[y]) >= args.threshold:
                tp += 1
            else:
                fp += 1
    report = {
        "threshold": args.threshold,
        "recall_by_jaccard": recall,
        "near_pairs_predicted": tp + fp,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
