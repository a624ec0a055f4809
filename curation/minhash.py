"""MinHash signatures and LSH banding (Broder 1997; Leskovec, Rajaraman & Ullman, *Mining of
Massive Datasets* ch. 3), with datasketch's permutation scheme.

Shingles: lower-cased word tokens (runs of Unicode letters, digits and ``_``), n-grams of them
(default n = 5), or character n-grams. A shingle's 32-bit hash is fmix32 of an FNV-style fold of
its tokens' xxh32 hashes (:func:`shingle_hash`), so a token is hashed once and a shingle costs n
multiply-xors. Character shingles are hashed with xxh32 of their bytes.

Scheme: datasketch 2.0's default ``affine32``. A shingle's 32-bit hash h is pre-mixed with the
MurmurHash3 finalizer (fmix32), then permutation k is ``a_k * h + b_k mod 2^32`` with odd
``a_k`` (a bijection), ``a_k, b_k`` drawn from ``numpy.random.RandomState(seed)`` exactly as
datasketch draws them. Signatures are therefore bit-identical to
``datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)`` for the same shingles (tested).

Banding: ``b`` bands of ``r`` rows chosen for a Jaccard threshold by minimising
w_fp·(false-positive area) + w_fn·(false-negative area) under the S-curve 1-(1-s^r)^b, as
datasketch's ``_optimal_param`` does (its weights 0.5/0.5 by default; near dedup's choice of
weights is in :mod:`curation.near_dedup`). Band keys are 64-bit mixes of a band's r values
(collisions only add candidates, which verification removes).

Hot kernels (ASCII word and character shingling, signatures, pair Jaccard) are compiled with numba
(:mod:`curation.minhash_jit`); the numpy reference functions here (:func:`signatures_numpy`, the
vectorized shingling used for non-ASCII text) give identical results and are tested against them.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

MAX_HASH32 = np.uint32(0xFFFFFFFF)
_WORD = re.compile(r"\w+")


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32 arrays of datasketch's affine32 scheme."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (uint32 wraparound is the intended arithmetic)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


TOKEN_PATTERN = r"[^\p{L}\p{N}_]+"  # split on runs of non-word characters (Unicode letters, digits, _)
_COMBINE = np.uint32(0x01000193)  # FNV-1a 32-bit prime


def _tokenize_regex(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    lower = pc.utf8_lower(pc.fill_null(texts, ""))
    parts = pc.split_pattern_regex(lower, TOKEN_PATTERN)
    flat = pc.list_flatten(parts)
    keep = pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
    list_offsets = parts.offsets.to_numpy()
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return flat.filter(pa.array(keep)), kept_before[list_offsets - list_offsets[0]]


def _tokenize_ascii(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Byte-table tokenizer for ASCII-only texts: runs of [A-Za-z0-9_], lower-cased. The tokens
    are an Arrow string array over a compacted copy of the word bytes (no per-token Python)."""
    # lower before the cast: pyarrow 26 ascii_lower on a large_string slice (offsets not starting
    # at 0) returns an invalid array
    texts = pc.ascii_lower(pc.fill_null(texts, "")).cast(pa.large_string())
    n = len(texts)
    offs = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + n + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offs[0] : offs[-1]] if n else np.zeros(0, np.uint8)
    offs = offs - offs[0]
    word = (data >= 97) & (data <= 122)
    word |= (data >= 48) & (data <= 57)
    word |= data == 95
    starts_mask = word.copy()
    starts_mask[1:] &= ~word[:-1]
    text_starts = offs[:-1][offs[:-1] < len(data)]
    starts_mask[text_starts] = word[text_starts]  # a token never spans two texts
    ends_mask = word.copy()
    ends_mask[:-1] &= ~word[1:]
    text_ends = offs[1:][offs[1:] > 0] - 1
    ends_mask[text_ends] = word[text_ends]
    run_starts = np.flatnonzero(starts_mask)
    run_ends = np.flatnonzero(ends_mask) + 1
    compact = data[word]
    tok_off = np.zeros(len(run_starts) + 1, dtype=np.int64)
    np.cumsum(run_ends - run_starts, out=tok_off[1:])
    tokens = pa.LargeStringArray.from_buffers(len(run_starts), pa.py_buffer(tok_off), pa.py_buffer(compact))
    doc_off = np.searchsorted(run_starts, offs, side="left")
    return tokens.cast(pa.string()), doc_off.astype(np.int64)


