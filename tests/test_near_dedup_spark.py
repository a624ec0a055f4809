"""Near-dup stage on Spark: planted pairs found, pairs below threshold not merged, short docs apart."""

import random

import pytest

from curation.minhash import jaccard_of_texts
from curation.near_dedup import near_dedup_stage
from curation.params import NearDedupParams

pytestmark = pytest.mark.spark

WORDS = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "vo", "ze")
    for b in ("rin", "dol", "mek", "sat", "pun", "gra", "fel", "tob", "wix", "hal")
]


def _doc(rng, n=200):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _edit(text, k):
    """Substitute k words spaced 7 apart: each kills 5 shingles, so J = (S - 5k) / (S + 5k)."""
    toks = text.split()
    for i in range(k):
        toks[3 + 7 * i] = "zzz%d" % i
    return " ".join(toks)


def test_near_dedup_finds_planted_pairs_and_keeps_smallest_id(spark):
    rng = random.Random(3)
    rows, expect_pairs, below = [], [], []
    for i in range(60):
        base = _doc(rng)
        rows.append((f"d{i:03d}", base))
        if i % 3 == 0:
            copy = _edit(base, 2)
            rows.append((f"e{i:03d}", copy))
            expect_pairs.append((f"d{i:03d}", f"e{i:03d}", jaccard_of_texts(base, copy)))
        elif i % 3 == 1:
            far = _edit(base, 25)
            rows.append((f"f{i:03d}", far))
            below.append((f"d{i:03d}", f"f{i:03d}", jaccard_of_texts(base, far)))
    rows += [("s1", "tiny note"), ("s2", "other words"), ("s3", "tiny note here")]
    assert all(j >= 0.85 for *_, j in expect_pairs) and all(j < 0.6 for *_, j in below)
    docs = spark.createDataFrame([(i, t, "src", len(t) // 4) for i, t in rows], "id string, text string, source string, token_count long")
    kept, removed, stats, _ = near_dedup_stage(docs, NearDedupParams(threshold=0.8, num_perm=112, bands=14, rows=8))
    gone = {r["id"]: r for r in removed.collect()}
    assert set(gone) == {e for _, e, _ in expect_pairs}
    assert all(gone[e]["duplicate_of"] == d and gone[e]["kind"] == "near" and gone[e]["cluster_size"] == 2 for d, e, _ in expect_pairs)
    assert stats.docs_in == len(rows) and stats.docs_out == len(rows) - len(expect_pairs)
    assert stats.details["edges_after_verification"] <= stats.details["candidate_edges"]
    assert {"s1", "s2", "s3"} <= {r["id"] for r in kept.collect()}


def test_repoint_sends_exact_duplicates_past_later_removals(spark):
    from curation.near_dedup import repoint

    cols = "id string, source string, token_count long, reason string, duplicate_of string, kind string, cluster_size long"
    exact = spark.createDataFrame([("x2", "s", 1, "exact_duplicate", "x1", "exact", 2), ("e", "s", 1, "empty_text", None, None, None)], cols)
    near = spark.createDataFrame([("x1", "s", 1, "near_duplicate", "a0", "near", 3)], cols)
    got = {r["id"]: r["duplicate_of"] for r in repoint(exact, near).collect()}
    assert got == {"x2": "a0", "e": None}


def test_verification_on_the_driver_equals_verification_on_spark(spark):
    from curation.near_dedup import verify_edges

    rng = random.Random(5)
    texts, edges = [], []
    for i in range(40):
        base = _doc(rng)
        texts += [(f"a{i:02d}", base), (f"b{i:02d}", _edit(base, 2 if i % 2 else 20))]  # J >= 0.85 or < 0.6
        edges.append((f"a{i:02d}", f"b{i:02d}"))
        if i:
            edges.append((f"a{i:02d}", f"a{i - 1:02d}"))  # unrelated documents
    texts_df = spark.createDataFrame(texts, "id string, text string")
    edges_df = spark.createDataFrame(edges, "src string, dst string")
    params = NearDedupParams(threshold=0.8)
    local = {tuple(r) for r in verify_edges(edges_df, texts_df, params, len(edges)).collect()}
    on_spark = {tuple(r) for r in verify_edges(edges_df, texts_df, params, len(edges), local_max_bytes=0).collect()}
    assert local == on_spark == {(f"a{i:02d}", f"b{i:02d}") for i in range(1, 40, 2)}
