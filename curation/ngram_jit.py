"""Compiled (numba) kernels for the token and Gopher repetition signals of :mod:`curation.quality_signals`:
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
Above the largest top-n-gram size only n-grams whose first n − 1 words repeat are grouped (no
other can repeat), so the duplicated 5..10-grams of prose cost little.

:func:`quality_tokens` is the tokenizing pass before it: the tokens of
``curation.quality_signals.TOKEN_PATTERN`` read straight from the Arrow buffers, with the word,
alphabetic and stop-word statistics, in place of polars' ``extract_all`` and per-token string
columns (the same tokens, tested against polars).

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
def _fill_table(h, m, keys, counts, lens, used, glen, first, slot_of):
    """Group the first ``m`` hashes of ``h`` in a table sized for them: ``counts``/``lens`` per slot
    (the count and the first occurrence's ``glen``), ``first[i]`` whether i is its n-gram's first
    occurrence, ``slot_of[i]`` its slot. Returns the best (count, count × length) value."""
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
        slot_of[i] = s
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
    max_top = 2  # unigrams are never grouped, so bigrams are always counted in full
    for n in top_ns:
        max_top = max(max_top, n)
    m_all = len(wh)
    size = _capacity(m_all if m_all > 0 else 1)
    keys = np.empty(size, np.uint64)
    counts = np.zeros(size, np.int64)
    lens = np.zeros(size, np.int64)
    used = np.zeros(size, np.bool_)
    h = np.empty(m_all, np.uint64)
    glen = np.empty(m_all, np.int64)
    first = np.zeros(m_all, np.bool_)
    slot_of = np.zeros(m_all, np.int64)
    pos = np.empty(m_all, np.int64)
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
            pos[i] = i
        m = length  # n-grams (candidates) at the previous level
        for n in range(2, max_n + 1):
            if n <= max_top:  # every n-gram: the top-n-gram value needs all of them
                m = length - n + 1
                if m <= 0:
                    break
                last = start + n - 1
                for i in range(m):
                    h[i] = (h[i] * mix) ^ wh[last + i]
                    glen[i] = glen[i] + 1 + wl[last + i]
            else:
                # only n-grams whose first n-1 words repeat can repeat: keep those (in text order),
                # so the same occurrences are first ones as among all n-grams
                k = 0
                for j in range(m):
                    p = pos[j]
                    if p <= length - n and counts[slot_of[j]] >= 2:
                        pos[k] = p
                        h[k] = (h[j] * mix) ^ wh[start + p + n - 1]
                        k += 1
                m = k
                if m == 0:
                    break
            best = _fill_table(h, m, keys, counts, lens, used, glen, first, slot_of)
            for t in range(len(top_ns)):
                if top_ns[t] == n:
                    top[t, d] = best
            for t in range(len(dup_ns)):
                if dup_ns[t] == n:
                    cover[: length + 1] = 0
                    for i in range(m):
                        if not first[i]:
                            cover[pos[i]] += 1
                            cover[pos[i] + n] -= 1
                    run, total = np.int64(0), np.int64(0)
                    for i in range(length):
                        run += cover[i]
                        if run > 0:
                            total += wl[start + i]
                    dup[t, d] = total
        start = stop
    return top, dup


# Token classes of :data:`curation.quality_signals.TOKEN_PATTERN`, one byte per code point.
WORD, SPACE, ALPHA = 1, 2, 4
_CLASSES: np.ndarray | None = None


def token_classes() -> np.ndarray:
    """``classes[cp]``: WORD if ``\\w``, SPACE if ``\\s``, ALPHA if ``\\p{Alphabetic}``, as polars'
    regex engine (Rust's ``regex``, the one the token pattern ran in) matches the code point alone.
    Built once per process from that engine itself."""
    global _CLASSES
    if _CLASSES is None:
        import polars as pl

        points = np.concatenate([np.arange(0xD800), np.arange(0xE000, 0x110000)]).astype(np.uint32)  # no surrogates
        chars = pl.Series(list(points.tobytes().decode("utf-32-le")), dtype=pl.String)
        classes = np.zeros(0x110000, np.uint8)
        for bit, pattern in ((WORD, r"^\w$"), (SPACE, r"^\s$"), (ALPHA, r"^\p{Alphabetic}$")):
            classes[points[chars.str.contains(pattern).to_numpy()]] |= bit
        _CLASSES = classes
    return _CLASSES


@_jit
def _decode(data, i):
    """(code point, width) of the UTF-8 sequence at ``data[i]`` (Arrow strings are valid UTF-8)."""
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b0 & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12) | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), 4


@_jit
def _is_separator(cp):
    return cp == 0x2E or cp == 0x27 or cp == 0x2019  # . ' ’


@_jit
def _stop_word_bit(data, start, end, stop_bytes, stop_lengths):
    """The bit of the stop word the token ``data[start:end]`` lower-cases to (ASCII letters only:
    no other character lower-cases to one of these ASCII words), else 0."""
    n = end - start
    for w in range(len(stop_lengths)):
        if stop_lengths[w] != n:
            continue
        same = True
        for j in range(n):
            b = data[start + j]
            if 0x41 <= b <= 0x5A:
                b += 32
            if b != stop_bytes[w, j]:
                same = False
                break
        if same:
            return 1 << w
    return 0


@_jit
def _document_tokens(data, i, stop, classes, stop_bytes, stop_lengths, d_hash, d_chars, counts):
    """The tokens of one document, ``data[i:stop]``, into ``d_hash``/``d_chars`` (sized by the
    caller for the document, never reassigned here: numba reference-counts an array variable a
    loop reassigns, which made this loop several times slower). ``counts`` gets (tokens, word
    tokens, their characters, alphabetic tokens); returns the stop-word bit mask."""
    nt, words, word_chars, alphas, stops = 0, 0, 0, 0, 0
    while i < stop:
        cp, width = _decode(data, i)
        c = classes[cp]
        if c & SPACE and not c & WORD:
            i += width
            continue
        start, chars, alpha = i, 0, False
        word = (c & WORD) != 0
        if word:
            while True:  # \w+ then ([.'’]\w+)* greedily
                while i < stop:
                    cp, width = _decode(data, i)
                    c = classes[cp]
                    if not c & WORD:
                        break
                    alpha = alpha or (c & ALPHA) != 0
                    chars += 1
                    i += width
                if i >= stop or not _is_separator(cp):
                    break
                following = i + width
                if following >= stop:
                    break
                cp2, width2 = _decode(data, following)
                if not classes[cp2] & WORD:
                    break
                chars += 1
                i = following
        else:
            while i < stop:  # [^\w\s]+
                cp, width = _decode(data, i)
                c = classes[cp]
                if c & (WORD | SPACE):
                    break
                alpha = alpha or (c & ALPHA) != 0
                chars += 1
                i += width
        h = np.uint64(0xCBF29CE484222325)
        for j in range(start, i):
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
        d_hash[nt], d_chars[nt] = h, chars
        nt += 1
        if word:
            words += 1
            word_chars += chars
            if i - start <= 4:
                stops |= _stop_word_bit(data, start, i, stop_bytes, stop_lengths)
        if alpha:
            alphas += 1
    counts[0], counts[1], counts[2], counts[3] = nt, words, word_chars, alphas
    return stops


@_jit
def quality_tokens(offsets, data, valid, classes, stop_bytes, stop_lengths):
    """The tokens of ``\\w+(?:[.'’]\\w+)*|[^\\w\\s]+`` in every document, in one pass over the
    Arrow string buffers. Per token (text order): document, FNV-1a 64 hash of its UTF-8 bytes,
    characters. Per document: tokens, word tokens (the first alternative: they hold a ``\\w``),
    their characters, tokens holding an alphabetic character, and a bit mask of the stop words
    among the lower-cased tokens."""
    n_docs = len(offsets) - 1
    longest = 1  # a document has at most one token per byte
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    d_hash = np.empty(longest, np.uint64)
    d_chars = np.empty(longest, np.int64)
    counts = np.zeros(4, np.int64)
    cap = 1024
    tok_doc = np.empty(cap, np.int64)
    tok_hash = np.empty(cap, np.uint64)
    tok_chars = np.empty(cap, np.int64)
    per_doc = np.zeros((4, n_docs), np.int64)  # tokens, words, word characters, alphabetic tokens
    stops = np.zeros(n_docs, np.int64)
    nt = 0
    for d in range(n_docs):
        if not valid[d]:
            continue
        stops[d] = _document_tokens(data, offsets[d], offsets[d + 1], classes, stop_bytes, stop_lengths, d_hash, d_chars, counts)
        k = counts[0]
        if nt + k > cap:
            while nt + k > cap:
                cap *= 2
            grown_d = np.empty(cap, np.int64)
            grown_h = np.empty(cap, np.uint64)
            grown_c = np.empty(cap, np.int64)
            grown_d[:nt] = tok_doc[:nt]
            grown_h[:nt] = tok_hash[:nt]
            grown_c[:nt] = tok_chars[:nt]
            tok_doc, tok_hash, tok_chars = grown_d, grown_h, grown_c
        tok_doc[nt : nt + k] = d
        tok_hash[nt : nt + k] = d_hash[:k]
        tok_chars[nt : nt + k] = d_chars[:k]
        nt += k
        for q in range(4):
            per_doc[q, d] = counts[q]
    return tok_doc[:nt], tok_hash[:nt], tok_chars[:nt], per_doc, stops


def stop_word_tables(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """ASCII stop words (at most 4 letters, lower case) as a padded byte matrix and their
    lengths, for :func:`quality_tokens`."""
    if any(len(w) > 4 or not w.isascii() or w != w.lower() for w in words):
        raise ValueError("stop words for quality_tokens are lower-case ASCII of at most 4 letters")
    table = np.zeros((len(words), 4), np.uint8)
    for i, word in enumerate(words):
        table[i, : len(word)] = np.frombuffer(word.encode(), np.uint8)
    return table, np.array([len(w) for w in words], np.int64)