def tokenize(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Lower-cased word tokens of every text — runs of Unicode letters, digits and ``_`` — as one
    flat string array and per-text offsets (len n+1). ASCII texts take a numpy byte-table path,
    others pyarrow's RE2 split; both give the same tokens on ASCII text. Null text has none."""
    if len(texts) == 0:
        return pa.array([], pa.string()), np.zeros(1, dtype=np.int64)
    return _by_script(texts, _tokenize_ascii, _tokenize_regex, _concat_take_arrow)


def token_hashes(tokens: pa.Array) -> np.ndarray:
    """xxh32 (seed 0) of each token's UTF-8 bytes; each distinct token is hashed once."""
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.uint32)
    enc = pc.dictionary_encode(tokens).combine_chunks() if isinstance(tokens, pa.ChunkedArray) else pc.dictionary_encode(tokens)
    h32 = xxhash.xxh32_intdigest
    uniq = np.fromiter((h32(t) for t in enc.dictionary.cast(pa.binary()).to_pylist()), dtype=np.uint32, count=len(enc.dictionary))
    return uniq[enc.indices.to_numpy(zero_copy_only=False)]


def combine(hashes: list[int]) -> int:
    """Scalar reference of the shingle hash: fmix32 of an FNV-style fold of the token hashes,
    seeded with the token count."""
    acc = np.uint32(len(hashes))
    for h in hashes:
        acc = np.uint32((int(acc) * 0x01000193) & 0xFFFFFFFF) ^ np.uint32(h)
    return int(fmix32(np.array([acc], dtype=np.uint32))[0])


def shingle_hash(shingle: bytes) -> int:
    """The hash tierlake gives a shingle (space-joined tokens); usable as datasketch's hashfunc."""
    return combine([xxhash.xxh32_intdigest(t) for t in shingle.split(b" ")])


