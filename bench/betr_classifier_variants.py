"""BETR classifier variants on the BETR benchmark corpus, offline (numpy, no Spark).

    .venv/bin/python bench/betr_classifier_variants.py [--samples 9] [--size 2000]

Same corpus and targets as bench/betr_eval.py (real text plus pages written from held-out GSM8K
and MMLU items). For each of ``--samples`` random samples of ``--size`` documents: exact best
ranks against the targets, top-10% labels (ties by max similarity), then three classifiers:

* one balanced draw of negatives, refit on the whole sample (tierlake before 2026-11-30);
* balanced bagging over every negative (:func:`curation.betr.fit_bagged`);
* balanced bagging + cross-fitting (:func:`curation.betr.train_betr_classifier`, the stage's).

Reports the held-out ROC-AUC against the direct labels and the share of held-out-item pages in the
corpus's top 10% and above the real documents' 90th percentile; medians and worst sample. This is
the measurement behind the "Why bagging and cross-fitting" table of docs/scoring.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import polars as pl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from betr_eval import build  # noqa: E402


def coverage(score: np.ndarray, kind: np.ndarray) -> dict:
    top = np.quantile(score, 0.9)
    real = np.quantile(score[kind == "real"], 0.9)
    return {
        f"{k}_{name}": round(100 * float((score[kind == k] > t).mean()), 1)
        for k in ("held_gsm8k", "held_mmlu")
        for name, t in (("top10", top), ("real_p90", real))
    }


def main() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from connectors.benchmarks import load_examples
    from curation.betr import balanced_bags, direct_scores, fit_bagged, rank_score, top_labels, train_betr_classifier
    from curation.embedders import get_embedder
    from curation.params import QualityModelParams
    from curation.quality_model import _classifier, _features, probability

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--size", type=int, default=2000)
    args = ap.parse_args()
    setup = build(tempfile.mkdtemp(prefix="betr-variants-"))
    corpus = pl.read_ndjson(setup["corpus"])
    texts, kind = corpus["text"].to_list(), corpus["kind"].to_numpy()
    embedder = get_embedder("static")
    doc_emb = embedder.embed(texts)
    target_emb = embedder.embed([e.text for e in load_examples(setup["targets"], role="target")])
    x_all = _features(texts, QualityModelParams())
    rows = []
    for seed in range(args.samples):
        p = QualityModelParams(seed=seed)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(texts), args.size, replace=False))
        direct = direct_scores(doc_emb[sample], target_emb)
        labels = top_labels(rank_score(direct["best_rank"]), 0.1, tiebreak=direct["max_sim"])
        xs = x_all[sample]
        train, test = train_test_split(np.arange(len(sample)), test_size=0.2, stratify=labels, random_state=seed)

        def single_draw(idx: np.ndarray):
            bag = balanced_bags(idx, labels, np.random.default_rng(seed))[0]
            clf = _classifier(p).fit(xs[bag], labels[bag])
            return clf.coef_.ravel(), float(clf.intercept_[0])

        def bagged(idx: np.ndarray):
            return fit_bagged(xs, labels, idx, p, np.random.default_rng(seed))

        for name, fit in (("single draw", single_draw), ("bagging", bagged)):
            coef, b = fit(train)
            auc = roc_auc_score(labels[test], xs[test] @ coef + b)
            coef, b = fit(np.arange(len(sample)))
            rows.append({"seed": seed, "classifier": name, "heldout_auc": round(float(auc), 3), **coverage(probability(x_all @ coef + b), kind)})
        model, metrics, crossfit = train_betr_classifier([texts[i] for i in sample], labels, 0.1, p)
        score = model.score(texts)
        score[sample] = crossfit
        rows.append({"seed": seed, "classifier": "bagging + cross-fitting", "heldout_auc": round(metrics["heldout_auc"], 3), **coverage(score, kind)})
        print(json.dumps(rows[-3:]), flush=True)
    df = pl.DataFrame(rows)
    summary = df.group_by("classifier", maintain_order=True).agg(
        *[pl.col(c).median().alias(f"{c}_median") for c in df.columns[2:]], *[pl.col(c).min().alias(f"{c}_min") for c in df.columns[2:]]
    )
    print("| classifier | held-out AUC | GSM8K in the top 10% | MMLU in the top 10% | MMLU above the real 90th percentile |")
    print("|---|---|---|---|---|")
    for r in summary.iter_rows(named=True):
        print(
            f"| {r['classifier']} | {r['heldout_auc_median']:.3f} ({r['heldout_auc_min']:.3f}) | "
            f"{r['held_gsm8k_top10_median']:.0f}% ({r['held_gsm8k_top10_min']:.0f}%) | "
            f"{r['held_mmlu_top10_median']:.0f}% ({r['held_mmlu_top10_min']:.0f}%) | "
            f"{r['held_mmlu_real_p90_median']:.0f}% ({r['held_mmlu_real_p90_min']:.0f}%) |"
        )
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "betr-classifier-variants.json"), "w") as fh:
        json.dump({"samples": args.samples, "size": args.size, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
