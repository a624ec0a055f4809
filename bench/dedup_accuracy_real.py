"""Near-dup accuracy of `tierlake dedup` on real text, against exact Jaccard ground truth.

    .venv/bin/python bench/dedup_accuracy_real.py [--threshold 0.8]

(1) webtext: every document of ../shared/data/webtext (Dolma CC sample, DCLM human-quality set)
    with at least 50 words, plus one planted copy of each with word substitutions, deletions and
    insertions at a rate drawn so the copy's Jaccard spreads over [0.5, 1]; exact Jaccard of every
    planted pair is computed with tierlake's shingling.
(2) PAN: the 10,000 + 3,000 labelled passage pairs (../shared/data/neardup); each passage is a
    document. Ground truth for precision/recall is the exact Jaccard of the pair at the threshold;
    how many human-labelled plagiarism pairs reach it is reported beside (MinHash at 0.8 is not a
    paraphrase detector).

Pair recall = planted pairs with J >= t + 0.05 (and, separately, [t, t + 0.05)) that end in one
cluster. Edge precision = removed documents whose exact Jaccard with the document they point to
is >= t. Cluster-pair precision = all pairs inside predicted clusters with J >= t (lower when
clusters chain through intermediate documents).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))

from curation.minhash import jaccard_of_texts  # noqa: E402


def load_webtext() -> list[str]:
    texts = []
    folder = os.path.join(SHARED, "webtext")
    for dirpath, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            opener = gzip.open if f.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and isinstance(rec.get("text"), str) and len(rec["text"].split()) >= 50:
                        texts.append(rec["text"])
    return list(dict.fromkeys(texts))


def edit(text: str, target: float, rng: random.Random) -> str:
    q = 2 * target / (1 + target)
    rate = 1 - q ** (1 / 5)
    words = text.split(" ")
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # deletion
        if r < 2 * rate / 3:
            out.append(rng.choice(words))  # substitution by another word of the document
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(["the", "and", "very", "also", "new"]))  # insertion
    return " ".join(out)


def run(docs: list[dict], threshold: float, workdir: str, spark_master: str = "local[2]") -> tuple[dict, dict]:
    import pyarrow.parquet as pq

    from connectors.spark_session import SparkSettings
    from curation.params import ExactDedupParams, NearDedupParams
    from flows.dedup_job import run_dedup

    inp = os.path.join(workdir, "input.jsonl")
    with open(inp, "w") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    out = os.path.join(workdir, "out")
    stats = run_dedup(
        inp,
        out,
        ExactDedupParams(),
        NearDedupParams(threshold=threshold, num_perm=112, bands=14, rows=8),
        id_column="id",
        spark_settings=SparkSettings(master=spark_master),
    )
    removed = pq.read_table(os.path.join(out, "removed")).to_pylist()
    return stats, {r["id"]: r["duplicate_of"] for r in removed if r["duplicate_of"]}


def clusters_of(parent: dict) -> dict[str, str]:
    def root(x):
        seen = 0
        while x in parent and seen < 1000:
            x, seen = parent[x], seen + 1
        return x

    return {x: root(x) for x in parent}


def precision(parent: dict, text: dict, threshold: float) -> dict:
    edges_ok = sum(jaccard_of_texts(text[c], text[p]) >= threshold for c, p in parent.items())
    root = clusters_of(parent)
    groups: dict[str, set] = {}
    for c, r in root.items():
        groups.setdefault(r, {r}).add(c)
    ok = total = 0
    for members in groups.values():
        for a, b in itertools.combinations(sorted(members), 2):
            total += 1
            ok += jaccard_of_texts(text[a], text[b]) >= threshold
    return {
        "removed": len(parent),
        "edge_precision": round(edges_ok / len(parent), 4) if parent else None,
        "cluster_pairs": total,
        "cluster_pair_precision": round(ok / total, 4) if total else None,
    }


def recall(pairs: list[tuple[str, str, float]], parent: dict, threshold: float) -> dict:
    root = clusters_of(parent)

    def same(a, b):
        return root.get(a, a) == root.get(b, b)

    out = {}
    for name, lo, hi in (
        ("J<t-0.05", 0.0, threshold - 0.05),
        ("[t-0.05,t)", threshold - 0.05, threshold),
        ("[t,t+0.05)", threshold, threshold + 0.05),
        ("J>=t+0.05", threshold + 0.05, 1.01),
    ):
        sel = [(a, b) for a, b, j in pairs if lo <= j < hi]
        hit = sum(same(a, b) for a, b in sel)
        out[name] = {"pairs": len(sel), "same_cluster": hit, "rate": round(hit / len(sel), 4) if sel else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=0.8)
    args = ap.parse_args()
    if not os.path.isdir(SHARED):
        sys.exit(f"shared data not found at {SHARED}")
    t = args.threshold
    rng = random.Random(0)
    report = {}
    # (1) real web text with planted edits
    originals = load_webtext()
    docs, text, pairs = [], {}, []
    for i, body in enumerate(originals):
        oid, cid = f"w{i:05d}", f"w{i:05d}-copy"
        copy = edit(body, rng.uniform(0.5, 1.0), rng)
        docs += [{"id": oid, "text": body}, {"id": cid, "text": copy}]
        text[oid], text[cid] = body, copy
        pairs.append((oid, cid, jaccard_of_texts(body, copy)))
    with tempfile.TemporaryDirectory() as tmp:
        stats, parent = run(docs, t, tmp)
    parent = {c: p for c, p in parent.items()}
    report["webtext"] = {
        "documents": len(docs),
        "planted_pairs": len(pairs),
        **precision(parent, text, t),
        "recall": recall(pairs, parent, t),
        "edges_dropped_by_verification": stats["stages"][2]["details"]["edges_dropped_by_verification"],
    }
    # (2) PAN pairs
    pan = os.path.join(SHARED, "neardup", "pan_mtmetrics_plagiarism_pairs")
    docs, text, pairs, labels = [], {}, [], []
    for split in ("train", "test"):
        s1 = open(os.path.join(pan, f"pan-{split}_s1.txt"), encoding="utf-8", errors="replace").read().split("\n")
        s2 = open(os.path.join(pan, f"pan-{split}_s2.txt"), encoding="utf-8", errors="replace").read().split("\n")
        lab = open(os.path.join(pan, f"pan-{split}.labels")).read().split()
        for k, (a, b, y) in enumerate(zip(s1, s2, lab)):
            ia, ib = f"{split}{k}a", f"{split}{k}b"
            docs += [{"id": ia, "text": a}, {"id": ib, "text": b}]
            text[ia], text[ib] = a, b
            pairs.append((ia, ib, jaccard_of_texts(a, b)))
            labels.append(int(y))
    with tempfile.TemporaryDirectory() as tmp:
        stats, parent = run(docs, t, tmp)
    root = clusters_of(parent)
    same = [root.get(a, a) == root.get(b, b) for a, b, _ in pairs]
    pos = [j >= t for _, _, j in pairs]
    tp = sum(s and p for s, p in zip(same, pos))
    report["pan"] = {
        "pairs": len(pairs),
        "pairs_with_J>=t": sum(pos),
        "pair_precision_vs_exact_jaccard": round(tp / sum(same), 4) if sum(same) else None,
        "pair_recall_vs_exact_jaccard": round(tp / sum(pos), 4) if sum(pos) else None,
        "plagiarism_pairs": sum(labels),
        "plagiarism_pairs_found": sum(s and y for s, y in zip(same, labels)),
        "non_plagiarism_pairs_merged": sum(s and not y for s, y in zip(same, labels)),
        **precision(parent, text, t),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
