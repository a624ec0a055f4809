"""Compiled (numba) kernels for the Gopher repetition signals of :mod:`curation.quality_signals`:
per-document n-gram statistics over one flat array of n-gram hashes whose documents are
contiguous (the token order of the batch).

- :func:`repeated_occurrences`: whether each occurrence's n-gram already occurred earlier in the
  same document;
- :func:`top_ngram_values`: per document, count × characters of its most frequent n-gram (ties:
  the longest).

Both walk the documents in order with one small open-addressing hash table per document, sized to
that document's n-grams, so the table stays in cache; a global hash table over every (document,
n-gram) key of a batch (how polars' ``is_first_distinct`` and ``group_by`` did it) missed the
cache on every probe, and those two steps were 81% of the signals' time (docs/benchmarks.md,
"Tier signals"). Same results as the global grouping: equal n-gram hashes within a document.

Compiled code is cached on disk (``NUMBA_CACHE_DIR``, as :mod:`curation.minhash_jit`).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tierlake-numba-cache"))

import numba  # noqa: E402
import numpy as np  # noqa: E402

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _capacity(n):
    cap = 16
    while cap < 2 * n:
        cap *= 2
    return cap


@_jit
def _slot(h, mask):
    # fmix64 of the hash: the n-gram hashes are xor/multiply folds whose low bits alone cluster
    x = h
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return np.int64(x & np.uint64(mask))


@_jit
def repeated_occurrences(doc, h):
    """``out[j]``: n-gram ``h[j]`` occurred at an earlier ``j' < j`` with ``doc[j'] == doc[j]``
    (``doc`` non-decreasing)."""
    m = len(h)
    out = np.zeros(m, np.bool_)
    keys = np.empty(_capacity(m if m > 0 else 1), np.uint64)
    used = np.zeros(len(keys), np.bool_)
    start = 0
    while start < m:
        stop = start
        while stop < m and doc[stop] == doc[start]:
            stop += 1
        cap = _capacity(stop - start)
        mask = cap - 1
        used[:cap] = False
        for j in range(start, stop):
            s = _slot(h[j], mask)
            while True:
                if not used[s]:
                    used[s] = True
                    keys[s] = h[j]
                    break
                if keys[s] == h[j]:
                    out[j] = True
                    break
                s = (s + 1) & mask
        start = stop
    return out


@_jit
def top_ngram_values(doc, h, length, n_docs):
    """``out[d]``: count × ``length`` of document d's most frequent n-gram (ties: the larger
    count × length); 0 for a document without n-grams."""
    m = len(h)
    out = np.zeros(n_docs, np.int64)
    size = _capacity(m if m > 0 else 1)
    keys = np.empty(size, np.uint64)
    counts = np.zeros(size, np.int64)
    lengths = np.zeros(size, np.int64)
    used = np.zeros(size, np.bool_)
    start = 0
    while start < m:
        stop = start
        while stop < m and doc[stop] == doc[start]:
            stop += 1
        cap = _capacity(stop - start)
        mask = cap - 1
        used[:cap] = False
        best_count, best_value = np.int64(0), np.int64(0)
        for j in range(start, stop):
            s = _slot(h[j], mask)
            while True:
                if not used[s]:
                    used[s] = True
                    keys[s] = h[j]
                    counts[s] = 1
                    lengths[s] = length[j]  # the first occurrence's length, as the grouping's first()
                    break
                if keys[s] == h[j]:
                    counts[s] += 1
                    break
                s = (s + 1) & mask
            c = counts[s]
            v = c * lengths[s]
            if c > best_count or (c == best_count and v > best_value):
                best_count, best_value = c, v
        out[doc[start]] = best_value
        start = stop
    return out
