"""BETR's classifier with hard negatives (issue 23's third option), on both corpora it is judged on.

    .venv/bin/python bench/betr_hard_negatives.py

Hard negatives: the sample's documents labelled negative that a first classifier (hashed n-grams,
first 2,000 characters, bagged and cross-fitted as the score stage fits it) scores in the sample's
top 20% — documents that look like positives to the n-grams, in practice same-format questions the
similarity ranks put below the top 10%. The second classifier is fit with each of them counted
``--weight`` times. (Defined first as "in the top 10% by the classifier and below the median
similarity to the targets"; that found 0-1 documents per sample: same-format questions are close to
the targets in static-embedding space too.)

Measured, offline (numpy, no Spark), random samples of 2,000:
* bench/betr_topic.py's corpora (five MMLU families; seeds 0-2): ROC-AUC of the family's held-out
  questions against the other families' questions, over documents outside the sample;
* bench/betr_eval.py's corpus (targets GSM8K + MMLU; seeds 0-2): % of held-out MMLU and GSM8K
  pages in the corpus's top 10%.
Writes bench/results/betr-hard-negatives.json; docs/scoring.md, "BETR on topic", reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import betr_topic  # noqa: E402
from bench_markdown import write_result  # noqa: E402

from curation.betr import direct_scores, rank_score, top_labels, train_betr_classifier  # noqa: E402
from curation.params import QualityModelParams  # noqa: E402


def fit_pair(texts: list[str], labels: np.ndarray, seed: int, weight: int, quantile: float):
    """(plain classifier, classifier with hard negatives counted ``weight`` times, hard negatives)."""
    params = QualityModelParams(seed=seed, features="ngrams", max_chars=2000)
    plain, _, crossfit = train_betr_classifier(texts, labels, 0.1, params)
    hard = np.flatnonzero((labels == 0) & (crossfit >= np.quantile(crossfit, quantile)))
    extra = [texts[i] for i in hard] * (weight - 1)
    weighted, _, _ = train_betr_classifier(texts + extra, np.concatenate([labels, np.zeros(len(extra), np.int64)]), 0.1, params)
    return plain, weighted, len(hard)


def topic_rows(seeds, weight, quantile, embedder) -> list[dict]:
    real = betr_topic.real_text(1500, 400, random.Random(0))
    rows = []
    for family in betr_topic.FAMILIES:
        for seed in seeds:
            texts, kind, targets = betr_topic.family_corpus(family, random.Random(seed), 300, 1600, real)
            emb, target_emb = embedder.embed(texts), embedder.embed(targets)
            sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
            ranks = direct_scores(emb[sample], target_emb)
            labels = top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])
            outside = np.setdiff1d(np.arange(len(texts)), sample)
            judged = outside[np.isin(kind[outside], ["wanted", "other"])]
            plain, weighted, n_hard = fit_pair([texts[i] for i in sample], labels, seed, weight, quantile)
            row = {"family": family, "seed": seed, "hard_negatives": n_hard}
            for name, model in (("ngrams", plain), ("ngrams + hard negatives", weighted)):
                row[name] = betr_topic.auc(model.score([texts[i] for i in judged]), kind[judged] == "wanted")
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def eval_rows(seeds, weight, quantile, embedder) -> list[dict]:
    import polars as pl
    from betr_eval import build

    from connectors.benchmarks import load_examples

    setup = build(tempfile.mkdtemp())
    corpus = pl.read_ndjson(setup["corpus"])
    texts, kind = corpus["text"].to_list(), corpus["kind"].to_numpy()
    emb = embedder.embed(texts)
    target_emb = embedder.embed([x.text for x in load_examples(setup["targets"], role="target")])
    rows = []
    for seed in seeds:
        sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
        ranks = direct_scores(emb[sample], target_emb)
        labels = top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])
        plain, weighted, n_hard = fit_pair([texts[i] for i in sample], labels, seed, weight, quantile)
        row = {"seed": seed, "hard_negatives": n_hard}
        for name, model in (("ngrams", plain), ("ngrams + hard negatives", weighted)):
            score = model.score(texts)
            top = np.quantile(score, 0.9)
            row[name] = {
                "mmlu_pages_top10": float((score[kind == "held_mmlu"] > top).mean()),
                "gsm8k_pages_top10": float((score[kind == "held_gsm8k"] > top).mean()),
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    from curation.embedders import get_embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--weight", type=int, default=4, help="times each hard negative counts")
    ap.add_argument("--quantile", type=float, default=0.8, help="hard negatives score above this quantile of the sample")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(betr_topic.DATA, "benchmarks", "mmlu")):
        print(f"skipped: {betr_topic.DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    embedder = get_embedder("static")
    out = {
        "weight": args.weight,
        "quantile": args.quantile,
        "topic": topic_rows(seeds, args.weight, args.quantile, embedder),
        "betr_eval": eval_rows(seeds, args.weight, args.quantile, embedder),
    }
    write_result("betr-hard-negatives.json", out)
    for name in ("ngrams", "ngrams + hard negatives"):
        by_family = {f: float(np.median([r[name] for r in out["topic"] if r["family"] == f])) for f in betr_topic.FAMILIES}
        mmlu = [round(100 * r[name]["mmlu_pages_top10"]) for r in out["betr_eval"]]
        gsm = [round(100 * r[name]["gsm8k_pages_top10"]) for r in out["betr_eval"]]
        print(f"{name}: topic {json.dumps({k: round(v, 3) for k, v in by_family.items()})}, MMLU pages {mmlu}%, GSM8K pages {gsm}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
