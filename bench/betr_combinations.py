"""Two more ways to keep BETR's classifier on topic without losing the benchmark pages (issue 23),
measured offline on both corpora the choice is judged on, and not adopted (docs/scoring.md).

    .venv/bin/python bench/betr_combinations.py

* **Format AND topic.** The n-gram classifier (which learns the benchmark's format) is combined
  with the maximum cosine of the document's static embedding to any target example (direct
  mode's statistic, which carries every target subject at once), as percentiles: their mean,
  product or minimum.
* **One classifier per benchmark.** The labels are the top 10% of the sample by best rank under
  one benchmark's examples, so one model is fitted per benchmark. The score is the maximum over
  the models of the document's percentile. Run with n-grams and with n-grams + embedding.

Corpora as in bench/betr_hard_negatives.py: bench/betr_topic.py's five MMLU families (ROC-AUC of
the family's held-out questions against the other families' questions, outside the sample;
median of seeds 0-2), and bench/betr_eval.py's corpus (% of held-out MMLU / GSM8K pages in the
corpus's top 10%; seeds 0-2). Random samples of 2,000. Writes bench/results/betr-combinations.json.
"""

from __future__ import annotations

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

COMBINATIONS = {
    "ngrams": lambda c, m: c,
    "max similarity": lambda c, m: m,
    "mean": lambda c, m: (c + m) / 2,
    "product": lambda c, m: c * m,
    "minimum": lambda c, m: np.minimum(c, m),
}
FEATURES = {"ngrams": {"features": "ngrams"}, "ngrams+embedding": {"features": "ngrams+embedding", "max_chars": 1000}}


def percentile(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    out[np.argsort(x, kind="stable")] = np.arange(len(x))
    return out / max(len(x) - 1, 1)


def max_similarity(emb: np.ndarray, target_emb: np.ndarray, block: int = 4096) -> np.ndarray:
    return np.concatenate([(emb[s : s + block] @ target_emb.T).max(1) for s in range(0, len(emb), block)])


def sample_labels(emb, target_emb, sample) -> np.ndarray:
    """The score stage's labels: the sample's top 10% by best rank, ties by maximum similarity."""
    ranks = direct_scores(emb[sample], target_emb)
    return top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])


def classifier_percentile(texts, labels, sample, seed, features) -> np.ndarray:
    """The corpus's percentile under the classifier trained on the sample's labels (the sampled
    documents scored by their cross-fitted scores, as the score stage does)."""
    model, _, crossfit = train_betr_classifier([texts[i] for i in sample], labels, 0.1, QualityModelParams(seed=seed, **FEATURES[features]))
    score = model.score(texts)
    if crossfit is not None:
        score[sample] = crossfit
    return percentile(score)


def topic_rows(embedder) -> dict:
    real = betr_topic.real_text(1500, 400, random.Random(0))
    out: dict = {}
    for family in betr_topic.FAMILIES:
        for seed in (0, 1, 2):
            texts, kind, targets = betr_topic.family_corpus(family, random.Random(seed), 300, 1600, real)
            emb, target_emb = embedder.embed(texts), embedder.embed(targets)
            sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
            outside = np.setdiff1d(np.arange(len(texts)), sample)
            judged = outside[np.isin(kind[outside], ["wanted", "other"])]
            c = classifier_percentile(texts, sample_labels(emb, target_emb, sample), sample, seed, "ngrams")
            m = percentile(max_similarity(emb, target_emb))
            for name, combine in COMBINATIONS.items():
                out.setdefault(name, {}).setdefault(family, []).append(betr_topic.auc(combine(c, m)[judged], kind[judged] == "wanted"))
        print(family, {name: round(float(np.median(v[family])), 3) for name, v in out.items()}, flush=True)
    return out


def eval_rows(embedder) -> dict:
    import polars as pl
    from betr_eval import build

    from connectors.benchmarks import load_examples

    setup = build(tempfile.mkdtemp())
    corpus = pl.read_ndjson(setup["corpus"])
    texts, kind = corpus["text"].to_list(), corpus["kind"].to_numpy()
    emb = embedder.embed(texts)
    examples = load_examples(setup["targets"], role="target")
    target_emb = embedder.embed([x.text for x in examples])
    benchmark = np.array([x.benchmark for x in examples])
    m = percentile(max_similarity(emb, target_emb))

    def pages(score):
        top = np.quantile(score, 0.9)
        return [round(100 * float((score[kind == k] > top).mean())) for k in ("held_mmlu", "held_gsm8k")]

    out: dict = {"benchmarks": {b: int((benchmark == b).sum()) for b in sorted(set(benchmark))}, "combinations": {}, "per_benchmark": {}}
    for seed in (0, 1, 2):
        sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
        c = classifier_percentile(texts, sample_labels(emb, target_emb, sample), sample, seed, "ngrams")
        for name, combine in COMBINATIONS.items():
            out["combinations"].setdefault(name, []).append(pages(combine(c, m)))
        labels = [sample_labels(emb, target_emb[benchmark == b], sample) for b in sorted(set(benchmark))]
        for features in FEATURES:
            per = [classifier_percentile(texts, y, sample, seed, features) for y in labels]
            out["per_benchmark"].setdefault(features, []).append(pages(np.max(per, axis=0)))
        print(seed, {k: v[-1] for k, v in out["combinations"].items()}, {k: v[-1] for k, v in out["per_benchmark"].items()}, flush=True)
    return out


def main() -> int:
    from curation.embedders import get_embedder

    if not os.path.isdir(os.path.join(betr_topic.DATA, "benchmarks", "mmlu")):
        print(f"skipped: {betr_topic.DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return 0
    embedder = get_embedder("static")
    result = {"topic": topic_rows(embedder), "betr_eval": eval_rows(embedder)}
    path = write_result("betr-combinations.json", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