def shingles(text: str, ngram: int = 5, unit: str = "word") -> list[bytes]:
    """Reference shingling of one text (space-joined tokens, or characters). A document shorter
    than n units yields one shingle of everything it has; one with no units yields none."""
    if unit == "char":
        t = " ".join(text.lower().split())
        grams = [t] if len(t) < ngram else [t[i : i + ngram] for i in range(len(t) - ngram + 1)]
        return list(dict.fromkeys(g.encode() for g in grams if g))
    tokens, _ = tokenize(pa.array([text]))
    words = tokens.to_pylist()
    if not words:
        return []
    if len(words) < ngram:
        return [" ".join(words).encode()]
    return list(dict.fromkeys(" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)))


def _char_shingle_hashes_python(texts, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Character shingle hashes text by text (the reference; used for non-ASCII texts)."""
    h32 = xxhash.xxh32_intdigest
    parts = [[h32(s) for s in shingles(t or "", ngram, "char")] for t in texts]
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
    return np.fromiter((h for p in parts for h in p), dtype=np.uint32, count=int(offsets[-1])), offsets


def _arrow_bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets into them) of a string array, zero-copy where possible."""
    arr = pc.fill_null(arr, "")
    if pa.types.is_string(arr.type):
        offs = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    else:
        offs = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), offs


def _ascii_char_shingle_hashes(arr: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Character shingle hashes of ASCII texts by the compiled kernel."""
    from curation.minhash_jit import ascii_char_shingle_hashes

    return ascii_char_shingle_hashes(*_arrow_bytes(arr), ngram)


def _word_shingle_hashes_vectorized(arr: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Numpy/Arrow reference of word shingle hashing (any script): tokenize, hash each distinct
    token once, window folds over the token hashes."""
    tokens, toff = tokenize(arr)
    th = token_hashes(tokens)
    lengths = np.diff(toff)
    n_windows = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    offsets = np.concatenate(([0], np.cumsum(n_windows))).astype(np.int64)
    out = np.empty(int(offsets[-1]), dtype=np.uint32)
    # full windows: the window starting at every token with at least n tokens after it in its doc
    full = lengths >= ngram
    if full.any():
        doc_of_tok = np.repeat(np.arange(len(lengths)), lengths)
        pos_in_doc = np.arange(len(th)) - np.repeat(toff[:-1], lengths)
        starts = np.flatnonzero((pos_in_doc <= (lengths[doc_of_tok] - ngram)) & full[doc_of_tok])
        acc = np.full(len(starts), ngram, dtype=np.uint32)
        for j in range(ngram):
            acc = (acc * _COMBINE) ^ th[starts + j]
        dest = np.repeat(offsets[:-1][full], n_windows[full])
        dest += np.arange(len(dest)) - np.repeat(np.concatenate(([0], np.cumsum(n_windows[full])[:-1])), n_windows[full])
        out[dest] = fmix32(acc)
    # short docs (1..n-1 tokens): one shingle of all their tokens
    short = np.flatnonzero((lengths > 0) & (lengths < ngram))
    if len(short):
        acc = lengths[short].astype(np.uint32)
        for j in range(ngram - 1):
            live = j < lengths[short]
            idx = toff[short][live] + j
            acc[live] = (acc[live] * _COMBINE) ^ th[idx]
        out[offsets[short]] = fmix32(acc)
    return out, offsets


def _ascii_word_shingle_hashes(arr: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Word shingle hashes of ASCII texts by the compiled kernel, straight from the Arrow buffers."""
    from curation.minhash_jit import ascii_shingle_hashes

    return ascii_shingle_hashes(*_arrow_bytes(arr), ngram)


def _concat_take_numpy(a: np.ndarray, b: np.ndarray, take: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b])[take]


def _concat_take_arrow(a: pa.Array, b: pa.Array, take: np.ndarray) -> pa.Array:
    return pa.concat_arrays([a, b]).take(pa.array(take))


def _by_script(arr: pa.Array, ascii_fn, other_fn, concat_take=_concat_take_numpy):
    """(values, per-text offsets) with ASCII texts through ``ascii_fn`` (a byte-level kernel) and
    the others through ``other_fn``, merged back into document order by ``concat_take`` (values of
    both parts concatenated, then taken in document order)."""
    is_ascii = pc.fill_null(pc.string_is_ascii(arr), True).to_numpy(zero_copy_only=False)
    if is_ascii.all():
        return ascii_fn(arr)
    if not is_ascii.any():
        return other_fn(arr)
    idx_a, idx_u = np.flatnonzero(is_ascii), np.flatnonzero(~is_ascii)
    va, oa = ascii_fn(arr.take(pa.array(idx_a)))
    vu, ou = other_fn(arr.take(pa.array(idx_u)))
    counts = np.zeros(len(arr), dtype=np.int64)
    counts[idx_a], counts[idx_u] = np.diff(oa), np.diff(ou)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    # position of every value of the document order in the concatenation [va, vu]
    src_start = np.zeros(len(arr), dtype=np.int64)
    src_start[idx_a], src_start[idx_u] = oa[:-1] - oa[0], ou[:-1] - ou[0] + len(va)
    take = np.repeat(src_start - offsets[:-1], counts) + np.arange(offsets[-1])
    return concat_take(va, vu, take), offsets


def shingle_hashes(texts, ngram: int = 5, unit: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of every text concatenated (uint32; repeats allowed, MinHash is a min) and
    per-text offsets (len n+1). Word and character shingles of ASCII texts come from compiled
    kernels (:mod:`curation.minhash_jit`); other texts from the vectorized numpy/Arrow path (words)
    or text by text (characters). Each text gets the same set of hashes either way (tested)."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.int64)
    if unit == "char":
        return _by_script(arr, lambda t: _ascii_char_shingle_hashes(t, ngram), lambda t: _char_shingle_hashes_python(t.to_pylist(), ngram))
    return _by_script(arr, lambda t: _ascii_word_shingle_hashes(t, ngram), lambda t: _word_shingle_hashes_vectorized(t, ngram))


def signatures(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures by the compiled kernel
    (:func:`curation.minhash_jit.minhash_signatures`); a document with no shingles gets all MAX.
    Equal to :func:`signatures_numpy` and to datasketch (tested)."""
    from curation.minhash_jit import minhash_signatures

    return minhash_signatures(
        np.ascontiguousarray(hashes, dtype=np.uint32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        np.ascontiguousarray(a, dtype=np.uint32),
        np.ascontiguousarray(b, dtype=np.uint32),
    )


def signatures_numpy(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Numpy reference of :func:`signatures`: a batch's shingles permuted in cache-sized chunks
    (no per-document loop over permutations), then a per-document minimum."""
    n_docs, k = len(offsets) - 1, len(a)
    out = np.full((n_docs, k), MAX_HASH32, dtype=np.uint32)
    if n_docs == 0 or len(hashes) == 0:
        return out
    mixed = fmix32(hashes.astype(np.uint32, copy=False))
    doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
    buf = np.empty((min(chunk, len(mixed)), k), dtype=np.uint32)
    for start in range(0, len(mixed), chunk):
        h = mixed[start : start + chunk]
        phv = buf[: len(h)]
        np.multiply(h[:, None], a[None, :], out=phv)
        np.add(phv, b[None, :], out=phv)
        docs = doc_of[start : start + chunk]
        # segments of consecutive rows per document inside this chunk
        bounds = np.flatnonzero(np.diff(docs)) + 1
        starts = np.concatenate(([0], bounds))
        mins = np.minimum.reduceat(phv, starts, axis=0)
        owners = docs[starts]
        out[owners] = np.minimum(out[owners], mins)
    return out


def _fp_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import (
        quad,  # here, not at import: Spark's Python workers import this module
    )

    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _fn_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0]


@lru_cache(maxsize=64)
def band_edges(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive + false-negative areas (datasketch)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    best, opt = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            err = fp_weight * _fp_area(threshold, bands, rows) + fn_weight * _fn_area(threshold, bands, rows)
            if err < best:
                best, opt = err, (bands, rows)
    return opt


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """P(two documents with Jaccard s share at least one band) = 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - s**rows) ** bands


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) int64 keys: a 64-bit mix of each band's ``rows`` values."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    p = np.uint64(0x9E3779B97F4A7C15)
    for band in range(bands):
        h = np.full(n, ((band + 1) * 0xC2B2AE3D27D4EB4F) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
        for j in range(rows):
            h = (h ^ sigs[:, band * rows + j].astype(np.uint64)) * p
            h ^= h >> np.uint64(29)
        keys[:, band] = h
    return keys.view(np.int64)


def bucket_star_edges(band: np.ndarray, key: np.ndarray, ids: pa.Array, old: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
    """Star edges of LSH buckets: for every (band, key) bucket with more than one member, an edge
    (member, smallest id of the bucket) per other member — never all pairs. With ``old`` (rows of
    an index of earlier runs), buckets holding only old rows give no edges. Returns (src, dst)
    string arrays; one sort of the rows, no per-bucket Python."""
    n = len(band)
    if n == 0:
        return pa.array([], pa.string()), pa.array([], pa.string())
    order = pc.sort_indices(
        pa.table({"band": band, "key": key, "id": ids}), sort_keys=[("band", "ascending"), ("key", "ascending"), ("id", "ascending")]
    ).to_numpy()
    b, k = band[order], key[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (b[1:] != b[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    size = np.diff(np.append(starts, n))
    live = size > 1
    if old is not None:
        live &= np.minimum.reduceat(old[order].astype(np.int8), starts) == 0
    member = ~first & live[group]
    src = ids.take(pa.array(order[member]))
    dst = ids.take(pa.array(order[starts[group[member]]]))
    return src, dst


def load_kernels(ngram: int = 5, unit: str = "word", verify: bool = True) -> None:
    """Load (or compile) the numba kernels the near-dup path will call, on a tiny input: a caller
    can do it on a background thread while its input is still being read (about 0.5 s of a
    process's first call otherwise)."""
    texts = pa.array(["load the kernels now", "load the kernels"], pa.string())
    hashes, offsets = shingle_hashes(texts, ngram, unit)
    a, b = permutations(2)
    signatures(hashes, offsets, a, b)
    if verify:
        pair_jaccard(texts, texts, ngram, unit)


def jaccard_of_texts(a: str, b: str, ngram: int = 5, unit: str = "word") -> float:
    sa, sb = set(shingles(a, ngram, unit)), set(shingles(b, ngram, unit))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def pair_jaccard(left: pa.Array, right: pa.Array, ngram: int = 5, unit: str = "word") -> np.ndarray:
    """Exact Jaccard of the shingle-hash sets of each (left[i], right[i]) pair, for a batch
    (32-bit shingle hashes: a collision merges two shingles with probability ~ S^2 / 2^33);
    1.0 when both sides have no shingle."""
    from curation.minhash_jit import pair_jaccard_sets

    hl, ol = shingle_hashes(left, ngram, unit)
    hr, orr = shingle_hashes(right, ngram, unit)
    return pair_jaccard_sets(hl, ol, hr, orr)
