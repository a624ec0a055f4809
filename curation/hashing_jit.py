"""Hashed word n-gram counts in one compiled pass over Arrow string buffers: scikit-learn's
``HashingVectorizer(lowercase=True, token_pattern=r"(?u)\\b\\w+\\b", ngram_range=(1, n),
alternate_sign=False, norm=None)`` without its per-document Python.

The quality model, the lexical target similarity and BETR's classifier all read documents through
that vectorizer, and its analyzer (Python ``str.lower``, ``re.findall``, n-gram joins) held the
GIL for most of their time, so threads could not share the work. This kernel decodes UTF-8, cuts
at ``max_chars`` characters, lower-cases and finds word characters from tables built from
Python's own ``str.lower`` and ``re``'s ``\\w`` (so the tokens are the same), hashes every n-gram
with MurmurHash3 (x86, 32-bit, seed 0, as scikit-learn does) and counts them per document, with
the GIL released. Documents holding a character whose lower case is not one character (``İ``) or
depends on context (``Σ``) are marked and left to scikit-learn. The counts equal the
vectorizer's matrix entry for entry (tests/test_hashing_kernel.py); speed in docs/benchmarks.md
("Hashed n-gram features").
"""

from __future__ import annotations

import os
import re
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tierlake-numba-cache"))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)
_TABLES: tuple[np.ndarray, np.ndarray] | None = None
MAX_CODEPOINT = 0x110000


def unicode_tables() -> tuple[np.ndarray, np.ndarray]:
    """(lower, is_word): ``lower[cp]`` the code point of ``chr(cp).lower()`` when that is one
    character and does not depend on context, else -1; ``is_word[cp]`` whether ``re``'s ``\\w``
    matches it. Built once per process from Python itself (about 0.1 s)."""
    global _TABLES
    if _TABLES is None:
        points = np.concatenate([np.arange(0xD800), np.arange(0xE000, MAX_CODEPOINT)]).astype(np.uint32)  # no surrogates
        chars = points.tobytes().decode("utf-32-le")
        lower = np.full(MAX_CODEPOINT, -1, np.int32)
        step = 4096
        for start in range(0, len(chars), step):  # str.lower per block; per character only where a block changes length
            block = chars[start : start + step]
            low = block.lower()
            if len(low) == len(block):
                lower[points[start : start + step]] = np.frombuffer(low.encode("utf-32-le"), np.uint32).astype(np.int32)
            else:
                for ch in block:
                    one = ch.lower()
                    lower[ord(ch)] = ord(one) if len(one) == 1 else -1
        lower[0x03A3] = -1  # capital sigma lowers to final or medial sigma by context
        is_word = np.zeros(MAX_CODEPOINT, np.bool_)
        is_word[np.frombuffer("".join(re.findall(r"\w", chars)).encode("utf-32-le"), np.uint32)] = True
        _TABLES = (lower, is_word)
    return _TABLES


_M32 = 0xFFFFFFFF


@_jit
def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & _M32


