"""Benchmark-targeted ranking (BETR; Mizrahi et al. 2025, "Language Models Improve When
Pretraining Data Matches Target Tasks", arXiv 2507.12466), the kernels without Spark.

1. Each target example and each sampled document is embedded in one space (§3.3).
2. Example i ranks the sampled documents by cosine: r_ij (1 = most similar). A document's score is
   its best rank under any example, S_j = max_i v(r_ij) with v decreasing (§3.4, "rank, then
   max"); :func:`direct_scores` also gives the max similarity and the mean of v(r) = log2(1/r) for
   comparison (the paper's ablation: max 62.2 vs mean 58.2).
3. The top p% (10%) of the sample are positives, the rest negatives downsampled to balance
   (§3.5); a light classifier learns them and scores the whole corpus.

Ranks are exact: targets are processed in blocks, each block's similarity matrix is one matrix
product and one argsort per row. Departures:

* the classifier is a logistic regression (:mod:`curation.quality_model`) on hashed word 1-2-grams
  instead of fastText bigrams. fastText (``fasttext-numpy2``, the paper's hyperparameters and
  tuned ones) was measured on the same labels and was no better. On a few thousand labels the
  n-grams learn the targets' format more than their topic (ROC-AUC 0.85–0.96 against same-format
  questions of other subjects); the option ``features="ngrams+kernel"`` (RBF kernel features of
  each document's static embedding, first 1,000 characters, against 2,000 sampled documents,
  beside the n-grams) reaches 0.96–0.99 there, above direct mode, but ranks format-matched pages
  of mixed-subject targets lower, so it is not the default (docs/scoring.md, "BETR on topic");
* several target benchmarks: the paper's Target-Core takes equal examples per benchmark; tierlake
  keeps every example and balances the labels instead (:func:`quota_labels`: the top p% taken
  round-robin over the benchmarks, each by its own best ranks), which put more of the held-out
  MMLU pages in the top 10% than one ranking or equal examples did (docs/scoring.md, "Balanced
  over benchmarks");
* negatives are downsampled to balance as in the paper, but into *every* balanced draw rather
  than one: the negatives are split into disjoint parts of the positives' size, one model is fit
  per part with all positives, and the models are averaged (balanced bagging, "EasyEnsemble",
  Liu, Wu & Zhou 2009). A single draw keeps only as many negatives as there are positives
  (1 in 9 at p = 10%) and makes the model depend on which ones were drawn; the average
  of linear models is one linear model, so scoring costs the same (imbalanced-learn's
  ``BalancedBaggingClassifier`` draws random subsets and averages probabilities, which would
  ship an ensemble object instead of one weight vector);
* cross-fitting: the sample is split into k folds, each fold's documents are scored by the
  (bagged) model fit on the other folds, and the shipped model is the average of the fold models.
  The paper's 10M-document sample is < 0.1% of its pool, so how the classifier scores its own
  training documents does not matter there; on a smaller corpus the sample is a large share of
  it, and a model refit on the whole sample would hand its sampled documents their own — partly
  noisy — labels back. With cross-fitting no document's score comes from a model that saw it;
* the embedder is a packaged offline model (:mod:`curation.embedders`) instead of Arctic-Embed
  L 2.0, which the paper shows matters little.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from curation.quality_model import (
    QualityModel,
    QualityModelParams,
    fit_logistic,
    probability,
    training_features,
)


def direct_scores(doc_emb: np.ndarray, target_emb: np.ndarray, block: int = 128) -> dict[str, np.ndarray]:
    """Per document: ``best_rank`` (1 = top under some example), ``max_sim``, ``mean_log_rank``
    (mean over examples of log2(1/r)). Embeddings must be L2-normalized."""
    n = doc_emb.shape[0]
    best = np.full(n, n + 1, np.int64)
    max_sim = np.full(n, -np.inf, np.float32)
    sum_v = np.zeros(n, np.float64)
    rank_values = np.arange(1, n + 1, dtype=np.int64)
    for start in range(0, target_emb.shape[0], block):
        sims = target_emb[start : start + block] @ doc_emb.T  # (b, n)
        order = np.argsort(-sims, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.broadcast_to(rank_values, order.shape), axis=1)
        np.minimum(best, ranks.min(axis=0), out=best)
        np.maximum(max_sim, sims.max(axis=0), out=max_sim)
        sum_v -= np.log2(ranks).sum(axis=0)
    return {"best_rank": best, "max_sim": max_sim.astype(np.float64), "mean_log_rank": sum_v / max(target_emb.shape[0], 1)}


def rank_score(best_rank: np.ndarray) -> np.ndarray:
    """Best rank as a score in (0, 1], higher = closer: 1 - (r - 1) / n."""
    n = max(len(best_rank), 1)
    return 1.0 - (best_rank - 1) / n


def top_labels(score: np.ndarray, top_p: float, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """1 for the top ``top_p`` fraction by ``score`` (ties broken by ``tiebreak``, then index)."""
    n = len(score)
    k = max(1, int(round(top_p * n))) if n else 0
    keys = (np.arange(n), -(tiebreak if tiebreak is not None else np.zeros(n)), -score)
    order = np.lexsort(keys)
    y = np.zeros(n, np.int64)
    y[order[:k]] = 1
    return y


def quota_labels(per_benchmark: list[dict[str, np.ndarray]], top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """1 for the top ``top_p`` fraction of the sample taken round-robin over the target benchmarks:
    each benchmark in turn gives its next document by best rank under its own examples (ties by
    its maximum similarity, then index) that is not a positive yet. ``per_benchmark``: one
    :func:`direct_scores` result per benchmark, in a fixed order. With one benchmark this is
    :func:`top_labels` of its rank score. Returns (labels, the index of the benchmark that took
    each positive, -1 for negatives). See docs/scoring.md, "Balanced over benchmarks"."""
    n = len(per_benchmark[0]["best_rank"])
    k = max(1, int(round(top_p * n))) if n else 0
    orders = [np.lexsort((np.arange(n), -d["max_sim"], d["best_rank"])) for d in per_benchmark]
    y, owner = np.zeros(n, np.int64), np.full(n, -1, np.int64)
    positions, taken = [0] * len(orders), 0
    while taken < k:
        for b, order in enumerate(orders):
            while positions[b] < n and y[order[positions[b]]]:
                positions[b] += 1
            if positions[b] < n and taken < k:
                y[order[positions[b]]], owner[order[positions[b]]] = 1, b
                taken += 1
    return y, owner


def balanced_bags(idx: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """All positives of ``idx`` with each of the disjoint, shuffled parts of its negatives, every
    part at most as large as the positives (one bag when the negatives are fewer)."""
    pos, neg = idx[y[idx] == 1], rng.permutation(idx[y[idx] == 0])
    parts = -(-len(neg) // max(len(pos), 1)) if len(neg) > len(pos) else 1
    return [np.sort(np.concatenate([pos, part])) for part in np.array_split(neg, parts)]


def fit_bagged(x, y: np.ndarray, idx: np.ndarray, params: QualityModelParams, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The average (coefficients, intercept) of one logistic regression per balanced bag. The bags
    are drawn in order from ``rng``; their fits run on two threads (liblinear releases the GIL)
    and are averaged in bag order, so the result does not depend on the threads."""
    from concurrent.futures import ThreadPoolExecutor

    bags = balanced_bags(idx, y, rng)
    with ThreadPoolExecutor(min(2, len(bags))) as pool:
        fits = list(pool.map(lambda bag: fit_logistic(params, x[bag], y[bag]), bags))
    return mean_of_rows([c for c, _ in fits]), float(np.mean([i for _, i in fits]))


