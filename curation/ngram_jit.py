"""Compiled (numba) kernels for the Gopher repetition signals of :mod:`curation.quality_signals`:
per-document n-gram statistics over one flat array of n-gram hashes whose documents are
contiguous (the token order of the batch).

- :func:`ngram_groups`: a dense id per (document, n-gram), in order of first occurrence, and
  whether each occurrence is its group's first;
- :func:`repeated_occurrences`: whether each occurrence's n-gram already occurred earlier in the
  same document (not its group's first);
- :func:`top_ngram_values`: per document, count × characters of its most frequent n-gram (ties:
  the longest), from the groups' counts.

The grouping walks the documents in order with one small open-addressing hash table per document,
sized to that document's n-grams, so the table stays in cache; a global hash table over every (document,
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
def ngram_groups(doc, h):
    """``(group, first)``: ``group[j]`` the id of (``doc[j]``, ``h[j]``), numbered 0, 1, 2, ... in
    order of first occurrence (``doc`` non-decreasing, so a group's document never decreases with
    its id); ``first[j]`` whether occurrence j is its group's first."""
    m = len(h)
    group = np.empty(m, np.int64)
    first = np.zeros(m, np.bool_)
    keys = np.empty(_capacity(m if m > 0 else 1), np.uint64)
    ids = np.empty(len(keys), np.int64)
    used = np.zeros(len(keys), np.bool_)
    next_id = 0
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
                    ids[s] = next_id
                    first[j] = True
                    next_id += 1
                    break
                if keys[s] == h[j]:
                    break
                s = (s + 1) & mask
            group[j] = ids[s]
        start = stop
    return group, first


@_jit
def _best_per_document(group_doc, counts, values, n_docs):
    """Per document, the value of its group with the highest (count, value)."""
    out = np.zeros(n_docs, np.int64)
    best_count = np.zeros(n_docs, np.int64)
    for g in range(len(counts)):
        d = group_doc[g]
        c, v = counts[g], values[g]
        if c > best_count[d] or (c == best_count[d] and v > out[d]):
            best_count[d] = c
            out[d] = v
    return out


def repeated_occurrences(doc: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``out[j]``: n-gram ``h[j]`` occurred at an earlier ``j' < j`` with ``doc[j'] == doc[j]``
    (``doc`` non-decreasing)."""
    return ~ngram_groups(doc, h)[1]


def top_ngram_values(doc: np.ndarray, h: np.ndarray, length: np.ndarray, n_docs: int) -> np.ndarray:
    """``out[d]``: count × ``length`` of document d's most frequent n-gram (ties: the larger
    count × length; a group's length is its first occurrence's); 0 for a document without
    n-grams."""
    if len(h) == 0:
        return np.zeros(n_docs, np.int64)
    group, first = ngram_groups(doc, h)
    counts = np.bincount(group)
    return _best_per_document(doc[first], counts, counts * length[first], n_docs)