@_jit
def murmur3_32(buf, n):
    """MurmurHash3 x86_32 (seed 0) of ``buf[:n]`` as a signed int32 (scikit-learn's murmurhash3_32).
    Arithmetic in int64 masked to 32 bits (numba widens integer products)."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = np.int64(0)
    nblocks = n // 4
    for b in range(nblocks):
        i = 4 * b
        k = np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8) | (np.int64(buf[i + 2]) << 16) | (np.int64(buf[i + 3]) << 24)
        k = (k * c1) & _M32
        k = _rotl32(k, 15)
        k = (k * c2) & _M32
        h ^= k
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & _M32
    tail = 4 * nblocks
    rem = n & 3
    k1 = np.int64(0)
    if rem == 3:
        k1 ^= np.int64(buf[tail + 2]) << 16
    if rem >= 2:
        k1 ^= np.int64(buf[tail + 1]) << 8
    if rem >= 1:
        k1 ^= np.int64(buf[tail])
        k1 = (k1 * c1) & _M32
        k1 = _rotl32(k1, 15)
        k1 = (k1 * c2) & _M32
        h ^= k1
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h - (1 << 32) if h >= (1 << 31) else h


@_jit
def _put_utf8(buf, n, cp):
    if cp < 0x80:
        buf[n] = cp
        return n + 1
    if cp < 0x800:
        buf[n] = 0xC0 | (cp >> 6)
        buf[n + 1] = 0x80 | (cp & 0x3F)
        return n + 2
    if cp < 0x10000:
        buf[n] = 0xE0 | (cp >> 12)
        buf[n + 1] = 0x80 | ((cp >> 6) & 0x3F)
        buf[n + 2] = 0x80 | (cp & 0x3F)
        return n + 3
    buf[n] = 0xF0 | (cp >> 18)
    buf[n + 1] = 0x80 | ((cp >> 12) & 0x3F)
    buf[n + 2] = 0x80 | ((cp >> 6) & 0x3F)
    buf[n + 3] = 0x80 | (cp & 0x3F)
    return n + 4


@_jit
def _feature_index(h, n_features):
    if h == -2147483648:
        return (2147483647 - (n_features - 1)) % n_features
    return abs(h) % n_features


@_jit
def _radix_sort(keys, k, bits, tmp, hist):
    """Sort ``keys[:k]`` (non-negative, below 2**bits) in place: least significant digit first,
    8 bits a pass, ``tmp`` (at least ``k`` long) and ``hist`` (257 long) as scratch. Equal keys
    are equal, so the result is what any sort gives; on the ~1,400 hashed n-grams of a page it
    is cheaper than numba's quicksort (a few linear passes, no data-dependent branches)."""
    src, dst = keys, tmp
    shift = 0
    while shift < bits:
        hist[:] = 0
        for j in range(k):
            hist[((src[j] >> shift) & 255) + 1] += 1
        for b in range(256):
            hist[b + 1] += hist[b]
        for j in range(k):
            digit = (src[j] >> shift) & 255
            dst[hist[digit]] = src[j]
            hist[digit] += 1
        src, dst = dst, src
        shift += 8
    if src is not keys:
        keys[:k] = src[:k]


@_jit
def _append_counts(raw, k, n_features, out_idx, out_cnt, nnz, row, tmp, hist):
    """Append one document's (column, count) pairs of the hashes ``raw[:k]`` in ``n_features``
    columns, columns ascending; returns the (possibly grown) arrays and the new length. ``row``,
    ``tmp`` (at least ``k`` long) and ``hist`` are scratch."""
    for j in range(k):
        row[j] = _feature_index(raw[j], n_features)
    bits = 0
    while (np.int64(1) << bits) < n_features:
        bits += 1
    _radix_sort(row, k, bits, tmp, hist)
    if nnz + k > len(out_idx):
        cap = max(2 * len(out_idx), nnz + k)
        grown_i = np.empty(cap, np.int32)
        grown_c = np.empty(cap, np.float32)
        grown_i[:nnz] = out_idx[:nnz]
        grown_c[:nnz] = out_cnt[:nnz]
        out_idx, out_cnt = grown_i, grown_c
    q = 0
    while q < k:
        r = q
        while r < k and row[r] == row[q]:
            r += 1
        out_idx[nnz] = row[q]
        out_cnt[nnz] = r - q
        nnz += 1
        q = r
    return out_idx, out_cnt, nnz


