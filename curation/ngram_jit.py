"""Compiled (numba) kernels for the Gopher repetition signals of :mod:`curation.quality_signals`:
per-document n-gram statistics over one flat array of n-gram hashes whose documents are
contiguous (the token order of the batch).

:func:`ngram_signal_values` walks the documents in order and, for each n, folds the document's
word hashes into n-gram hashes and groups them in one small open-addressing hash table sized to
that document's n-grams, so the table stays in cache: per document, count × characters of its
most frequent n-gram (the top-n-gram signals) and the characters of the words covered by a
repeated n-gram (the duplicated-n-gram signals); a global hash table over every (document,
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
def _fill_table(h, m, keys, counts, lens, used, glen, first):
    """Group the first ``m`` hashes of ``h`` in a table sized for them: ``counts``/``lens`` per slot
    (the count and the first occurrence's ``glen``), ``first[i]`` whether i is its n-gram's first
    occurrence. Returns the best (count, count × length) value."""
    cap = _capacity(m)
    mask = cap - 1
    used[:cap] = False
    best_count, best_value = np.int64(0), np.int64(0)
    for i in range(m):
        s = _slot(h[i], mask)
        while True:
            if not used[s]:
                used[s] = True
                keys[s] = h[i]
                counts[s] = 1
                lens[s] = glen[i]
                first[i] = True
                break
            if keys[s] == h[i]:
                counts[s] += 1
                first[i] = False
                break
            s = (s + 1) & mask
        c = counts[s]
        v = c * lens[s]
        if c > best_count or (c == best_count and v > best_value):
            best_count, best_value = c, v
    return best_value


@_jit
def ngram_signal_values(doc, wh, wl, n_docs, top_ns, dup_ns, mix):
    """The Gopher repetition signals' character counts, one document at a time.

    ``doc`` (non-decreasing), ``wh`` (word hashes) and ``wl`` (word characters) are the batch's
    words in text order. For n in ``top_ns``: count × characters (words joined by one space) of
    the document's most frequent n-gram (ties: the larger value). For n in ``dup_ns``: the
    characters of the words covered by an n-gram occurrence that already occurred earlier in the
    document. N-gram hashes fold word hashes as ``h * mix ^ next``; returns (top, dup) arrays of
    shape (len(ns), n_docs)."""
    top = np.zeros((len(top_ns), n_docs), np.int64)
    dup = np.zeros((len(dup_ns), n_docs), np.int64)
    max_n = 1
    for n in top_ns:
        max_n = max(max_n, n)
    for n in dup_ns:
        max_n = max(max_n, n)
    m_all = len(wh)
    size = _capacity(m_all if m_all > 0 else 1)
    keys = np.empty(size, np.uint64)
    counts = np.zeros(size, np.int64)
    lens = np.zeros(size, np.int64)
    used = np.zeros(size, np.bool_)
    h = np.empty(m_all, np.uint64)
    glen = np.empty(m_all, np.int64)
    first = np.zeros(m_all, np.bool_)
    cover = np.zeros(m_all + 1, np.int64)
    start = 0
    while start < m_all:
        stop = start
        while stop < m_all and doc[stop] == doc[start]:
            stop += 1
        d = doc[start]
        length = stop - start
        for i in range(length):
            h[i] = wh[start + i]
            glen[i] = wl[start + i]
        for n in range(2, max_n + 1):
            m = length - n + 1
            if m <= 0:
                break
            last = start + n - 1
            for i in range(m):
                h[i] = (h[i] * mix) ^ wh[last + i]
                glen[i] = glen[i] + 1 + wl[last + i]
            best = _fill_table(h, m, keys, counts, lens, used, glen, first)
            for t in range(len(top_ns)):
                if top_ns[t] == n:
                    top[t, d] = best
            for t in range(len(dup_ns)):
                if dup_ns[t] == n:
                    cover[: length + 1] = 0
                    for i in range(m):
                        if not first[i]:
                            cover[i] += 1
                            cover[i + n] -= 1
                    run, total = np.int64(0), np.int64(0)
                    for i in range(length):
                        run += cover[i]
                        if run > 0:
                            total += wl[start + i]
                    dup[t, d] = total
        start = stop
    return top, dup
