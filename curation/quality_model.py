"""A light document-quality classifier: hashed word uni+bigrams and logistic regression.

The design follows the model-based quality filters of DCLM (Li et al. 2024, §4.4: "a simple
bigram classifier", fastText) and the L2 "Selected" tier of Wang et al. 2026 (a light classifier
trained on labelled seeds). Departure: scikit-learn's ``HashingVectorizer`` (word 1-2-grams,
2**20 features, sublinear TF, L2 norm) with ``LogisticRegression`` replaces fastText: the build that trains
with numpy 2 (``fasttext-numpy2``) installs the same ``fasttext`` module as ``fasttext-predict``,
which language id uses, and on BETR's labels it measured no better (docs/scoring.md); the model
is still linear over bigrams and scores a batch as one sparse matrix product. The vectorizer's
matrix is computed by :mod:`curation.hashing_jit` (the same entries, one compiled pass without the
GIL; docs/benchmarks.md, "Hashed n-gram features"); scikit-learn's own code runs only for the
``ngrams_stripped`` features and the rare document whose lower case depends on context.

Safe format: a model folder holds ``model.json`` (parameters, metrics, training data digests) and
``weights.npz`` (the non-zero coefficients, loaded with ``allow_pickle=False``) — no pickle
ever, so loading a model from any path cannot run code.

:func:`cross_validated_auc` gives the held-out ROC-AUC (stratified k-fold, seeded) that
:func:`train_quality_model` records in the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import numpy as np

from curation.params import QualityModelParams

# scikit-learn is imported where it is used: the policy models import this module, and reading a
# run (`tierlake inspect`) must not pay scikit-learn's import (about 1 s)

FORMAT = "tierlake-quality-linear/1"


# multiple-choice markers: option letters at a line start ("A. ", "(b) ", "C) "), answer and question
# labels; stripped so that a classifier cannot separate documents by the test format alone
_OPTION = re.compile(r"(?m)^[ \t]*(?:\(?[A-Ea-e][.):]|\([A-Ea-e]\))[ \t]+")
_ANSWER_LINE = re.compile(r"(?mi)^[ \t]*(?:the )?(?:correct )?answer(?: is)?[ \t]*[:.]?[ \t]*\(?[A-E]?\)?[.]?[ \t]*$")
_LABEL = re.compile(r"(?mi)^[ \t]*(?:question|answer|q|a|solution|explanation)[ \t]*[:.][ \t]*")


def strip_format(text: str) -> str:
    """``text`` without multiple-choice markers: option letters at line starts, a bare
    "Answer: C" line, and "Question:"/"Answer:" labels (their content is kept)."""
    return _LABEL.sub("", _OPTION.sub("", _ANSWER_LINE.sub("", text or "")))


def _vectorizer(p: QualityModelParams):
    from curation.hashing_jit import sklearn_vectorizer

    return sklearn_vectorizer(p.n_features, p.ngram_max)


def _ngram_features(texts, p: QualityModelParams, counts=None):
    """Hashed word 1..n-gram counts (:func:`curation.hashing_jit.hashed_ngram_counts`, equal to
    scikit-learn's ``HashingVectorizer`` entry for entry and free of the GIL), then sublinear TF and
    L2 norm. ``texts``: a list of str or an Arrow string array; ``counts``: those counts when the
    caller already has them (one tokenization for several models)."""
    if counts is not None:
        x = counts.copy()
    elif p.features == "ngrams_stripped":
        values = texts.to_pylist() if hasattr(texts, "to_pylist") else texts
        x = _vectorizer(p).transform([strip_format((t or "")[: p.max_chars]) for t in values])
    else:
        from curation.hashing_jit import hashed_ngram_counts

        x = hashed_ngram_counts(texts, p.n_features, p.ngram_max, p.max_chars)
    x.data = np.log1p(x.data)  # sublinear term frequency
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return x.multiply(1 / norms[:, None]).tocsr()


def kernel_features(embeddings: np.ndarray, landmarks: np.ndarray, gamma: float) -> np.ndarray:
    """RBF kernel features of L2-normalized embeddings against ``landmarks`` (a Nystrom-style
    basis of training documents): exp(gamma (cos - 1)) per landmark, each row L2-normalized like
    the n-gram block beside it. A linear model over them scores "near these positive documents,
    far from those negative ones" (a union of topic regions), which the raw embedding, one
    direction, cannot (docs/scoring.md, "BETR on topic")."""
    sims = np.asarray(embeddings, np.float32) @ np.asarray(landmarks, np.float32).T
    k = np.exp(np.float32(gamma) * (sims - np.float32(1.0)), dtype=np.float32)
    norms = np.linalg.norm(k, axis=1, keepdims=True)
    return k / np.where(norms > 0, norms, np.float32(1.0))


def embed_for(texts, p: QualityModelParams) -> np.ndarray:
    """The texts' embeddings as the model's features read them (cut at :meth:`embedding_cut`)."""
    from curation.embedders import get_embedder

    values = texts.to_pylist() if hasattr(texts, "to_pylist") else texts
    return get_embedder(p.embedder).embed([(t or "")[: p.embedding_cut()] for t in values])


def choose_landmarks(embeddings: np.ndarray, p: QualityModelParams) -> np.ndarray:
    """The kernel's landmarks: ``p.kernel_landmarks`` of the training documents' embeddings, a
    draw seeded by ``p.seed`` kept in training order (all of them when there are fewer)."""
    n = len(embeddings)
    if n <= p.kernel_landmarks:
        return np.ascontiguousarray(embeddings, np.float32)
    keep = np.sort(np.random.default_rng(p.seed).choice(n, p.kernel_landmarks, replace=False))
    return np.ascontiguousarray(np.asarray(embeddings)[keep], np.float32)


def training_features(texts, p: QualityModelParams, embeddings: np.ndarray | None = None):
    """(rows, landmarks) for fitting on ``texts``: :func:`_features`, the landmarks drawn from the
    texts themselves with ``ngrams+kernel`` (else None)."""
    if not p.uses_kernel():
        return _features(texts, p, embeddings), None
    if embeddings is None:
        embeddings = embed_for(texts, p)
    landmarks = choose_landmarks(embeddings, p)
    return _features(texts, p, embeddings, landmarks=landmarks), landmarks


def _features(texts, p: QualityModelParams, embeddings: np.ndarray | None = None, counts=None, landmarks: np.ndarray | None = None):
    """The model's input rows: hashed n-grams, the L2-normalized text embedding (computed here
    unless given), its kernel features against ``landmarks``, or n-grams and one of those side by
    side as one sparse matrix."""
    if not p.uses_embedding():
        return _ngram_features(texts, p, counts)
    if embeddings is None:
        embeddings = embed_for(texts, p)
    if p.uses_kernel():
        if landmarks is None:
            raise ValueError("ngrams+kernel features need the model's landmarks")
        dense = kernel_features(embeddings, landmarks, p.kernel_gamma)
    else:
        dense = np.asarray(embeddings, np.float32)
    dense = dense * np.float32(p.embedding_weight)
    if not p.uses_ngrams():
        return dense
    from scipy import sparse

    return sparse.hstack([_ngram_features(texts, p), sparse.csr_matrix(dense)], format="csr")


def probability(z) -> np.ndarray:
    """The logistic function of decision values: P(positive) as float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64).ravel()))