@_jit
def _tokenize(data, i, stop, max_chars, lower, is_word, tok, starts, ends):
    """Lower-case the word characters of ``data[i:stop]`` (at most ``max_chars`` characters) into
    ``tok``, token t at ``tok[starts[t]:ends[t]]``; returns (tokens, bad) where bad means a code
    point the tables do not know (the document goes to scikit-learn). The arrays are sized by the
    caller and never reassigned here: numba reference-counts an array variable that a loop
    reassigns, which made this loop four times slower."""
    nt, nb, chars, in_word = 0, 0, 0, False
    while i < stop and chars < max_chars:
        b0 = np.int64(data[i])
        if b0 < 0x80:
            cp, width = b0, 1
        elif b0 < 0xE0:
            if i + 1 >= stop:
                break
            cp, width = ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
        elif b0 < 0xF0:
            if i + 2 >= stop:
                break
            cp, width = ((b0 & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
        else:
            if i + 3 >= stop:
                break  # a truncated sequence (not valid UTF-8): stop reading this document
            cp = ((b0 & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12) | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)
            width = 4
        i += width
        chars += 1
        if cp >= len(lower):
            break  # not a code point (a malformed lead byte)
        lc = lower[cp]
        if lc < 0:
            return nt, True
        if is_word[lc]:
            if not in_word:
                starts[nt] = nb
                in_word = True
            nb = _put_utf8(tok, nb, lc)
        elif in_word:
            ends[nt] = nb
            nt += 1
            in_word = False
    if in_word:
        ends[nt] = nb
        nt += 1
    return nt, False


@_jit
def _ngram_hashes(tok, starts, ends, nt, ngram_max, scratch, feats):
    """murmur3 of every word 1..ngram_max-gram (words joined by one space) into ``feats``; returns
    how many."""
    k = 0
    for t in range(nt):
        feats[k] = murmur3_32(tok[starts[t] :], ends[t] - starts[t])
        k += 1
    for n in range(2, ngram_max + 1):
        for t in range(nt - n + 1):
            m = 0
            for j in range(t, t + n):
                if j > t:
                    scratch[m] = 32
                    m += 1
                for q in range(starts[j], ends[j]):
                    scratch[m] = tok[q]
                    m += 1
            feats[k] = murmur3_32(scratch, m)
            k += 1
    return k


@_jit
def ngram_count_rows(offsets, data, valid, max_chars, ngram_max, n_features, n_features_2, lower, is_word):
    """(indptr, indices int32, counts float32) of the CSR count matrix in ``n_features`` columns,
    the same in ``n_features_2`` columns (empty when it is 0), and ``fallback``: documents whose
    rows are left empty for scikit-learn. The text is tokenized and hashed once for both."""
    n_docs = len(offsets) - 1
    indptr = np.zeros(n_docs + 1, np.int64)
    indptr_2 = np.zeros(n_docs + 1, np.int64)
    fallback = np.zeros(n_docs, np.bool_)
    out_idx = np.empty(1024, np.int32)
    out_cnt = np.empty(1024, np.float32)
    out_idx_2 = np.empty(1024 if n_features_2 > 0 else 0, np.int32)
    out_cnt_2 = np.empty(1024 if n_features_2 > 0 else 0, np.float32)
    nnz = 0
    nnz_2 = 0
    # scratch sized once for the batch's longest document (bytes; a character is 1-4 of them)
    longest = 1
    for d in range(n_docs):
        span = offsets[d + 1] - offsets[d]
        if max_chars < span:  # (max_chars may be int64's largest: no product before this test)
            span = min(span, 4 * max_chars)
        longest = max(longest, span)
    tok = np.empty(4 * longest + 4, np.uint8)  # the document's tokens, lower-cased UTF-8, back to back
    starts = np.empty(longest + 1, np.int64)
    ends = np.empty(longest + 1, np.int64)
    scratch = np.empty(len(tok) + ngram_max + 1, np.uint8)
    feats = np.empty(ngram_max * (longest + 1), np.int64)
    row = np.empty(len(feats), np.int64)
    tmp = np.empty(len(feats), np.int64)
    hist = np.zeros(257, np.int64)
    for d in range(n_docs):
        if valid[d]:
            nt, bad = _tokenize(data, offsets[d], offsets[d + 1], max_chars, lower, is_word, tok, starts, ends)
            if bad:
                fallback[d] = True
                indptr[d + 1] = nnz
                indptr_2[d + 1] = nnz_2
                continue
            k = _ngram_hashes(tok, starts, ends, nt, ngram_max, scratch, feats)
            out_idx, out_cnt, nnz = _append_counts(feats, k, n_features, out_idx, out_cnt, nnz, row, tmp, hist)
            if n_features_2 > 0:
                out_idx_2, out_cnt_2, nnz_2 = _append_counts(feats, k, n_features_2, out_idx_2, out_cnt_2, nnz_2, row, tmp, hist)
        indptr[d + 1] = nnz
        indptr_2[d + 1] = nnz_2
    return (indptr, out_idx[:nnz].copy(), out_cnt[:nnz].copy()), (indptr_2, out_idx_2[:nnz_2].copy(), out_cnt_2[:nnz_2].copy()), fallback


def large_strings(texts) -> pa.Array:
    """``texts`` (a list of str or an Arrow string array, chunked or not) as one ``large_string`` array."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        return pa.array(texts, pa.large_string())
    arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    return arr.cast(pa.large_string())


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64, UTF-8 bytes, valid) of a non-empty ``large_string`` array, zero-copy where
    Arrow allows, for the compiled kernels that read documents straight from the buffers."""
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    return offsets, data, arr.is_valid().to_numpy(zero_copy_only=False)


def hashed_ngram_counts(texts, n_features: int, ngram_max: int, max_chars: int | None = None):
    """scipy CSR float32 (documents × n_features) of hashed word 1..n-gram counts of ``texts``
    (a list of str or an Arrow string array), equal to scikit-learn's ``HashingVectorizer`` on
    the texts cut at ``max_chars`` characters."""
    return hashed_ngram_counts_shared(texts, (n_features,), ngram_max, max_chars)[0]


def hashed_ngram_counts_shared(texts, n_features: tuple[int, ...], ngram_max: int, max_chars: int | None = None) -> list:
    """:func:`hashed_ngram_counts` in one or two column counts from one tokenization: the tier
    signals' quality model (2^20 columns) and target similarity (2^18) read the same n-grams."""
    from scipy import sparse

    if not 1 <= len(n_features) <= 2:
        raise ValueError("one or two column counts")
    arr = large_strings(texts)
    n = len(arr)
    lower, is_word = unicode_tables()
    if n == 0:
        return [sparse.csr_matrix((0, f), dtype=np.float32) for f in n_features]
    offsets, data, valid = string_buffers(arr)
    limit = max_chars if max_chars is not None else np.iinfo(np.int64).max
    second = n_features[1] if len(n_features) == 2 else 0
    first_rows, second_rows, fallback = ngram_count_rows(offsets, data, valid, limit, ngram_max, n_features[0], second, lower, is_word)
    out = []
    for columns, (indptr, indices, counts) in zip(n_features, (first_rows, second_rows)):
        index_type = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
        x = sparse.csr_matrix((counts, indices.astype(index_type), indptr.astype(index_type)), shape=(n, columns))
        if fallback.any():
            x = _fill_fallback_rows(x, arr, fallback, columns, ngram_max, max_chars)
        x.has_sorted_indices = True
        out.append(x)
    return out


def sklearn_vectorizer(n_features: int, ngram_max: int):
    """The scikit-learn ``HashingVectorizer`` the kernel reproduces (and falls back to)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=n_features,
        ngram_range=(1, ngram_max),
        alternate_sign=False,
        lowercase=True,
        norm=None,
        token_pattern=r"(?u)\b\w+\b",
        dtype=np.float32,
    )


def _fill_fallback_rows(x, arr: pa.Array, fallback: np.ndarray, n_features: int, ngram_max: int, max_chars: int | None):
    """``x`` with the rows of ``fallback`` documents computed by scikit-learn."""
    from scipy import sparse

    rows = np.flatnonzero(fallback)
    slow = sklearn_vectorizer(n_features, ngram_max).transform([(arr[int(r)].as_py() or "")[:max_chars] for r in rows]).tocsr()
    rest = np.flatnonzero(~fallback)
    stacked = sparse.vstack([x[rest], slow], format="csr")
    position = np.empty(len(fallback), np.int64)
    position[np.concatenate([rest, rows])] = np.arange(len(fallback))
    x = stacked[position]
    x.sort_indices()
    return x
