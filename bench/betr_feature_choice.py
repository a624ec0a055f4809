"""Can BETR's classifier features be chosen from the targets automatically? (issue 23)

    .venv/bin/python bench/betr_feature_choice.py

`ngrams+embedding` keeps the topic of one-subject targets (bench/betr_topic.py) but ranks the
format-matched pages of mixed-subject targets lower (bench/betr_eval.py), so an automatic choice
needs a statistic that tells the two kinds of target set apart. For several target sets on the
corpora of those two benches (and a third corpus: MMLU test questions of every subject and
DCLM pages), this computes on a sample of 2,000 documents labelled as the score stage labels
them (top 10% by best rank): ``centroid``, the ROC-AUC of the labels by each document's cosine to
the targets' mean embedding (one direction: what a linear classifier can add from the
embedding), and ``k16``, the same by the cosine to the nearest of 16 k-means centres of the
targets; ``centroid - k16`` compares the two; ``target_pairwise``, the mean cosine between two
target examples (the targets alone), also on single benchmarks of one format and many topics.
Writes bench/results/betr-feature-choice.json.
"""

from __future__ import annotations

import glob
import json
import os
import random
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import betr_eval  # noqa: E402
import betr_topic  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")


def statistics(emb: np.ndarray, target_emb: np.ndarray, seed: int = 0) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.metrics import roc_auc_score

    from curation.betr import direct_scores, rank_score, top_labels

    sample = np.sort(np.random.default_rng(seed).choice(len(emb), min(2000, len(emb)), replace=False))
    ranks = direct_scores(emb[sample], target_emb)
    y = top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])
    centre = target_emb.mean(axis=0)
    centre /= np.linalg.norm(centre)
    centres = KMeans(16, n_init=3, random_state=0).fit(target_emb).cluster_centers_
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    a1 = float(roc_auc_score(y, emb[sample] @ centre))
    a16 = float(roc_auc_score(y, (emb[sample] @ centres.T).max(axis=1)))
    return {"centroid": round(a1, 3), "k16": round(a16, 3), "centroid_minus_k16": round(a1 - a16, 3), "target_pairwise": target_pairwise(target_emb)}


def target_pairwise(target_emb: np.ndarray, n: int = 1500) -> float:
    """Mean cosine between two different target examples (up to ``n`` of them, seeded): a
    statistic of the targets alone, no corpus needed."""
    x = target_emb / np.linalg.norm(target_emb, axis=1, keepdims=True)
    x = x[np.sort(np.random.default_rng(0).choice(len(x), min(n, len(x)), replace=False))]
    sims = x @ x.T
    return round(float((sims.sum() - np.trace(sims)) / (len(x) * (len(x) - 1))), 3)


def main() -> int:
    from connectors.benchmarks import load_examples, read_examples
    from curation.embedders import get_embedder

    if not os.path.isdir(os.path.join(DATA, "benchmarks", "mmlu")):
        print(f"skipped: {DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return 0
    embedder = get_embedder("static")
    rows = []

    def record(corpus: str, targets: str, kind: str, better: str, emb, target_texts) -> None:
        row = {"corpus": corpus, "targets": targets, "kind": kind, "better_features": better, **statistics(emb, embedder.embed(target_texts))}
        rows.append(row)
        print(json.dumps(row), flush=True)

    # 1. bench/betr_eval.py's corpus: which features rank the held-out pages better is measured there
    with tempfile.TemporaryDirectory() as tmp:
        built = betr_eval.build(tmp)
        texts = [json.loads(line)["text"] for line in open(built["corpus"])]
        emb = embedder.embed(texts)
        sets = {
            "GSM8K + MMLU": (built["targets"], "mixed", "ngrams"),
            "GSM8K": ([built["targets"][0]], "one topic", "either"),
            "MMLU, every subject": (built["targets"][1:], "mixed", "ngrams"),
        }
        for name, (paths, kind, better) in sets.items():
            record("betr_eval", name, kind, better, emb, [e.text for e in load_examples(paths)])
    # 2. bench/betr_topic.py's corpora (seed 0)
    real = betr_topic.real_text(1500, 400, random.Random(0))
    subjects = sorted(os.path.basename(p)[: -len("_dev.csv")] for p in glob.glob(os.path.join(DATA, "benchmarks", "mmlu", "dev", "*.csv")))
    for family, family_subjects in betr_topic.FAMILIES.items():
        texts, _, targets = betr_topic.family_corpus(family, random.Random(0), 300, 1600, real)
        emb = embedder.embed(texts)
        record(f"betr_topic ({family})", f"MMLU {family}", "one topic", "ngrams+embedding", emb, targets)
        if family == "math":
            record("betr_topic (math)", "MMLU, every subject", "mixed", "-", emb, betr_topic.questions(subjects, ("dev", "val")))
            record(
                "betr_topic (math)",
                "MMLU math + law",
                "two topics",
                "-",
                emb,
                betr_topic.questions(family_subjects + betr_topic.FAMILIES["law"], ("dev", "val")),
            )
    # 3. MMLU test questions of every subject (math oversampled) and DCLM pages
    rng = random.Random(0)

    def questions(split: str, names: list[str], per: int | None = None) -> list[str]:
        out = []
        for s in names:
            qs = [e.text for e in read_examples(os.path.join(DATA, "benchmarks", "mmlu", split, f"{s}_{split}.csv"))]
            out += rng.sample(qs, min(per, len(qs))) if per else qs
        return out

    math = betr_topic.FAMILIES["math"]
    with open(os.path.join(DATA, "webtext", "dclm_human_quality", "majority_data.jsonl"), encoding="utf-8") as fh:
        web = [t for t in (json.loads(line).get("text", "") for line in fh) if len(t) > 200][:1200]
    corpus = questions("test", math, 40) + questions("test", [s for s in subjects if s not in math], 15) + web
    emb = embedder.embed(corpus)
    record("MMLU test + DCLM", "MMLU math", "one topic", "-", emb, questions("dev", math) + questions("val", math))
    record("MMLU test + DCLM", "MMLU, every subject", "mixed", "-", emb, questions("dev", subjects) + questions("val", subjects))
    # 4. single benchmarks that are one format but many topics (no corpus: the targets-only statistic)
    from connectors.benchmarks import read_examples as read

    foundry = os.path.join(DATA, "benchmarks", "llm_foundry_eval")
    for name in (
        "commonsense_reasoning/commonsense_qa",
        "commonsense_reasoning/siqa",
        "commonsense_reasoning/piqa",
        "world_knowledge/arc_easy",
        "world_knowledge/jeopardy_all",
        "reading_comprehension/boolq",
    ):
        texts = [e.text for e in read(os.path.join(foundry, f"{name}.jsonl"))][:2000]
        row = {
            "corpus": "-",
            "targets": os.path.basename(name),
            "kind": "one format, many topics",
            "better_features": "-",
            "target_pairwise": target_pairwise(embedder.embed(texts)),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "betr-feature-choice.json"), "w") as fh:
        json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
