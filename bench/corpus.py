"""Benchmark corpus for dedup: documents of ~300 words with planted near-duplicates of known Jaccard.

Words are pronounceable pseudo-words drawn from a Zipf-like distribution over a 60,000-word
vocabulary (unrelated documents share almost no word 5-grams, as with real prose). 80% of the
documents are originals; 20% are copies of an original with k words substituted, k chosen so the
copy's word-5-gram Jaccard lands anywhere in [0.5, 1.0] (the exact value is computed and stored).
Text is lower-case letters and spaces only, so every peer's tokenizer sees the same words.

Writes DIR/docs.jsonl (id, text), DIR/docs.parquet and DIR/pairs.parquet (orig, copy, jaccard).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _vocabulary(rng: np.random.Generator, size: int = 60_000) -> np.ndarray:
    syllables = np.array([c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"])
    words: set[str] = set()
    while len(words) < size:
        k = int(rng.integers(2, 5))
        picks = syllables[rng.integers(0, len(syllables), (size, k))]
        words.update("".join(row) for row in picks)
    return np.array(sorted(words)[:size]) if len(words) > size else np.array(sorted(words))


def shingle_set(tokens, n=5):
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def generate(out_dir: str, n_docs: int, seed: int = 0, words: int = 300) -> dict:
    marker = os.path.join(out_dir, "summary.json")
    if os.path.exists(marker):
        return json.load(open(marker))
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng)
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks**0.9
    p /= p.sum()
    n_copies = n_docs // 5
    n_orig = n_docs - n_copies
    lengths = rng.integers(words - 50, words + 50, n_orig)
    cdf = np.cumsum(p)

    def draw(k):
        return np.minimum(np.searchsorted(cdf, rng.random(k)), len(vocab) - 1)

    flat = draw(int(lengths.sum()))
    originals = np.split(flat, np.cumsum(lengths)[:-1])
    texts = [" ".join(vocab[o]) for o in originals]
    ids = [f"d{i:07d}" for i in range(n_orig)]
    pairs = []
    sources = rng.integers(0, n_orig, n_copies)
    targets = rng.uniform(0.5, 1.0, n_copies)
    for j, (src, tj) in enumerate(zip(sources, targets)):
        toks = originals[src].copy()
        q = 2 * tj / (1 + tj)
        rate = 1 - q ** (1 / 5)
        mask = rng.random(len(toks)) < rate
        toks[mask] = draw(int(mask.sum()))
        a, b = shingle_set(list(originals[src])), shingle_set(list(toks))
        jac = len(a & b) / len(a | b)
        cid = f"d{n_orig + j:07d}"
        ids.append(cid)
        texts.append(" ".join(vocab[toks]))
        pairs.append((ids[src], cid, jac))
    # shuffle document order so copies are not all at the end (ids keep their meaning)
    order = rng.permutation(len(ids))
    table = pa.table({"id": pa.array([ids[i] for i in order]), "text": pa.array([texts[i] for i in order])})
    pq.write_table(table, os.path.join(out_dir, "docs.parquet"))
    with open(os.path.join(out_dir, "docs.jsonl"), "w") as fh:
        for i in order:
            fh.write(json.dumps({"id": ids[i], "text": texts[i]}) + "\n")
    pq.write_table(
        pa.table({"orig": [p_[0] for p_ in pairs], "copy": [p_[1] for p_ in pairs], "jaccard": [p_[2] for p_ in pairs]}),
        os.path.join(out_dir, "pairs.parquet"),
    )
    summary = {
        "documents": len(ids),
        "originals": n_orig,
        "copies": n_copies,
        "seed": seed,
        "mean_words": float(np.mean([len(t.split()) for t in texts[:1000]])),
    }
    json.dump(summary, open(marker, "w"))
    return summary


if __name__ == "__main__":
    print(generate(sys.argv[1], int(sys.argv[2])))
