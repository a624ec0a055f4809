"""MinHash kernel: bit-identical to datasketch, banding as datasketch, short/empty documents."""

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from curation.minhash import (
    band_edges,
    band_keys,
    candidate_probability,
    jaccard_of_texts,
    pair_jaccard,
    permutations,
    shingle_hash,
    shingle_hashes,
    shingles,
    signatures,
    signatures_numpy,
)
from curation.params import NearDedupParams

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank today",
    "The quick brown fox jumps over the lazy cat near the river bank today",
    "short doc",
    "Ünïcode wörds, ÉTÉ été and 数字 123 stay distinct from 124",
    "",
]


@pytest.mark.parametrize("num_perm,seed", [(112, 1), (128, 42), (7, 3)])
def test_signatures_bit_identical_to_datasketch(num_perm, seed):
    a, b = permutations(num_perm, seed)
    hashes, offsets = shingle_hashes(TEXTS, ngram=5)
    ours = signatures(hashes, offsets, a, b)
    # the numpy reference too, in tiny chunks: documents straddle chunk edges
    np.testing.assert_array_equal(signatures_numpy(hashes, offsets, a, b, chunk=5), ours)
    for i, text in enumerate(TEXTS):
        ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
        ref.update_batch(shingles(text, 5))
        assert ref.scheme == "affine32"
        np.testing.assert_array_equal(ours[i], ref.hashvalues, err_msg=f"document {i}")


def test_short_documents_do_not_collapse_and_empty_has_no_shingles():
    assert shingles("two words", 5) == [b"two words"]
    assert shingles("   ", 5) == []
    a, b = permutations(64, 1)
    h, off = shingle_hashes(["alpha beta", "gamma delta", "alpha beta"], 5)
    sig = signatures(h, off, a, b)
    assert not np.array_equal(sig[0], sig[1]) and np.array_equal(sig[0], sig[2])


def test_band_edges_match_datasketch():
    for t, k in [(0.8, 112), (0.7, 128), (0.5, 64)]:
        assert band_edges(t, k) == _optimal_param(t, k, 0.5, 0.5)
    bands, rows = band_edges(0.8, 112)
    assert (bands, rows) == (9, 12)
    assert candidate_probability(0.5, bands, rows) < 0.01 and candidate_probability(0.95, bands, rows) > 0.99
    # datatrove's 14x8 trades false positives for recall at threshold + 0.05
    assert candidate_probability(0.85, 14, 8) > 0.98 > candidate_probability(0.85, bands, rows)
    # the default with verification on weighs false negatives 0.95 (datasketch's search, other weights)
    for t, k in [(0.8, 112), (0.7, 128), (0.85, 256)]:
        assert band_edges(t, k, 0.05, 0.95) == _optimal_param(t, k, 0.05, 0.95)
    assert NearDedupParams().banding() == (14, 8) == band_edges(0.8, 112, 0.05, 0.95)
    assert NearDedupParams(verify=False).banding() == (9, 12)
    assert NearDedupParams(bands=7, rows=16).banding() == (7, 16)
    for t in (0.7, 0.8, 0.9):  # the recall bar at threshold + 0.05, by construction
        assert candidate_probability(t + 0.05, *NearDedupParams(threshold=t).banding()) >= 0.97


def test_estimated_jaccard_tracks_exact_jaccard():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    base = " ".join(rng.choice(words, 400))
    toks = base.split()
    toks[::25] = ["zz"] * len(toks[::25])
    near = " ".join(toks)
    a, b = permutations(256, 1)
    h, off = shingle_hashes([base, near], 5)
    sig = signatures(h, off, a, b)
    est = float(np.mean(sig[0] == sig[1]))
    assert abs(est - jaccard_of_texts(base, near)) < 0.08


def test_band_keys_equal_iff_band_values_equal():
    sigs = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [5, 6, 3, 4]], dtype=np.uint32)
    keys = band_keys(sigs, 2, 2)
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[0, 1] == keys[2, 1]
    assert keys[0, 0] != keys[2, 0]
    assert keys.dtype == np.int64