def _classifier(p: QualityModelParams):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=p.C, max_iter=2000, solver="liblinear", random_state=p.seed)


def fit_logistic(p: QualityModelParams, x, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(coefficients over every feature column, intercept) of the L2 logistic regression on rows
    ``x``. Sparse rows are fitted on the columns they use only: a hashed feature that no training
    row has gets weight 0 at the L2 optimum anyway, and liblinear's solver pays for every column
    of its weight vector on every iteration: 2^20 hashed columns, where a 2,000-document sample
    uses about 384,000. The same model, 3.1x faster for BETR's classifier (docs/benchmarks.md,
    "BETR classifier training")."""
    from scipy import sparse

    y = np.asarray(y)
    if not sparse.issparse(x):
        clf = _classifier(p).fit(x, y)
        return clf.coef_.ravel().astype(np.float64), float(clf.intercept_[0])
    x = sparse.csr_matrix(x)
    used = np.unique(x.indices)
    if len(used) == 0:  # no row has a feature (empty texts): one all-zero column, an intercept-only model as before
        used = np.arange(min(1, x.shape[1]))
    clf = _classifier(p).fit(x[:, used], y)
    coef = np.zeros(x.shape[1], np.float64)
    coef[used] = clf.coef_.ravel()
    return coef, float(clf.intercept_[0])


def cross_validated_auc(texts: list[str], labels: np.ndarray, p: QualityModelParams) -> dict:
    """Mean and per-fold ROC-AUC on held-out folds, plus the pooled out-of-fold AUC."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    x, y = training_features(texts, p)[0], np.asarray(labels, int)
    oof = np.zeros(len(y))
    aucs = []
    for train, test in StratifiedKFold(p.folds, shuffle=True, random_state=p.seed).split(x, y):
        coef, intercept = fit_logistic(p, x[train], y[train])
        oof[test] = x[test] @ coef + intercept
        aucs.append(float(roc_auc_score(y[test], oof[test])))
    return {
        "folds": p.folds,
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "auc_per_fold": aucs,
        "auc_pooled": float(roc_auc_score(y, oof)),
    }


