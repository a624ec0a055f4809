"""MinHash signatures and LSH banding (Broder 1997; Leskovec, Rajaraman & Ullman, *Mining of
Massive Datasets* ch. 3), with datasketch's permutation scheme.

Scheme: datasketch 2.0's default ``affine32``. A shingle's 32-bit hash h is pre-mixed with the
MurmurHash3 finalizer (fmix32), then permutation k is ``a_k * h + b_k mod 2^32`` with odd
``a_k`` (a bijection), ``a_k, b_k`` drawn from ``numpy.random.RandomState(seed)`` exactly as
datasketch draws them. Signatures are therefore bit-identical to
``datasketch.MinHash(num_perm, seed, hashfunc=xxh32)`` for the same shingles (tested).
Shingles are hashed with xxh32 (seed 0) of their UTF-8 bytes.

Banding: ``b`` bands of ``r`` rows chosen for a Jaccard threshold by minimising
0.5·(false-positive area) + 0.5·(false-negative area) under the S-curve 1-(1-s^r)^b, as
datasketch's ``_optimal_param`` does. Band keys are 64-bit mixes of a band's r values
(collisions only add candidates, which verification removes).

Kernels are numpy only; the whole batch of shingles is permuted at once in chunks (no per-document
loop over permutations).
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import xxhash
from scipy.integrate import quad

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


def word_tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens (Unicode-aware); the same words the demo ground truth uses."""
    return _WORD.findall(text.lower())


def shingles(text: str, ngram: int = 5, unit: str = "word") -> list[bytes]:
    """Distinct n-gram shingles as UTF-8 bytes. A document shorter than n units yields one
    shingle of everything it has (so short documents do not all share an empty signature);
    an empty document yields none."""
    if unit == "char":
        t = " ".join(text.lower().split())
        grams = [t] if len(t) < ngram else [t[i : i + ngram] for i in range(len(t) - ngram + 1)]
        return list(dict.fromkeys(g.encode() for g in grams if g))
    words = word_tokens(text)
    if not words:
        return []
    if len(words) < ngram:
        return [" ".join(words).encode()]
    return list(dict.fromkeys(" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)))


def shingle_hashes(texts, ngram: int = 5, unit: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """All documents' shingle hashes concatenated (uint32) and per-document offsets (len n+1)."""
    h32 = xxhash.xxh32_intdigest
    parts, counts = [], []
    for text in texts:
        hs = [h32(s) for s in shingles(text or "", ngram, unit)]
        parts.append(hs)
        counts.append(len(hs))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.fromiter((h for hs in parts for h in hs), dtype=np.uint32, count=int(offsets[-1]))
    return flat, offsets


def signatures(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures; a document with no shingles gets all MAX."""
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
    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _fn_area(threshold: float, b: int, r: int) -> float:
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


def jaccard_of_texts(a: str, b: str, ngram: int = 5, unit: str = "word") -> float:
    sa, sb = set(shingles(a, ngram, unit)), set(shingles(b, ngram, unit))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