def test_vectorized_shingle_hashes_equal_the_scalar_reference():
    texts = TEXTS + ["one two three four five", "a b c d e f", None, "x"]
    for n in (1, 3, 5, 7):
        flat, off = shingle_hashes(texts, n)
        for i, t in enumerate(texts):
            ref = sorted(set(shingle_hash(s) for s in shingles(t or "", n)))
            assert sorted(set(flat[off[i] : off[i + 1]].tolist())) == ref, (n, t)


def test_char_shingles_and_pair_jaccard():
    import pyarrow as pa

    flat, off = shingle_hashes(["abcdef", "abcdeg"], 3, "char")
    assert off.tolist() == [0, 4, 8]
    left, right = pa.array([TEXTS[0], "", "same words here"]), pa.array([TEXTS[1], "", "same words here"])
    got = pair_jaccard(left, right, 5)
    assert abs(got[0] - jaccard_of_texts(TEXTS[0], TEXTS[1])) < 1e-12 and got[1] == 1.0 and got[2] == 1.0


def test_tokens_are_unicode_words():
    assert shingles("Ünïcode wörds, ÉTÉ!", 1) == ["ünïcode".encode(), "wörds".encode(), "été".encode()]


def test_ascii_fast_path_equals_the_unicode_regex_path():
    import pyarrow as pa

    from curation.minhash import _tokenize_ascii, _tokenize_regex, tokenize

    texts = pa.array(["Hello, World_1!  x", "", None, "a-b c", "end.", "9 LIVES__ ok?", "abc", "def"])
    ta, oa = _tokenize_ascii(texts)
    tr, orr = _tokenize_regex(texts)
    assert ta.to_pylist() == tr.to_pylist() and oa.tolist() == orr.tolist()
    mixed = pa.array(["plain words", "Ünïcode wörds", None, "more plain"])
    tm, om = tokenize(mixed)
    assert tm.to_pylist() == ["plain", "words", "ünïcode", "wörds", "more", "plain"]
    assert om.tolist() == [0, 2, 4, 4, 6]


def test_pair_jaccard_batch_equals_set_jaccard_per_pair():
    import random

    import pyarrow as pa

    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    left = [" ".join(rng.choices(words, k=rng.randint(0, 30))) for _ in range(60)]
    right = [(t if rng.random() < 0.3 else " ".join(rng.choices(words, k=rng.randint(0, 30)))) for t in left]
    got = pair_jaccard(pa.array(left), pa.array(right), 3)
    want = [jaccard_of_texts(a, b, 3) for a, b in zip(left, right)]
    assert np.allclose(got, want, atol=1e-12)


def test_shingles_of_a_sliced_batch_equal_those_of_a_fresh_one():
    import pyarrow as pa

    texts = pa.array([f"Doc {i} has Some words in it, number {i % 7}." for i in range(300)])
    part = texts.slice(140, 100)
    got, got_off = shingle_hashes(part, 3)
    want, want_off = shingle_hashes(pa.array(part.to_pylist()), 3)
    assert got_off.tolist() == want_off.tolist() and got.tolist() == want.tolist()


def test_bucket_star_edges_link_members_to_the_smallest_id_per_bucket():
    import itertools
    import random

    import pyarrow as pa

    from curation.minhash import bucket_star_edges

    rng = random.Random(5)
    rows = [(rng.randint(0, 3), rng.randint(0, 6), f"d{rng.randint(0, 40):02d}", rng.random() < 0.3) for _ in range(300)]
    rows = list({(b, k, i): o for b, k, i, o in rows}.items())  # a document is once in a bucket
    band = np.array([r[0][0] for r in rows], dtype=np.int32)
    key = np.array([r[0][1] for r in rows], dtype=np.int64)
    ids = pa.array([r[0][2] for r in rows])
    old = np.array([r[1] for r in rows])
    src, dst = bucket_star_edges(band, key, ids, old)
    want = set()
    for (b, k), grp in itertools.groupby(sorted(rows), key=lambda r: r[0][:2]):
        grp = list(grp)
        if len(grp) < 2 or all(o for _, o in grp):
            continue
        root = min(r[0][2] for r in grp)
        want |= {(r[0][2], root, b, k) for r in grp if r[0][2] != root}
    got = list(zip(src.to_pylist(), dst.to_pylist()))
    assert sorted(got) == sorted((s, d) for s, d, _, _ in want)


