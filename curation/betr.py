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
product and one argsort per row. Departures: the classifier is hashed word 1-2-grams with logistic
regression (:mod:`curation.quality_model`) instead of fastText bigrams, because no fastText that
trains installs against our numpy; the embedder is a packaged offline model
(:mod:`curation.embedders`) instead of Arctic-Embed L 2.0, which the paper shows matters little.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from curation.quality_model import (
    QualityModel,
    QualityModelParams,
    _classifier,
    _features,
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
        sims = target_emb[start:start + block] @ doc_emb.T  # (b, n)
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


def _balanced(idx: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
    if len(neg) > len(pos):
        neg = rng.choice(neg, size=len(pos), replace=False)
    return np.sort(np.concatenate([pos, neg]))


def train_betr_classifier(texts: list[str], labels: np.ndarray, top_p: float, params: QualityModelParams,
                          holdout: float = 0.2) -> tuple[QualityModel, dict]:
    """Fit on a balanced training part, report ROC-AUC and precision at the top p% on the held-out
    part (against the direct labels), then refit on the whole balanced sample."""
    y = np.asarray(labels, np.int64)
    rng = np.random.default_rng(params.seed)
    idx = np.arange(len(y))
    metrics: dict = {"sample": int(len(y)), "positives": int(y.sum()), "top_p": top_p}
    if y.sum() >= 4 and (len(y) - y.sum()) >= 4 and holdout > 0:
        train_idx, test_idx = train_test_split(idx, test_size=holdout, stratify=y, random_state=params.seed)
        x = _features(texts, params)
        fit_idx = _balanced(np.asarray(train_idx), y, rng)
        clf = _classifier(params).fit(x[fit_idx], y[fit_idx])
        s = clf.decision_function(x[test_idx])
        yt = y[test_idx]
        k = max(1, int(round(top_p * len(test_idx))))
        top = np.argsort(-s, kind="stable")[:k]
        metrics.update(heldout=int(len(test_idx)), heldout_auc=float(roc_auc_score(yt, s)),
                       heldout_precision_at_top_p=float(yt[top].mean()), heldout_base_rate=float(yt.mean()))
    else:
        x = _features(texts, params)
    fit_all = _balanced(idx, y, rng)
    clf = _classifier(params).fit(x[fit_all], y[fit_all])
    model = QualityModel(params, clf.coef_.ravel(), clf.intercept_[0], {"kind": "betr-classifier", "evaluation": metrics})
    return model, metrics
