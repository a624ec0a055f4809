"""Training BETR's classifier on the score stage's sample: fitting on the hashed columns the sample
uses (``curation.quality_model.fit_logistic``) against fitting liblinear on all 2^20 columns (the
code before 2026-12-06), on the same sample, labels and folds, in one run.

    .venv/bin/python bench/betr_training.py [--sample 2000] [--repeat 3]

The sample is the one the score stage trains on: ``--sample`` documents of betr_eval's corpus
(real web text, held-out benchmark items; ../shared/data), embedded with the static embedder and
labelled top 10% by their direct ranks against the targets, exactly as in sample mode. Both
variants run ``train_betr_classifier`` (a held-out fit and 5 cross-fitting folds, each a bag of
balanced logistic regressions), alternating, ``--repeat`` times; the table gives medians, the
largest difference of the models' coefficients and of the cross-fitted scores, and whether the
reported metrics are identical. Writes bench/results/betr-training.json and the "BETR classifier
training" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section, write_result  # noqa: E402
from betr_eval import DATA, build  # noqa: E402
from dedup import machine  # noqa: E402


def full_column_fit(p, x, y):
    """The previous fit: liblinear on every hashed column."""
    from curation.quality_model import _classifier

    clf = _classifier(p).fit(x, y)
    return clf.coef_.ravel(), float(clf.intercept_[0])


def sample_and_labels(sample: int):
    from connectors.benchmarks import load_examples
    from curation.betr import direct_scores, rank_score, top_labels
    from curation.embedders import get_embedder
    from curation.params import ScoreParams

    with tempfile.TemporaryDirectory() as tmp:
        corpus = build(tmp)
        docs = [json.loads(line) for line in open(corpus["corpus"])]
        params = ScoreParams(targets=corpus["targets"], sample=sample)
        targets = [e.text for e in load_examples(params.targets, role="target")]
    rng = np.random.default_rng(0)
    texts = [docs[i]["text"] for i in np.sort(rng.choice(len(docs), size=min(sample, len(docs)), replace=False))]
    embedder = get_embedder(params.embedder)
    direct = direct_scores(embedder.embed(texts), embedder.embed(targets))
    labels = top_labels(rank_score(direct["best_rank"]), params.top_p, tiebreak=direct["max_sim"])
    return texts, labels, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} is absent (real text and benchmarks for the sample)")
        return
    import curation.betr as betr

    texts, labels, params = sample_and_labels(args.sample)
    clf_params = params.classifier.model_copy(update={"seed": params.seed, "embedder": params.embedder})
    used_columns = None
    runs: dict[str, list[float]] = {"used columns": [], "all columns": []}
    out: dict[str, tuple] = {}
    compact = betr.fit_logistic
    for _ in range(args.repeat):
        for name, fit in (("all columns", full_column_fit), ("used columns", compact)):
            betr.fit_logistic = fit
            t = time.perf_counter()
            model, metrics, crossfit = betr.train_betr_classifier(texts, labels, params.top_p, clf_params, params.holdout, params.folds)
            runs[name].append(time.perf_counter() - t)
            out[name] = (model.coef.astype(np.float64), crossfit, metrics)
    betr.fit_logistic = compact
    from curation.quality_model import _features

    used_columns = int(len(np.unique(_features(texts, clf_params).indices)))
    new, old = out["used columns"], out["all columns"]
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "sample": len(texts),
        "positives": int(labels.sum()),
        "hashed_columns": clf_params.n_features,
        "used_columns": used_columns,
        "seconds": runs,
        "median_seconds": {k: statistics.median(v) for k, v in runs.items()},
        "max_coef_difference": float(np.abs(new[0] - old[0]).max()),
        "max_crossfit_difference": float(np.abs(new[1] - old[1]).max()),
        "metrics_identical": new[2] == old[2],
        "metrics": new[2],
    }
    write_result("betr-training.json", result, indent=2)
    m = result["median_seconds"]
    body = f"""Command: `.venv/bin/python bench/betr_training.py --sample {args.sample} --repeat {args.repeat}`
Machine: {result["machine"]}
Date: {result["date"]}. One process; `bench/results/betr-training.json`.

The score stage's classifier (sample mode) on {result["sample"]:,} documents of the BETR corpus
above, {result["positives"]} labelled positive by their direct ranks: a held-out fit and 5
cross-fitting folds, each a bag of balanced L2 logistic regressions (liblinear). The sample uses
{used_columns:,} of the {result["hashed_columns"]:,} hashed n-gram columns.

| fit | seconds (median of {args.repeat}) | runs |
|---|---|---|
| liblinear on all {result["hashed_columns"]:,} columns (before) | {m["all columns"]:.2f} | {", ".join(f"{v:.2f}" for v in runs["all columns"])} |
| liblinear on the {used_columns:,} used columns (`fit_logistic`) | **{m["used columns"]:.2f}** | {", ".join(f"{v:.2f}" for v in runs["used columns"])} |

Speed-up {m["all columns"] / m["used columns"]:.1f}x. Same model: the largest coefficient
difference is {result["max_coef_difference"]:.1e} and the largest cross-fitted score difference
{result["max_crossfit_difference"]:.1e} (the solver's rounding); the reported metrics are
{"identical" if result["metrics_identical"] else "not identical"} (held-out AUC
{new[2].get("heldout_auc", float("nan")):.4f}, cross-fitted AUC {new[2].get("crossfit_auc", float("nan")):.4f}).
"""
    replace_section(args.markdown, "BETR classifier training", body)
    print(body)


if __name__ == "__main__":
    main()