def test_local_verification_keeps_pairs_at_the_threshold_and_drops_unknown_ends():
    import pyarrow as pa

    from curation.near_dedup import verify_pairs_local

    texts = pa.table({"id": ["a", "b", "c"], "text": [TEXTS[0], TEXTS[0] + " again", "something else entirely"]})
    edges = pa.table({"src": ["a", "a", "a"], "dst": ["b", "c", "missing"]})
    kept = verify_pairs_local(edges, texts, NearDedupParams(threshold=0.7))
    assert jaccard_of_texts(TEXTS[0], TEXTS[0] + " again") >= 0.7  # a: b is a true pair, a: c is not
    assert list(zip(kept.column("src").to_pylist(), kept.column("dst").to_pylist())) == [("a", "b")]


def test_compiled_shingling_equals_the_vectorized_path_on_random_and_mixed_text():
    """The numba ASCII kernel against the numpy/Arrow path (which the scalar reference checks):
    random ASCII with punctuation, capitals, underscores, long tokens (xxh32's 16-byte stripes),
    nulls, empties, a sliced array, and batches mixing ASCII with non-ASCII texts."""
    import random

    import pyarrow as pa

    from curation.minhash import _ascii_word_shingle_hashes, _word_shingle_hashes_vectorized

    rng = random.Random(11)
    alphabet = "abcXYZ019_ .,;-!\n\t"
    texts = [
        "".join(rng.choice(alphabet) if rng.random() < 0.9 else "Q" * rng.randint(10, 40) for _ in range(rng.randint(0, 400))) for _ in range(300)
    ] + ["", None, "one", "a b", "x" * 70]
    arr = pa.array(texts)
    for n in (1, 2, 5, 9):
        for part in (arr, arr.slice(37, 200)):
            got = _ascii_word_shingle_hashes(part, n)
            want = _word_shingle_hashes_vectorized(part, n)
            assert got[1].tolist() == want[1].tolist() and got[0].tolist() == want[0].tolist(), n
    mixed = pa.array([t if i % 3 else (t or "") + " é" for i, t in enumerate(texts)])
    got, off = shingle_hashes(mixed, 5)
    want, want_off = _word_shingle_hashes_vectorized(mixed, 5)
    assert off.tolist() == want_off.tolist() and got.tolist() == want.tolist()
    large = pa.array(texts, pa.large_string())
    assert shingle_hashes(large, 5)[0].tolist() == shingle_hashes(arr, 5)[0].tolist()


def test_compiled_signatures_equal_the_numpy_reference_on_many_documents():
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 50, 500)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    hashes = rng.integers(0, 2**32, offsets[-1], dtype=np.uint64).astype(np.uint32)
    for k in (1, 17, 112, 256):
        a, b = permutations(k, 5)
        np.testing.assert_array_equal(signatures(hashes, offsets, a, b), signatures_numpy(hashes, offsets, a, b))


def test_compiled_char_shingles_equal_the_reference_sets():
    """Character shingles of ASCII texts by the compiled kernel: the same set of hashes per text as
    the reference (lower-case, whitespace runs incl. \\x1c-\\x1f collapsed and stripped), also in
    batches mixed with non-ASCII texts and in slices."""
    import random

    import pyarrow as pa

    from curation.minhash import _char_shingle_hashes_python

    rng = random.Random(4)
    alphabet = "abAB c.\t\n\x1c_9-"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(300)]
    texts += ["", "   ", None, "ab", "  Hello   World  ", "x" * 40, "Ünï cöde", "mixed é text here"]
    arr = pa.array(texts)
    for n in (1, 3, 5, 13):
        for part in (arr, arr.slice(50, 200)):
            got, off = shingle_hashes(part, n, "char")
            want, want_off = _char_shingle_hashes_python(part.to_pylist(), n)
            for i in range(len(part)):
                assert set(got[off[i] : off[i + 1]].tolist()) == set(want[want_off[i] : want_off[i + 1]].tolist()), (n, part[i])
