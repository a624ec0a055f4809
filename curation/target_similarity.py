"""Lexical target alignment: a document's best cosine similarity to any target example.

This is BETR's aggregation (Mizrahi et al. 2025, arXiv 2507.12466 §3.4: each target example is
embedded separately and a document keeps its best score under any example, "rank, then max")
with a lexical embedding — hashed, sublinear-TF, L2-normalized word 1-2-grams, the features of
:mod:`curation.quality_model` — instead of a neural embedder. It gives the L3 tier a target
alignment score out of the box; the BETR stage (neural embedders, ranks, classifier) is a
separate, stronger score the recipe can name instead. Scoring a batch is one sparse matrix
product against the target matrix and a row max.
"""

from __future__ import annotations

import numpy as np

from curation.params import QualityModelParams
from curation.quality_model import _features

_PARAMS = QualityModelParams(n_features=1 << 18)


class TargetSimilarity:
    @staticmethod
    def ngram_space() -> tuple[int, int, int]:
        """(columns, n-gram order, characters) of the hashed n-gram counts it reads."""
        return (_PARAMS.n_features, _PARAMS.ngram_max, _PARAMS.max_chars)

    def __init__(self, targets: list[str]):
        if not targets:
            raise ValueError("target similarity needs at least one target example")
        self.targets = _features(targets, _PARAMS).T.tocsr()

    def score(self, texts, counts=None) -> np.ndarray:
        """Best cosine to a target example per text; ``counts``: the texts' hashed n-gram counts
        in :meth:`ngram_space` when already computed."""
        sims = _features(texts, _PARAMS, counts=counts) @ self.targets
        return np.asarray(sims.max(axis=1).todense()).ravel().astype(np.float64)
