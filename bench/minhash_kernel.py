"""MinHash kernel throughput on one core, against the single-core numpy bound measured in the same run.

    .venv/bin/python bench/minhash_kernel.py [--docs 10000] [--repeats 5]

Bound (reference dedup.md §9): "multiply-shift in place into a preallocated S x K u64 buffer",
per document (S ~ 300 shingles, the buffer in cache), i.e. np.multiply + np.add + right shift in
place with no minimum — the arithmetic floor of a per-document numpy MinHash. tierlake's `signatures` (the numba kernel of
curation/minhash_jit.py: affine32 u32 multiply-add-min fused per shingle) and its numpy reference
`signatures_numpy` (u32 multiply-add in place on cache-sized chunks, then a per-document minimum)
are timed on the same shingles. Both are reported in G permuted hashes/s (S*K / seconds); medians of the repeats.
Also: shingling throughput (word and character, compiled and reference), end-to-end kernel
documents/s on one core, exact-dedup normalization on an all-ASCII batch (the ASCII fast path
against the Unicode path: NFKC + Unicode lower-casing), and the numba kernels' first-use cost in a
fresh process: compiled into an empty cache, then loaded from that cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from curation.minhash import (  # noqa: E402
    _char_shingle_hashes_python,
    _word_shingle_hashes_vectorized,
    band_keys,
    permutations,
    shingle_hashes,
    signatures,
    signatures_numpy,
)
from curation.normalize import collapse_ascii_whitespace, normalize_text  # noqa: E402

FIRST_USE = """
import time
t = time.perf_counter()
import pyarrow as pa
from curation.minhash import pair_jaccard, permutations, shingle_hashes, signatures
a, b = permutations(112, 1)
h, o = shingle_hashes(pa.array(["a b c d e f g"]), 5)
signatures(h, o, a, b)
shingle_hashes(pa.array(["a b c"]), 3, "char")
pair_jaccard(pa.array(["a b"]), pa.array(["a c"]))
print(time.perf_counter() - t)
"""


def first_use_seconds() -> tuple[float, float]:
    """(seconds to import and first-call every kernel with an empty numba cache, the same with
    that cache filled), each in a fresh interpreter."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": root}
        cold, warm = (
            float(subprocess.run([sys.executable, "-c", FIRST_USE], env=env, check=True, capture_output=True, text=True).stdout.strip())
            for _ in range(2)
        )
    return cold, warm


def unicode_normalize(texts):
    """normalize_text without its ASCII fast path (NFKC, Unicode lower-casing), for comparison."""
    import pyarrow.compute as pc

    out = pc.utf8_lower(pc.utf8_normalize(texts, form="NFKC"))
    return pc.utf8_trim_whitespace(collapse_ascii_whitespace(out)).cast(texts.type)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--num-perm", type=int, default=112)
    args = ap.parse_args()
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(20_000)]
    texts = pa.array([" ".join(rng.choice(vocab) for _ in range(300)) for _ in range(args.docs)])
    a, b = permutations(args.num_perm, 1)
    k = args.num_perm

    hashes, offsets = shingle_hashes(texts[:10], 5)
    signatures(hashes, offsets, a, b)  # compile (or load) the numba kernels outside the timing
    shingle_s, sig_s, bound_s, np_shingle_s, np_sig_s = [], [], [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        hashes, offsets = shingle_hashes(texts, 5)
        shingle_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        sig = signatures(hashes, offsets, a, b)
        sig_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        _word_shingle_hashes_vectorized(texts, 5)
        np_shingle_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        signatures_numpy(hashes, offsets, a, b)
        np_sig_s.append(time.perf_counter() - t)
    s_total = len(hashes)
    # the bound (reference setting): per document, multiply-shift in place into a preallocated
    # S_doc x K u64 buffer that fits in cache; over the first 2,000 documents
    h64 = hashes.astype(np.uint64)
    a64, b64 = a.astype(np.uint64), b.astype(np.uint64)
    n_bound = min(2000, args.docs)
    buf = np.empty((int(np.diff(offsets)[:n_bound].max()), k), dtype=np.uint64)
    s_bound = int(offsets[n_bound])
    for _ in range(args.repeats):
        t = time.perf_counter()
        for d in range(n_bound):
            h = h64[offsets[d] : offsets[d + 1], None]
            out = buf[: len(h)]
            np.multiply(h, a64[None, :], out=out)
            np.add(out, b64[None, :], out=out)
            np.right_shift(out, np.uint64(32), out=out)
        bound_s.append(time.perf_counter() - t)
    band_keys(sig, 14, 8)
    sig_rate = s_total * k / statistics.median(sig_s) / 1e9
    bound_rate = s_bound * k / statistics.median(bound_s) / 1e9
    char_s, char_ref_s = [], []
    ref_docs = texts.slice(0, min(1000, args.docs))  # the text-by-text reference is slow
    for _ in range(args.repeats):
        t = time.perf_counter()
        shingle_hashes(texts, 5, "char")
        char_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        _char_shingle_hashes_python(ref_docs.to_pylist(), 5)
        char_ref_s.append(time.perf_counter() - t)
    norm_s, norm_u_s = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        fast = normalize_text(texts)
        norm_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        slow = unicode_normalize(texts)
        norm_u_s.append(time.perf_counter() - t)
    assert fast.equals(slow)
    cold, warm = first_use_seconds()
    report = {
        "documents": args.docs,
        "shingles": s_total,
        "num_perm": k,
        "shingling_docs_per_s": round(args.docs / statistics.median(shingle_s)),
        "signature_G_hashes_per_s": round(sig_rate, 3),
        "numpy_bound_G_hashes_per_s": round(bound_rate, 3),
        "signature_over_bound": round(sig_rate / bound_rate, 3),
        "numpy_reference_shingling_docs_per_s": round(args.docs / statistics.median(np_shingle_s)),
        "numpy_reference_signature_G_hashes_per_s": round(s_total * k / statistics.median(np_sig_s) / 1e9, 3),
        "char5_shingling_docs_per_s": round(args.docs / statistics.median(char_s)),
        "char5_reference_shingling_docs_per_s": round(len(ref_docs) / statistics.median(char_ref_s)),
        "kernel_docs_per_s_one_core": round(args.docs / (statistics.median(shingle_s) + statistics.median(sig_s))),
        "normalize_ascii_fast_path_docs_per_s": round(args.docs / statistics.median(norm_s)),
        "normalize_unicode_path_docs_per_s": round(args.docs / statistics.median(norm_u_s)),
        "first_use_empty_cache_s": round(cold, 2),
        "first_use_cached_s": round(warm, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