def mean_of_rows(rows: list[np.ndarray]) -> np.ndarray:
    """``np.mean(rows, axis=0)``, bit for bit (numpy reduces axis 0 row after row, then divides),
    without first copying the rows into one 2-D array: for 2^20 hashed coefficients and nine
    bags that copy took 0.3 s of a 0.01 s mean, six times per BETR classifier."""
    total = np.array(rows[0], np.float64, copy=True)
    for row in rows[1:]:
        total += row
    total /= len(rows)
    return total


def train_betr_classifier(
    texts: list[str],
    labels: np.ndarray,
    top_p: float,
    params: QualityModelParams,
    holdout: float = 0.2,
    folds: int = 5,
    embeddings: np.ndarray | None = None,
) -> tuple[QualityModel, dict, np.ndarray | None]:
    """Fit the classifier on the sample's labels.

    Returns the model, its metrics and the sample's cross-fitted scores (``None`` when a class has
    fewer than ``folds`` documents; the model is then fit on the whole sample). Metrics: ROC-AUC
    and precision at the top p% on a held-out part (the model fit on the rest, against the direct
    labels), and the same over the whole sample's cross-fitted scores."""
    y = np.asarray(labels, np.int64)
    rng = np.random.default_rng(params.seed)
    idx = np.arange(len(y))
    x, landmarks = training_features(texts, params, embeddings)  # embeddings: of the texts cut at params.embedding_cut(), when the caller has them
    metrics: dict = {"sample": int(len(y)), "positives": int(y.sum()), "top_p": top_p, "features": params.features}
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if min(n_pos, n_neg) >= 4 and holdout > 0:
        train_idx, test_idx = train_test_split(idx, test_size=holdout, stratify=y, random_state=params.seed)
        coef, intercept = fit_bagged(x, y, np.asarray(train_idx), params, rng)
        metrics.update(heldout=int(len(test_idx)), **_ranking_metrics(y[test_idx], x[test_idx] @ coef + intercept, top_p, "heldout"))
    if min(n_pos, n_neg) < folds:
        coef, intercept = fit_bagged(x, y, idx, params, rng)
        meta = {"kind": "betr-classifier", "bagged": True, "cross_fitted": False, "evaluation": metrics}
        return QualityModel(params, coef, intercept, meta, landmarks), metrics, None
    oof = np.zeros(len(y))
    coefs, intercepts = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=params.seed).split(idx, y):
        coef, intercept = fit_bagged(x, y, train, params, rng)
        oof[test] = x[test] @ coef + intercept
        coefs.append(coef)
        intercepts.append(intercept)
    metrics.update(folds=folds, **_ranking_metrics(y, oof, top_p, "crossfit"))
    meta = {"kind": "betr-classifier", "bagged": True, "cross_fitted": True, "folds": folds, "evaluation": metrics}
    model = QualityModel(params, mean_of_rows(coefs), float(np.mean(intercepts)), meta, landmarks)
    return model, metrics, probability(oof)


def _ranking_metrics(y: np.ndarray, s: np.ndarray, top_p: float, prefix: str) -> dict:
    k = max(1, int(round(top_p * len(y))))
    top = np.argsort(-np.asarray(s).ravel(), kind="stable")[:k]
    return {
        f"{prefix}_auc": float(roc_auc_score(y, np.asarray(s).ravel())),
        f"{prefix}_precision_at_top_p": float(y[top].mean()),
        f"{prefix}_base_rate": float(y.mean()),
    }
