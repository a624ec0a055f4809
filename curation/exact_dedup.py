"""Exact-duplicate removal on a hash of normalized text.

Key = SHA-256 of :func:`curation.normalize.normalize_text` (NFKC, lower-case, whitespace
collapsed; digits kept). Documents whose normalized text is empty are removed with reason
``empty_text`` rather than clustered together. In each group of identical keys one document is
kept — by default the smallest ``id`` (deterministic), optionally the highest value of a score
column or the longest text — and every other member is removed with ``duplicate_of`` = the kept
id, ``kind`` = ``exact`` and ``cluster_size``.

One ``mapInArrow`` pass computes the keys (normalization and hashing vectorized per Arrow batch,
:func:`curation.normalize.exact_keys_arrow`), then one shuffle of a narrow frame (id, key,
keep-rule columns; never the text), a window over the key, and a broadcast anti-join to drop the
removed ids.
"""
from __future__ import annotations

from curation.normalize import exact_keys_arrow
from curation.params import ExactDedupParams, KeepPolicy


def check_keep_column(policy: KeepPolicy, columns: list[str]) -> None:
    """A user error (no traceback) when the keep rule names a score column the input lacks."""
    from connectors.filesystem import InputError

    if policy.rule == "highest_score" and policy.score_column not in columns:
        raise InputError(f"keep score column {policy.score_column!r} is not a column of the input "
                         f"(columns: {', '.join(c for c in columns if not c.startswith('_'))})")


def keep_order(policy: KeepPolicy):
    """Spark sort expressions: the first row in this order is the one kept (ties -> smallest id)."""
    from pyspark.sql import functions as F

    if policy.rule == "highest_score":
        assert policy.score_column is not None  # KeepPolicy requires it for this rule
        return [F.col(policy.score_column).desc_nulls_last(), F.col("id").asc()]
    if policy.rule == "longest":
        return [F.col("_text_len").desc(), F.col("id").asc()]  # _text_len: characters of the text
    return [F.col("id").asc()]


def keep_columns(policy: KeepPolicy) -> list[str]:
    """Columns :func:`keep_order` reads besides ``id``: the narrow frame a keep decision needs."""
    if policy.rule == "highest_score":
        assert policy.score_column is not None
        return [policy.score_column]
    if policy.rule == "longest":
        return ["_text_len"]
    return []


def keyed(docs, columns: list[str]):
    """``docs[columns]`` plus ``_key`` (hex SHA-256 of the normalized text), ``_norm_len`` and
    ``_text_len`` (characters), computed per Arrow batch: the text goes to Python once and is
    not carried along."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    base = docs.select(*columns)
    schema = StructType([*base.schema.fields, StructField("_key", StringType()), StructField("_norm_len", IntegerType()),
                         StructField("_text_len", IntegerType())])
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


def exact_dedup(docs, params: ExactDedupParams, index_keys=None):
    """(kept, removed) DataFrames. ``removed`` has id, source, token_count, reason, duplicate_of,
    kind, cluster_size. With ``index_keys`` (id, key of documents kept by earlier runs), a new
    document whose key is already indexed is removed as a duplicate of the smallest indexed id;
    indexed documents themselves are never removed."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_keep_column(params.keep, docs.columns)
    from pyspark import StorageLevel

    # Rank on a narrow frame (ids, keys, keep-rule columns): the text itself is never shuffled.
    narrow_cols = ["id", "source", "token_count"]
    if params.keep.rule == "highest_score" and params.keep.score_column:
        narrow_cols.append(params.keep.score_column)
    keyed_docs = keyed(docs, narrow_cols).persist(StorageLevel.MEMORY_AND_DISK)
    keyed_docs.count()  # materialize now: the branches below would otherwise each hash the texts, concurrently
    order = keep_order(params.keep)
    empty = keyed_docs.where(F.col("_norm_len") == 0)
    nonempty = keyed_docs.where(F.col("_norm_len") > 0)
    removed_parts = []
    if index_keys is not None:
        indexed = index_keys.groupBy(F.col("key").alias("_key")).agg(F.min("id").alias("_old_id"), F.count(F.lit(1)).alias("_old_n"))
        hits = nonempty.join(indexed, "_key")
        removed_parts.append(hits.select(
            "id", "source", "token_count", F.lit("exact_duplicate").alias("reason"), F.col("_old_id").alias("duplicate_of"),
            F.lit("exact").alias("kind"), (F.col("_old_n") + F.count(F.lit(1)).over(Window.partitionBy("_key"))).cast("long").alias("cluster_size")))
        nonempty = nonempty.join(indexed.select("_key"), "_key", "left_anti")
    group = Window.partitionBy("_key")
    ordered = group.orderBy(*order)
    ranked = (
        nonempty.withColumn("_rank", F.row_number().over(ordered))
        .withColumn("_kept_id", F.first("id").over(ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .withColumn("_size", F.count(F.lit(1)).over(group))
    )
    removed_parts.append(ranked.where(F.col("_rank") > 1).select(
        "id", "source", "token_count",
        F.lit("exact_duplicate").alias("reason"),
        F.col("_kept_id").alias("duplicate_of"),
        F.lit("exact").alias("kind"),
        F.col("_size").cast("long").alias("cluster_size"),
    ))
    removed_parts.append(empty.select(
        "id", "source", "token_count",
        F.lit("empty_text").alias("reason"),
        F.lit(None).cast("string").alias("duplicate_of"),
        F.lit(None).cast("string").alias("kind"),
        F.lit(None).cast("long").alias("cluster_size"),
    ))
    removed = removed_parts[0]
    for part in removed_parts[1:]:
        removed = removed.unionByName(part)
    # localCheckpoint materializes `removed` and cuts its lineage: un-caching `keyed` below would
    # otherwise invalidate a cache of `removed` too (Spark re-caches dependents), and every later
    # use would recompute normalization and windows.
    removed = removed.localCheckpoint()
    n_removed = removed.count()
    gone = removed.select("id")
    kept = docs.join(F.broadcast(gone) if n_removed < 2_000_000 else gone, "id", "left_anti")
    keyed_docs.unpersist()
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
    stats = removal_stats("exact_dedup", docs, removed, started, {
        "duplicate_clusters": clusters, "keep": params.keep.rule, "incremental": index_keys is not None}, known_in)
    return kept, removed, stats
