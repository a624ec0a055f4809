"""Ingest, exact dedup and shard writing on a real local Spark session."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.filesystem import InputError
from connectors.shards import write_shards
from connectors.sources import IngestParams, SourceSpec, ingest, release
from curation.exact_dedup import exact_dedup_stage
from curation.params import ExactDedupParams, KeepPolicy

pytestmark = pytest.mark.spark


def _jsonl(path, records, extra=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + extra)


def test_ingest_accounts_for_every_record(spark, tmp_path):
    _jsonl(
        tmp_path / "a" / "x.jsonl",
        [
            {"doc_id": "1", "text": "Alpha text here", "source": "cc"},
            {"doc_id": "2", "text": None},
            {"doc_id": "1", "text": "repeated id"},
            {"doc_id": "3", "text": "y" * 500},
        ],
        extra=b"{broken\n",
    )
    pq.write_table(pa.table({"text": ["same", "same", "other"], "score": [1.0, 2.0, 3.0]}), str(tmp_path / "b.parquet"))
    specs = [SourceSpec(name="a", path=str(tmp_path / "a"), id_column="doc_id"), SourceSpec(name="b", path=str(tmp_path / "b.parquet"))]
    docs, quarantine, inputs, stats = ingest(spark, specs, IngestParams(max_doc_chars=100))
    assert stats.docs_in == 8
    assert stats.quarantined == {"missing_text": 1, "duplicate_id": 1, "too_large": 1, "malformed_json": 1}
    assert stats.docs_out == 4
    rows = {r["id"]: r for r in docs.collect()}
    assert rows["1"]["text"] == "Alpha text here" and rows["1"]["input_source"] == "cc"
    b_ids = sorted(i for i, r in rows.items() if r["source"] == "b")
    assert len(b_ids) == 3 and any(i.endswith("-1") for i in b_ids)  # identical text in one source: unique ids
    q = {r["reason"]: r for r in quarantine.collect()}
    assert q["malformed_json"]["source_line"] == 5 and q["malformed_json"]["source_file"] == "x.jsonl"
    assert q["duplicate_id"]["source_line"] == 3
    assert {i["source"] for i in inputs} == {"a", "b"}


def test_truncated_gzip_among_good_files_on_spark(spark, tmp_path):
    """The Spark engine reads a cut .jsonl.gz as the local one does: records before the cut kept,
    one `truncated` quarantine row at the first line lost, the good file whole."""
    import gzip
    import json

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(json.dumps({"text": f"good {i}"}) + "\n" for i in range(20)))
    whole = gzip.compress("".join(json.dumps({"text": f"cut {i} " + "z" * 300}) + "\n" for i in range(3000)).encode())
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    docs, quarantine, _, stats = ingest(spark, [SourceSpec(name="s", path=str(tmp_path / "in"))], IngestParams())
    q = quarantine.collect()
    assert [r["reason"] for r in q] == ["truncated"] and q[0]["source_file"] == "b.jsonl.gz"
    texts = [r["text"] for r in docs.collect()]
    cut_kept = sum(t.startswith("cut ") for t in texts)
    assert cut_kept > 500 and q[0]["source_line"] == cut_kept + 1 and len(texts) == 20 + cut_kept
    assert stats.docs_in == stats.docs_out + 1


def test_lines_that_disagree_on_types_on_spark(spark, tmp_path):
    """Ids that are numbers on some lines, metadata that changes type, one lone surrogate escape:
    Spark ingests every readable record (ids as strings) and quarantines only the bad line."""
    import json

    lines = [
        json.dumps({"id": i if i % 2 else str(i), "text": f"document {i}", "meta": None if i % 3 else (1.5 if i % 2 else "x")}) for i in range(40)
    ]
    lines.insert(7, '{"id": "u", "text": "bad \\ud800 escape"}')
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "m.jsonl").write_text("\n".join(lines) + "\n")
    docs, quarantine, _, stats = ingest(spark, [SourceSpec(name="s", path=str(tmp_path / "in"), id_column="id")], IngestParams())
    assert [(r["reason"], r["source_line"]) for r in quarantine.collect()] == [("invalid_unicode", 8)]
    assert sorted(r["id"] for r in docs.collect()) == sorted(str(i) for i in range(40))
    assert stats.docs_in == 41 and stats.docs_out == 40


def test_ingest_caches_one_frame_and_release_frees_it(spark, tmp_path):
    _jsonl(tmp_path / "c" / "x.jsonl", [{"text": f"document {i}"} for i in range(20)], extra=b"{broken\n")
    from pyspark import StorageLevel

    docs, quarantine, _inputs, stats = ingest(spark, [SourceSpec(name="c", path=str(tmp_path / "c"))], IngestParams())
    assert stats.docs_out == 20 and stats.quarantined == {"malformed_json": 1} and stats.details["by_source"] == {"c": 20}
    assert stats.tokens_out == docs.agg({"token_count": "sum"}).first()[0] > 0
    # documents and quarantine are filters of one cached frame: the input is not needed any more
    (tmp_path / "c" / "x.jsonl").unlink()
    assert docs.count() == 20 and [r["reason"] for r in quarantine.collect()] == ["malformed_json"]
    staged = docs._tierlake_cache
    assert quarantine._tierlake_cache is staged and staged.storageLevel.useMemory
    release(docs, quarantine)
    assert staged.storageLevel == StorageLevel.NONE


def test_ingest_names_the_file_when_the_text_column_is_missing(spark, tmp_path):
    _jsonl(tmp_path / "c.jsonl", [{"body": "no text column"}])
    with pytest.raises(InputError, match=r"text column 'text' not found in .*c\.jsonl.*columns: body"):
        ingest(spark, [SourceSpec(name="c", path=str(tmp_path / "c.jsonl"))], IngestParams())


def test_exact_dedup_keeps_smallest_id_and_points_to_it(spark, tmp_path):
    _jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "b", "text": "The  Same\ttext", "q": 1.0},
            {"id": "a", "text": "the same text", "q": 0.5},
            {"id": "c", "text": "THE SAME TEXT ", "q": 9.0},
            {"id": "d", "text": "Table 3", "q": 0.0},
            {"id": "e", "text": "Table 4", "q": 0.0},
            {"id": "f", "text": "   ", "q": 0.0},
        ],
    )
    docs, _, _, _ = ingest(spark, [SourceSpec(name="d", path=str(tmp_path / "d.jsonl"), id_column="id")], IngestParams())
    kept, removed, stats = exact_dedup_stage(docs, ExactDedupParams())
    assert sorted(r["id"] for r in kept.collect()) == ["a", "d", "e"]
    rem = {r["id"]: r for r in removed.collect()}
    assert rem["b"]["duplicate_of"] == "a" and rem["c"]["duplicate_of"] == "a" and rem["b"]["cluster_size"] == 3
    assert rem["f"]["reason"] == "empty_text"
    assert stats.removed == {"exact_duplicate": 2, "empty_text": 1}
    kept2, removed2, _ = exact_dedup_stage(docs, ExactDedupParams(keep=KeepPolicy(rule="highest_score", score_column="q")))
    assert "c" in {r["id"] for r in kept2.collect()}
    assert {r["duplicate_of"] for r in removed2.where("kind = 'exact'").collect()} == {"c"}


def test_shards_are_bounded_atomic_and_deterministic(spark, tmp_path):
    df = spark.range(0, 3000).selectExpr("cast(id as string) as id", "repeat('word ', 40) as text", "cast(50 as long) as token_count")
    a = write_shards(df, str(tmp_path / "a"), "documents", "r1", target_bytes=200_000)
    b = write_shards(df.repartition(7), str(tmp_path / "b"), "documents", "r2", target_bytes=200_000)
    assert a.rows == 3000 and len(a.shards) >= 3
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    assert a.tokens == 150_000
    assert sorted(os.listdir(tmp_path / "a")) == ["documents"]  # no temp folder left behind
    assert all(s.path.startswith("documents/part-") for s in a.shards)


def test_exact_keys_on_spark_hash_the_reference_normalization(spark):
    import hashlib

    import pyarrow as pa

    from curation.exact_dedup import keyed
    from curation.normalize import normalize_text_regex

    texts = ["  Hello\tWorld \n", "A\x0bB\x0cC\rD", "MiXeD   case  ", "", "Ünïcode  ＴＥＸＴ", "tab\t\tend\t", None, "\u3000x\u00a0 y "]
    df = spark.createDataFrame([(str(i), t) for i, t in enumerate(texts)], "id string, text string")
    got = {r["id"]: (r["_key"], r["_norm_len"], r["_text_len"]) for r in keyed(df, ["id"]).collect()}
    ref = normalize_text_regex(pa.array([t or "" for t in texts])).to_pylist()
    for i, (t, norm) in enumerate(zip(texts, ref)):
        assert got[str(i)] == (hashlib.sha256(norm.encode()).hexdigest(), len(norm), len(t or ""))
    assert ref[0] == "hello world" and ref[4] == "ünïcode text"


def test_one_big_parquet_file_is_read_by_several_tasks(spark, tmp_path, monkeypatch):
    import connectors.sources as sources

    monkeypatch.setattr(sources, "SPLIT_ROWS", 500)  # so a small file has several splits
    n = 2600
    pq.write_table(
        pa.table({"id": [f"d{i:05d}" for i in range(n)], "text": [f"text {i}" for i in range(n)]}), tmp_path / "big.parquet", row_group_size=1000
    )
    docs, quarantine, _inputs, stats = ingest(spark, [SourceSpec(name="big", path=str(tmp_path / "big.parquet"), id_column="id")], IngestParams())
    rows = docs.select("id", "source_line").collect()
    assert stats.docs_in == n and quarantine.count() == 0
    assert sorted((r["id"], r["source_line"]) for r in rows) == [(f"d{i:05d}", i + 1) for i in range(n)]
    assert docs.rdd.getNumPartitions() >= 2
    docs.unpersist()


def test_staged_cache_goes_to_disk_when_the_input_outgrows_task_memory(spark, tmp_path):
    """A 1M-document lake at ~4,000 characters (0.76 GB of gzip/zstd files) ran a 2 GB driver out
    of heap while Spark built ingest's in-memory cache; such inputs are staged on disk only, small
    ones stay in memory, and the documents read are the same either way."""
    from pyspark import StorageLevel

    from connectors.sources import STAGED_BYTES_PER_INPUT_BYTE, staged_storage_level, task_memory_bytes

    gib = 1 << 30
    assert staged_storage_level(760 << 20, 2 * gib) == StorageLevel.DISK_ONLY
    assert staged_storage_level(76 << 20, 2 * gib) == StorageLevel.MEMORY_AND_DISK
    assert staged_storage_level(2 * gib // (4 * STAGED_BYTES_PER_INPUT_BYTE) + 1, 2 * gib) == StorageLevel.DISK_ONLY
    assert 0 < task_memory_bytes(spark) < 64 * gib  # local mode: this JVM's heap
    _jsonl(tmp_path / "in" / "a.jsonl", [{"id": str(i), "text": f"document number {i}"} for i in range(50)])
    spec = [SourceSpec(name="in", path=str(tmp_path / "in"))]
    import connectors.sources as sources

    docs, quarantine, _, stats = ingest(spark, spec, IngestParams())
    in_memory = sorted(r["id"] for r in docs.select("id").collect())
    release(docs, quarantine)
    original = sources.task_memory_bytes
    sources.task_memory_bytes = lambda _spark: 1  # every input outgrows it: disk only
    try:
        docs, quarantine, _, stats_disk = ingest(spark, spec, IngestParams())
        assert docs._tierlake_cache.storageLevel == StorageLevel.DISK_ONLY
        assert sorted(r["id"] for r in docs.select("id").collect()) == in_memory and stats_disk.docs_out == stats.docs_out == 50
        release(docs, quarantine)
    finally:
        sources.task_memory_bytes = original