class QualityModel:
    """A fitted linear model; :meth:`score` gives P(high quality) per text."""

    def __init__(self, params: QualityModelParams, coef: np.ndarray, intercept: float, meta: dict | None = None, landmarks: np.ndarray | None = None):
        self.params, self.coef, self.intercept, self.meta = params, coef.astype(np.float32), float(intercept), meta or {}
        self.landmarks = None if landmarks is None else np.ascontiguousarray(landmarks, np.float32)
        if params.uses_kernel() and self.landmarks is None:
            raise ValueError("an ngrams+kernel model needs its landmarks")

    def score(self, texts, embeddings: np.ndarray | None = None, counts=None) -> np.ndarray:
        """P(positive) per text; ``embeddings``: the texts' embeddings when already computed (cut
        at :meth:`QualityModelParams.embedding_cut`); ``counts``: their hashed n-gram counts
        (:meth:`ngram_space`)."""
        return probability(_features(texts, self.params, embeddings, counts, self.landmarks) @ self.coef + self.intercept)

    def ngram_space(self) -> tuple[int, int, int] | None:
        """(columns, n-gram order, characters) of its hashed n-gram counts when those are its only
        features (counts another model can share), else None."""
        p = self.params
        return (p.n_features, p.ngram_max, p.max_chars) if p.features == "ngrams" else None

    def save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        nz = np.flatnonzero(self.coef)
        tmp = os.path.join(folder, ".weights.npz.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, index=nz.astype(np.int64), value=self.coef[nz])
        os.replace(tmp, os.path.join(folder, "weights.npz"))
        if self.landmarks is not None:  # float32 rows, read back with allow_pickle=False
            with open(os.path.join(folder, ".landmarks.npy.tmp"), "wb") as fh:
                np.save(fh, self.landmarks, allow_pickle=False)
            os.replace(os.path.join(folder, ".landmarks.npy.tmp"), os.path.join(folder, "landmarks.npy"))
        doc = {"format": FORMAT, "params": self.params.model_dump(), "intercept": self.intercept, "n_weights": int(len(self.coef)), **self.meta}
        with open(os.path.join(folder, ".model.json.tmp"), "w") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
        os.replace(os.path.join(folder, ".model.json.tmp"), os.path.join(folder, "model.json"))

    @classmethod
    def load(cls, folder: str) -> "QualityModel":
        path = os.path.join(folder, "model.json")
        try:
            with open(path) as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            raise ValueError(f"no quality model at {folder} (model.json missing); train one with `tierlake train-quality`") from None
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a tierlake quality model (format {doc.get('format')!r}, expected {FORMAT!r})")
        params = QualityModelParams.model_validate(doc["params"])
        with np.load(os.path.join(folder, "weights.npz"), allow_pickle=False) as z:
            coef = np.zeros(int(doc.get("n_weights", params.n_features)), np.float32)
            coef[z["index"]] = z["value"]
        meta = {k: v for k, v in doc.items() if k not in ("format", "params", "intercept", "n_weights")}
        landmarks = None
        if params.uses_kernel():
            try:
                landmarks = np.load(os.path.join(folder, "landmarks.npy"), allow_pickle=False)
            except FileNotFoundError:
                raise ValueError(f"{folder}: an ngrams+kernel model without its landmarks.npy; copy the whole model folder") from None
        return cls(params, coef, doc["intercept"], meta, landmarks)


def _digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\x00")
    return h.hexdigest()


def train_quality_model(
    positives: list[str], negatives: list[str], params: QualityModelParams | None = None, sources: dict | None = None
) -> QualityModel:
    """Fit on all examples after measuring the cross-validated AUC; both go into the model's metadata."""
    p = params or QualityModelParams()
    if len(positives) < p.folds or len(negatives) < p.folds:
        raise ValueError(f"need at least {p.folds} positive and {p.folds} negative examples (got {len(positives)} and {len(negatives)})")
    texts = list(positives) + list(negatives)
    y = np.r_[np.ones(len(positives), int), np.zeros(len(negatives), int)]
    t0 = time.time()
    cv = cross_validated_auc(texts, y, p)
    x, landmarks = training_features(texts, p)
    coef, intercept = fit_logistic(p, x, y)
    meta = {
        "cross_validation": cv,
        "n_positive": len(positives),
        "n_negative": len(negatives),
        "training_sha256": _digest(texts),
        "training_sources": sources or {},
        "train_seconds": round(time.time() - t0, 3),
    }
    return QualityModel(p, coef, intercept, meta, landmarks)
