"""Benchmark decontamination by long n-gram overlap (GPT-3, Brown et al. 2020 App. C: 13-grams;
BETR App. B.2 decontaminates its targets' test sets the same way via NeMo-Curator).

A document is contaminated when it shares at least one word n-gram (default 13 words of
lower-cased ``\\w+`` tokens) with any test-split example given. N-grams are 64-bit hashes (polars
token hashes folded over a sliding window in numpy), so a false match needs a 64-bit collision
(~1e-19 per pair); 32-bit hashes would flag about 3% of 1,000-word documents against GSM8K's test
set by chance. Departure: GPT-3/NeMo remove ±200 characters around a match and drop documents split
more than 10 times; tierlake flags the whole document (it never enters selection) and keeps it,
with the number of matching n-grams, so nothing is silently rewritten. As in GPT-3 and BETR
(App. B.2: "n-grams seen >10,000 times exempt"), an n-gram found in more than
``max_ngram_doc_frequency`` corpus documents is boilerplate or a template, not a leak, and does not
count (tierlake counts documents, not occurrences).
"""

from __future__ import annotations

import numpy as np
import polars as pl

_MIX = np.uint64(0x9E3779B97F4A7C15)


def ngram_hashes(texts, n: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hashes of every word n-gram of every text, per-text offsets of length len+1)."""
    s = pl.Series("t", texts, dtype=pl.String).fill_null("").str.to_lowercase()
    toks = pl.DataFrame({"doc": np.arange(len(s), dtype=np.uint32), "tok": s.str.extract_all(r"\w+")}).explode("tok").drop_nulls("tok")
    doc = toks["doc"].to_numpy()
    wh = toks["tok"].hash(seed=13).to_numpy()
    h = wh.copy()
    for j in range(1, n):
        with np.errstate(over="ignore"):
            h = (h[:-1] * _MIX) ^ wh[j:]
    k = len(h)
    valid = doc[:k] == doc[n - 1 : n - 1 + k] if k > 0 else np.zeros(0, bool)
    hashes, owners = h[valid], doc[:k][valid]
    counts = np.bincount(owners, minlength=len(s)) if len(s) else np.zeros(0, np.int64)
    return hashes, np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def benchmark_ngrams(texts: list[str], n: int = 13) -> np.ndarray:
    """Sorted unique n-gram hashes of the test examples (what documents are checked against)."""
    hashes, _ = ngram_hashes(texts, n)
    return np.unique(hashes)


def matched_ngrams(texts, test_ngrams: np.ndarray, n: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """The distinct test n-gram hashes each text contains: (int64 values, per-text offsets of
    length len+1), ready for an Arrow list column (Spark bigint)."""
    hashes, offsets = ngram_hashes(texts, n)
    n_texts = len(offsets) - 1
    if len(test_ngrams) == 0 or len(hashes) == 0:
        return np.zeros(0, np.int64), np.zeros(n_texts + 1, np.int64)
    pos = np.minimum(np.searchsorted(test_ngrams, hashes), len(test_ngrams) - 1)
    hit = test_ngrams[pos] == hashes
    owner = np.repeat(np.arange(n_texts), np.diff(offsets))[hit]
    values = hashes[hit]
    order = np.lexsort((values, owner))
    owner, values = owner[order], values[order]
    keep = np.ones(len(values), bool)
    keep[1:] = (owner[1:] != owner[:-1]) | (values[1:] != values[:-1])
    owner, values = owner[keep], values[keep]
    counts = np.bincount(owner, minlength=n_texts)
    return values.view(np.int64), np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def contamination(texts, test_ngrams: np.ndarray, n: int = 13) -> np.ndarray:
    """Per text: how many of its n-grams occur in a test example (0 = clean)."""
    hashes, offsets = ngram_hashes(texts, n)
    if len(test_ngrams) == 0 or len(hashes) == 0:
        return np.zeros(len(offsets) - 1, np.int64)
    pos = np.searchsorted(test_ngrams, hashes)
    hit = (pos < len(test_ngrams)) & (test_ngrams[np.minimum(pos, len(test_ngrams) - 1)] == hashes)
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return np.bincount(owner[hit], minlength=len(offsets) - 1).astype(np.int64)
