"""Compiled (numba) kernels behind :mod:`curation.minhash`: the same arithmetic as its numpy
reference functions, fused so that no (shingles x permutations) temporary is ever materialized.

- :func:`ascii_shingle_hashes`: ASCII texts (raw Arrow offsets + bytes) -> word tokens (runs of
  ``[A-Za-z0-9_]``, lower-cased) -> xxh32 (seed 0) of each token -> shingle hash of every window
  of n tokens (FNV-style fold seeded with n, then fmix32). Bit-identical to
  ``curation.minhash.shingle_hashes``' vectorized path (tested).
- :func:`ascii_char_shingle_hashes`: character n-gram shingles of ASCII texts (normalized as the
  reference ``shingles(..., "char")``), xxh32 of each window.
- :func:`minhash_signatures`: datasketch's affine32 permutations (``a_k * fmix32(h) + b_k mod
  2^32``) and the per-document minimum in one loop over shingles; the permutation loop is
  vectorized by LLVM (uint32 multiply-add-min lanes).
- :func:`pair_jaccard_sets`: exact Jaccard of two shingle-hash multisets per pair (sort + merge
  of each pair's small arrays, in cache).

The reference (dedup.md §9) bounds a per-document numpy MinHash at its multiply-shift floor;
these kernels exist because that floor was the largest single cost of near-dup time (about 15 of
41 s at 400k documents on 2 cores; 22 s for the whole near-dup stage with them). Throughput is
measured by bench/minhash_kernel.py.

Compiled code is cached on disk (``NUMBA_CACHE_DIR``, default a folder under the system temp
dir) so Spark's Python workers compile each kernel once per machine, not once per task.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tierlake-numba-cache"))

import numba  # noqa: E402
import numpy as np  # noqa: E402

_M32 = 0xFFFFFFFF
_P1, _P2, _P3, _P4, _P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
_FNV = 0x01000193

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & _M32


@_jit
def _lower(c):
    return c | 0x20 if 65 <= c <= 90 else c


@_jit
def _read32_lower(data, i):
    return _lower(data[i]) | (_lower(data[i + 1]) << 8) | (_lower(data[i + 2]) << 16) | (_lower(data[i + 3]) << 24)


@_jit
def xxh32_lower(data, start, stop):
    """xxh32 (seed 0) of ``data[start:stop]`` with ASCII upper-case letters read as lower-case."""
    n = stop - start
    i = start
    if n >= 16:
        v1 = (_P1 + _P2) & _M32
        v2 = _P2
        v3 = 0
        v4 = (-_P1) & _M32
        limit = stop - 16
        while i <= limit:
            v1 = (_rotl((v1 + _read32_lower(data, i) * _P2) & _M32, 13) * _P1) & _M32
            v2 = (_rotl((v2 + _read32_lower(data, i + 4) * _P2) & _M32, 13) * _P1) & _M32
            v3 = (_rotl((v3 + _read32_lower(data, i + 8) * _P2) & _M32, 13) * _P1) & _M32
            v4 = (_rotl((v4 + _read32_lower(data, i + 12) * _P2) & _M32, 13) * _P1) & _M32
            i += 16
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M32
    else:
        h = _P5
    h = (h + n) & _M32
    while i + 4 <= stop:
        h = (h + _read32_lower(data, i) * _P3) & _M32
        h = (_rotl(h, 17) * _P4) & _M32
        i += 4
    while i < stop:
        h = (h + _lower(data[i]) * _P5) & _M32
        h = (_rotl(h, 11) * _P1) & _M32
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


@_jit
def _fmix32(h):  # h: int64 holding a uint32 (int64 products wrap; the mask keeps the low 32 bits)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


@_jit
def _is_word(c):
    return (97 <= c <= 122) or (65 <= c <= 90) or (48 <= c <= 57) or c == 95


@_jit
def ascii_shingle_hashes(data, offsets, ngram):
    """(hashes uint32, per-text offsets int64) of word n-gram shingles of ASCII texts given as an
    Arrow string array's byte buffer and offsets (``offsets[0]`` need not be 0)."""
    n_docs = len(offsets) - 1
    base = offsets[0]
    out = np.empty((offsets[n_docs] - base) // 2 + n_docs, dtype=np.uint32)  # >= tokens >= shingles
    out_off = np.zeros(n_docs + 1, dtype=np.int64)
    longest = 0
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    tok = np.empty(longest // 2 + 1, dtype=np.int64)
    w = 0
    for d in range(n_docs):
        # token hashes of this text
        t = 0
        i, stop = offsets[d], offsets[d + 1]
        while i < stop:
            while i < stop and not _is_word(data[i]):
                i += 1
            if i >= stop:
                break
            j = i
            while j < stop and _is_word(data[j]):
                j += 1
            tok[t] = xxh32_lower(data, i, j)
            t += 1
            i = j
        # shingles: every full window of n tokens, or one of all tokens when there are fewer
        if t >= ngram:
            for s in range(t - ngram + 1):
                acc = ngram
                for k in range(ngram):
                    acc = ((acc * _FNV) & _M32) ^ tok[s + k]
                out[w] = _fmix32(acc)
                w += 1
        elif t > 0:
            acc = t
            for k in range(t):
                acc = ((acc * _FNV) & _M32) ^ tok[k]
            out[w] = _fmix32(acc)
            w += 1
        out_off[d + 1] = w
    return out[:w].copy(), out_off


@_jit
def _is_split_space(c):
    # the ASCII characters Python's str.split() splits on: \t \n \v \f \r, \x1c-\x1f, space
    return (9 <= c <= 13) or (28 <= c <= 32)


@_jit
def ascii_char_shingle_hashes(data, offsets, ngram):
    """(hashes uint32, per-text offsets int64) of character n-gram shingles of ASCII texts, as
    ``curation.minhash.shingles(text, n, "char")``: lower-cased, whitespace runs collapsed to one
    space and stripped, then xxh32 of every n-character window (one shingle of the whole text
    when it is shorter than n; none when it is empty). Repeated shingles are kept (MinHash and
    the Jaccard kernel treat them as one)."""
    n_docs = len(offsets) - 1
    out = np.empty(offsets[n_docs] - offsets[0] + n_docs, dtype=np.uint32)
    out_off = np.zeros(n_docs + 1, dtype=np.int64)
    longest = 0
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    norm = np.empty(longest + 1, dtype=np.uint8)
    w = 0
    for d in range(n_docs):
        m = 0
        pending_space = False
        for i in range(offsets[d], offsets[d + 1]):
            c = data[i]
            if _is_split_space(c):
                pending_space = m > 0
                continue
            if pending_space:
                norm[m] = 32
                m += 1
                pending_space = False
            norm[m] = _lower(c)
            m += 1
        if m >= ngram:
            for s in range(m - ngram + 1):
                out[w] = xxh32_lower(norm, s, s + ngram)
                w += 1
        elif m > 0:
            out[w] = xxh32_lower(norm, 0, m)
            w += 1
        out_off[d + 1] = w
    return out[:w].copy(), out_off


@_jit
def minhash_signatures(hashes, offsets, a, b):
    """(n_docs, K) uint32: per document, min over its shingles of ``a_k * fmix32(h) + b_k mod
    2^32``; all-MAX for a document with no shingles."""
    n_docs = len(offsets) - 1
    k = len(a)
    out = np.full((n_docs, k), np.uint32(_M32), dtype=np.uint32)
    for d in range(n_docs):
        row = out[d]
        for i in range(offsets[d], offsets[d + 1]):
            h = np.uint32(_fmix32(np.int64(hashes[i])))
            for j in range(k):
                v = np.uint32((a[j] * h + b[j]) & _M32)
                if v < row[j]:
                    row[j] = v
    return out


@_jit
def pair_jaccard_sets(hl, ol, hr, orr):
    """Exact Jaccard of the distinct values of ``hl[ol[i]:ol[i+1]]`` and ``hr[orr[i]:orr[i+1]]``
    for every pair i; 1.0 when both are empty."""
    n = len(ol) - 1
    out = np.empty(n, dtype=np.float64)
    for p in range(n):
        x = np.sort(hl[ol[p] : ol[p + 1]])
        y = np.sort(hr[orr[p] : orr[p + 1]])
        i = j = 0
        nx = ny = inter = 0
        while i < len(x) or j < len(y):
            if j >= len(y) or (i < len(x) and x[i] < y[j]):
                v = x[i]
                nx += 1
                while i < len(x) and x[i] == v:
                    i += 1
            elif i >= len(x) or y[j] < x[i]:
                v = y[j]
                ny += 1
                while j < len(y) and y[j] == v:
                    j += 1
            else:
                v = x[i]
                nx += 1
                ny += 1
                inter += 1
                while i < len(x) and x[i] == v:
                    i += 1
                while j < len(y) and y[j] == v:
                    j += 1
        union = nx + ny - inter
        out[p] = inter / union if union > 0 else 1.0
    return out
