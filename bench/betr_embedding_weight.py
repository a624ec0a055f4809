"""The n-grams + embedding classifier on the BETR benchmark corpus (bench/betr_eval.py's): how many
held-out MMLU pages reach the corpus's top 10% as the embedding block's weight and the characters
read change, and the n-grams + kernel classifier (docs/scoring.md, "BETR on topic"). Offline, no Spark: random samples of 2,000, seeds 0-2.

    .venv/bin/python bench/betr_embedding_weight.py ["ngrams,ng+kernel g10"]   # every variant, or these

Prints per seed: (held-out AUC vs the direct labels, % MMLU pages in the top 10%, % GSM8K pages in
the top 10%, % MMLU pages above the real documents' 90th percentile) per variant.
"""

import os
import sys
import tempfile

import numpy as np
import polars as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from betr_eval import build  # noqa: E402

from connectors.benchmarks import load_examples  # noqa: E402
from curation.betr import direct_scores, rank_score, top_labels, train_betr_classifier  # noqa: E402
from curation.embedders import get_embedder  # noqa: E402
from curation.params import QualityModelParams  # noqa: E402

VARIANTS = {
    "ngrams": dict(features="ngrams"),
    "ng+emb w1 c1000": dict(features="ngrams+embedding", max_chars=1000),
    "ng+emb w1 c4000": dict(features="ngrams+embedding", max_chars=4000),
    "ng+emb w0.5 c1000": dict(features="ngrams+embedding", max_chars=1000, embedding_weight=0.5),
    "ng+emb w0.3 c1000": dict(features="ngrams+embedding", max_chars=1000, embedding_weight=0.3),
    "ng+kernel g10": dict(features="ngrams+kernel", max_chars=100_000),
    "ng+kernel g20": dict(features="ngrams+kernel", max_chars=100_000, kernel_gamma=20),
    "ng2000+kernel g10": dict(features="ngrams+kernel"),  # the default: n-grams of the first 2,000 characters
    "ng2000": dict(features="ngrams", max_chars=2000),
    "ng2000+kernel g10 w0.7": dict(features="ngrams+kernel", embedding_weight=0.7),
    "ng2000+kernel g10 w0.5": dict(features="ngrams+kernel", embedding_weight=0.5),
}


def main() -> None:
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(VARIANTS)  # e.g. "ngrams,ng+kernel g10"
    setup = build(tempfile.mkdtemp())
    corpus = pl.read_ndjson(setup["corpus"])
    texts, kind = corpus["text"].to_list(), corpus["kind"].to_numpy()
    e = get_embedder("static")
    emb = e.embed(texts)
    temb = e.embed([x.text for x in load_examples(setup["targets"], role="target")])
    for seed in (0, 1, 2):
        sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
        d = direct_scores(emb[sample], temb)
        labels = top_labels(rank_score(d["best_rank"]), 0.1, tiebreak=d["max_sim"])
        row = {}
        for name in names:
            kw = VARIANTS[name]
            model, m, cf = train_betr_classifier([texts[i] for i in sample], labels, 0.1, QualityModelParams(seed=seed, **kw))
            s = model.score(texts)
            s[sample] = cf
            top, real = np.quantile(s, 0.9), np.quantile(s[kind == "real"], 0.9)
            row[name] = (
                round(m["heldout_auc"], 3),
                round(100 * float((s[kind == "held_mmlu"] > top).mean())),
                round(100 * float((s[kind == "held_gsm8k"] > top).mean())),
                round(100 * float((s[kind == "held_mmlu"] > real).mean())),
            )
        print(seed, row, flush=True)


if __name__ == "__main__":
    main()
