"""Exact-duplicate removal on a hash of normalized text.

Key = SHA-256 of :func:`curation.normalize.normalize_text` (NFKC, lower-case, whitespace
collapsed; digits kept). Documents whose normalized text is empty are removed with reason
``empty_text`` rather than clustered together. In each group of identical keys one document is
kept — by default the smallest ``id`` (deterministic), optionally the highest value of a score
column or the longest text — and every other member is removed with ``duplicate_of`` = the kept
id, ``kind`` = ``exact`` and ``cluster_size``.

One ``mapInArrow`` pass computes the keys (normalization and hashing vectorized per Arrow batch,
:func:`curation.normalize.exact_keys_arrow`), then one shuffle of a narrow frame (id, key,
keep-rule columns; never the text) by key, the decisions of
:func:`curation.dedup_decisions.exact_decisions` per partition (the local engine runs the same
function on its whole table), and a broadcast anti-join to drop the removed ids.
"""

from __future__ import annotations

from curation.normalize import exact_keys_arrow
from curation.params import ExactDedupParams, KeepPolicy


def check_keep_column(policy: KeepPolicy, columns: list[str]) -> None:
    """A user error (no traceback) when the keep rule names a score column the input lacks."""
    from connectors.filesystem import InputError

    if policy.rule == "highest_score" and policy.score_column not in columns:
        raise InputError(
            f"keep score column {policy.score_column!r} is not a column of the input "
            f"(columns: {', '.join(c for c in columns if not c.startswith('_'))})"
        )


def keyed(docs, columns: list[str]):
    """``docs[columns]`` plus ``_key`` (hex SHA-256 of the normalized text), ``_norm_len`` and
    ``_text_len`` (characters), computed per Arrow batch: the text goes to Python once and is
    not carried along."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    base = docs.select(*columns)
    schema = StructType(
        [*base.schema.fields, StructField("_key", StringType()), StructField("_norm_len", IntegerType()), StructField("_text_len", IntegerType())]
    )
    names = schema.fieldNames()
    width = len(columns)

    def add_keys(batches):
        for batch in batches:
            texts = batch.column(width)
            keys, norm_len = exact_keys_arrow(texts)
            text_len = pc.fill_null(pc.utf8_length(texts), 0).cast(pa.int32())
            yield pa.RecordBatch.from_arrays([*batch.columns[:width], keys, pa.array(norm_len, pa.int32()), text_len], names=names)

    return docs.select(*columns, "text").mapInArrow(add_keys, schema)


def exact_keys(docs):
    """(id, key): the exact-dedup key of each document (for a saved index)."""
    from pyspark.sql import functions as F

    return keyed(docs, ["id"]).select("id", F.col("_key").alias("key"))


def decide_per_partition(frame, decide, group: str):
    """Removal rows of ``decide`` (a :mod:`curation.dedup_decisions` kernel) run on every partition
    of ``frame`` repartitioned by ``group``: each partition holds whole groups, and only the narrow
    frame (ids, keys, keep-rule columns; never the text) is shuffled."""
    import pyarrow as pa

    from curation.dedup_decisions import REMOVED_DDL, REMOVED_SCHEMA

    partitions = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))

    def run(batches):
        parts = [b for b in batches if b.num_rows]
        if not parts:
            return
        table = pa.Table.from_batches(parts)
        yield from decide(table).cast(REMOVED_SCHEMA).to_batches()

    return frame.repartition(partitions, group).mapInArrow(run, REMOVED_DDL)


def exact_dedup(docs, params: ExactDedupParams, index_keys=None):
    """(kept, removed) DataFrames. ``removed`` has id, source, token_count, reason, duplicate_of,
    kind, cluster_size. With ``index_keys`` (id, key of documents kept by earlier runs), a new
    document whose key is already indexed is removed as a duplicate of the smallest indexed id;
    indexed documents themselves are never removed. The decisions are
    :func:`curation.dedup_decisions.exact_decisions`, run per partition of the keys."""
    from functools import partial

    from pyspark.sql import functions as F

    from curation.dedup_decisions import exact_decisions

    check_keep_column(params.keep, docs.columns)
    narrow_cols = ["id", "source", "token_count"]
    if params.keep.rule == "highest_score" and params.keep.score_column:
        narrow_cols.append(params.keep.score_column)
    rows = keyed(docs, narrow_cols)
    if index_keys is not None:
        indexed = index_keys.groupBy(F.col("key").alias("_key")).agg(F.min("id").alias("_old_id"), F.count(F.lit(1)).cast("long").alias("_old_n"))
        rows = rows.join(indexed, "_key", "left")
    removed = decide_per_partition(rows, partial(exact_decisions, policy=params.keep), "_key")
    # localCheckpoint materializes `removed` (the texts are normalized and hashed once, here) and
    # cuts its lineage, so later uses do not recompute it
    removed = removed.localCheckpoint()
    n_removed = removed.count()
    gone = removed.select("id")
    kept = docs.join(F.broadcast(gone) if n_removed < 2_000_000 else gone, "id", "left_anti")
    return kept, removed


def exact_dedup_stage(docs, params: ExactDedupParams, index_keys=None, known_in: tuple[int, int] | None = None):
    """(kept, removed, StageStats); removed is materialized; kept is ``docs`` minus a broadcast
    list of removed ids (no second cached copy of the texts). ``known_in``: (documents, tokens)
    of ``docs`` when the caller has them (saves a Spark job)."""
    import time

    from pyspark.sql import functions as F

    from connectors.accounting import removal_stats

    started = time.time()
    if not params.enabled:
        return docs, None, removal_stats("exact_dedup", docs, None, started, known_in=known_in)
    kept, removed = exact_dedup(docs, params, index_keys)  # removed is already materialized
    clusters = removed.where(F.col("kind") == "exact").select("duplicate_of").distinct().count()
    stats = removal_stats(
        "exact_dedup",
        docs,
        removed,
        started,
        {"duplicate_clusters": clusters, "keep": params.keep.rule, "incremental": index_keys is not None},
        known_in,
    )
    return kept, removed, stats
