"""Exact quantiles by Spark's rule, so both engines resolve the same thresholds and percentiles.

Spark's ``approxQuantile(col, [p], 0.0)`` (relative error 0: every value kept) drops null and NaN
values and returns the smallest value for p = 0, the largest for p = 1, else the value of 1-based
rank ``ceil(p * n)`` in ascending order. The Spark stages ask for exactly that; the one-process
engine calls :func:`exact_quantiles` on the same values (tests/test_engines.py compares them).
"""

from __future__ import annotations

import numpy as np


def exact_quantiles(values, probs) -> np.ndarray | None:
    """Quantiles of ``values`` (nulls as NaN are dropped) at every p of ``probs``, by Spark's
    exact rule; None when no value is left."""
    v = np.asarray(values, dtype=np.float64)
    v = np.sort(v[~np.isnan(v)])
    if len(v) == 0:
        return None
    p = np.asarray(probs, dtype=np.float64)
    rank = np.ceil(p * len(v)).astype(np.int64)  # 1-based
    return v[np.clip(rank - 1, 0, len(v) - 1)]
