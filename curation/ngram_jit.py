"""Compiled (numba) kernels for the Gopher repetition signals of :mod:`curation.quality_signals`:
per-document n-gram statistics over one flat array of n-gram hashes whose documents are
contiguous (the token order of the batch).

- :func:`ngram_groups`: a dense id per (document, n-gram), in order of first occurrence;
- :func:`repeated_occurrences`: whether each occurrence's n-gram already occurred earlier in the
  same document (numpy over the ids);
- :func:`top_ngram_values`: per document, count × characters of its most frequent n-gram (ties:
  the longest; numpy over the ids).

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
    """``out[j]``: the id of (``doc[j]``, ``h[j]``), numbered 0, 1, 2, ... in order of first
    occurrence (``doc`` non-decreasing), so a group's documents never decrease with its id."""
    m = len(h)
    out = np.empty(m, np.int64)
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
                    next_id += 1
                    break
                if keys[s] == h[j]:
                    break
                s = (s + 1) & mask
            out[j] = ids[s]
        start = stop
    return out


def _first_occurrences(group: np.ndarray) -> np.ndarray:
    """Whether each occurrence is its group's first: ids grow by one at every first occurrence."""
    seen_before = np.maximum.accumulate(np.concatenate([[-1], group[:-1]]))
    return group > seen_before


def repeated_occurrences(doc: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``out[j]``: n-gram ``h[j]`` occurred at an earlier ``j' < j`` with ``doc[j'] == doc[j]``
    (``doc`` non-decreasing)."""
    if len(h) == 0:
        return np.zeros(0, bool)
    return ~_first_occurrences(ngram_groups(doc, h))


def top_ngram_values(doc: np.ndarray, h: np.ndarray, length: np.ndarray, n_docs: int) -> np.ndarray:
    """``out[d]``: count × ``length`` of document d's most frequent n-gram (ties: the larger
    count × length; the length of a group is its first occurrence's); 0 for a document without
    n-grams."""
    out = np.zeros(n_docs, np.int64)
    if len(h) == 0:
        return out
    group = ngram_groups(doc, h)
    first = _first_occurrences(group)
    counts = np.bincount(group)
    values = counts * length[first]
    group_doc = doc[first]  # non-decreasing: groups are numbered in document order
    starts = np.flatnonzero(np.concatenate([[True], group_doc[1:] != group_doc[:-1]]))
    most = np.maximum.reduceat(counts, starts)
    at_most = counts == np.repeat(most, np.diff(np.append(starts, len(counts))))
    out[group_doc[starts]] = np.maximum.reduceat(np.where(at_most, values, 0), starts)
    return out
