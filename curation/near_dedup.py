"""Near-duplicate removal with MinHash LSH on Spark (Broder 1997; LSH banding as in *Mining of
Massive Datasets* ch. 3; clustering without all-pairs as text-dedup's Spark script and
datatrove's bucket stage).

1. ``mapInArrow``: per Arrow batch, shingles -> xxh32 -> MinHash signatures (numpy, datasketch
   affine32 scheme, :mod:`curation.minhash`) -> one (id, band, key) row per band.
2. Buckets: band rows hash-partitioned by (band, key), then one sort per partition; each member
   gets one edge to the bucket's smallest id (star edges, at most n-1 per bucket, never all
   pairs; a huge boilerplate bucket costs O(n log n) in one partition, no pair blow-up).
3. Optional verification: each candidate edge's exact Jaccard of shingle(-hash) sets, computed
   per Arrow batch, must reach the threshold, so false positives cannot chain clusters.
4. Connected components (large-star/small-star, :mod:`curation.components`).
5. One document kept per component (keep rule as in exact dedup); the others are removed with
   ``duplicate_of`` = the kept id, ``kind`` = ``near``, ``cluster_size``: the nodes are
   repartitioned by component and :func:`curation.dedup_decisions.near_decisions` decides per
   partition, the function the local engine runs on its whole table.

A document with no word token (only punctuation) gets no band rows: it cannot be a near
duplicate of anything, and giving it the all-MAX signature would put every such document in one
cluster (text-dedup#77). Identical ones are still removed by exact dedup.

Departures from the papers/peers, and why: the default banding weighs false negatives 0.95 and
false positives 0.05 when verification is on (datasketch weighs both 0.5), because verification
removes false positives and datasketch's optimum misses a quarter of pairs at threshold + 0.05.
Verification compares a member with its bucket's smallest id only (star edges), not with every
member, so a true duplicate of another member that is not similar enough to the bucket root loses
that edge (it may still join through another band); this keeps verification O(n) per bucket.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from connectors.arrow_rows import take_rows
from curation.dedup_decisions import keep_columns
from curation.exact_dedup import decide_per_partition
from curation.minhash import (
    band_keys,
    bucket_star_edges,
    pair_jaccard,
    permutations,
    shingle_hashes,
    signatures,
)
from curation.params import NearDedupParams


def band_rows_batch(ids: pa.Array, texts: pa.Array, params: NearDedupParams, a: np.ndarray, b: np.ndarray) -> pa.RecordBatch:
    """(id, band, key): one row per document of a batch and band; a document with no shingle gets
    none, so such documents never cluster."""
    bands, rows = params.banding()
    hashes, offsets = shingle_hashes(texts, params.ngram, params.unit)
    has = np.diff(offsets) > 0
    keys = band_keys(signatures(hashes, offsets, a, b), bands, rows)[has]
    owners = np.flatnonzero(has)
    return pa.RecordBatch.from_arrays(
        [ids.take(pa.array(np.repeat(owners, bands))), pa.array(np.tile(np.arange(bands, dtype=np.int32), len(owners))), pa.array(keys.reshape(-1))],
        names=["id", "band", "key"],
    )


def band_rows(docs, params: NearDedupParams):
    """DataFrame (id, band, key): one row per document and band."""
    a, b = permutations(params.num_perm, params.seed)

    def to_bands(batches):
        for batch in batches:
            yield band_rows_batch(batch.column(0), batch.column(1), params, a, b)

    return docs.select("id", "text").mapInArrow(to_bands, "id string, band int, key long")


# Verification on the driver when the texts on candidate edges are at most this many bytes: it
# saves two shuffle joins of texts (seconds of Spark stages) when candidates are few.
LOCAL_VERIFY_MAX_BYTES = 256 << 20
PAIR_BATCH = 8192


def verify_pairs_local(edges: pa.Table, texts: pa.Table, params: NearDedupParams) -> pa.Table:
    """The candidate edges (src, dst) whose exact shingle Jaccard reaches the threshold, in one
    process; ``texts`` (id, text) holds every end of an edge."""
    import pyarrow.compute as pc

    ids, text = texts.column("id").combine_chunks(), texts.column("text")  # the texts stay in their chunks (take_rows)
    src, dst = edges.column("src").combine_chunks(), edges.column("dst").combine_chunks()
    i_src, i_dst = pc.index_in(src, value_set=ids), pc.index_in(dst, value_set=ids)
    known = pc.and_(pc.is_valid(i_src), pc.is_valid(i_dst))  # as the Spark path's inner join
    if not pc.all(known).as_py():
        src, dst, i_src, i_dst = (a.filter(known) for a in (src, dst, i_src, i_dst))
    sims = np.empty(len(src), np.float64)
    for start in range(0, len(src), PAIR_BATCH):  # bounded memory for the shingle arrays
        stop = min(start + PAIR_BATCH, len(src))
        sims[start:stop] = pair_jaccard(
            take_rows(text, i_src.slice(start, stop - start)).combine_chunks(),
            take_rows(text, i_dst.slice(start, stop - start)).combine_chunks(),
            params.ngram,
            params.unit,
        )
    keep = pa.array(sims >= params.threshold)
    return pa.table({"src": src.filter(keep), "dst": dst.filter(keep)})


def verify_edges(edges, texts, params: NearDedupParams, n_edges: int | None = None, local_max_bytes: int = LOCAL_VERIFY_MAX_BYTES):
    """Keep candidate edges whose exact shingle Jaccard reaches the threshold. ``texts``: (id, text).
    Only the texts of documents on a candidate edge are read: on the driver when they are at most
    ``local_max_bytes`` (:func:`verify_pairs_local`), else shuffled to the pairs on Spark. Both
    give the same edges (tested)."""
    from pyspark.sql import functions as F

    ends = edges.select(F.col("src").alias("id")).unionByName(edges.select(F.col("dst").alias("id"))).distinct()
    small = n_edges is not None and n_edges < 1_000_000
    texts = texts.join(F.broadcast(ends) if small else ends, "id")
    if small and local_max_bytes > 0:
        size = texts.agg(F.sum(F.octet_length("text"))).first()[0] or 0
        if size <= local_max_bytes:
            kept = verify_pairs_local(edges.select("src", "dst").toArrow(), texts.select("id", "text").toArrow(), params)
            return edges.sparkSession.createDataFrame(kept) if kept.num_rows else edges.sparkSession.createDataFrame([], "src string, dst string")
    pairs = edges.join(texts.withColumnRenamed("id", "src").withColumnRenamed("text", "src_text"), "src").join(
        texts.withColumnRenamed("id", "dst").withColumnRenamed("text", "dst_text"), "dst"
    )
    ngram, unit, threshold = params.ngram, params.unit, params.threshold

    def score(batches):
        for batch in batches:
            sims = pair_jaccard(batch.column("src_text"), batch.column("dst_text"), ngram, unit)
            yield pa.RecordBatch.from_arrays(
                [batch.column("src"), batch.column("dst"), pa.array(sims, pa.float64())], names=["src", "dst", "jaccard"]
            )

    scored = pairs.select("src", "dst", "src_text", "dst_text").mapInArrow(score, "src string, dst string, jaccard double")
    return scored.where(F.col("jaccard") >= threshold).select("src", "dst")


class NearDedupIndex:
    """Band rows (id, band, key) and texts (id, text) of documents kept by earlier runs."""

    def __init__(self, bands, texts):
        self.bands, self.texts = bands, texts


def near_dedup(docs, params: NearDedupParams, index: NearDedupIndex | None = None):
    """(kept, removed, details, band rows). ``docs`` needs id, text, source,
    token_count (and the keep rule's column). With an ``index``, only buckets holding a new
    document are clustered; a component holding an indexed document keeps its smallest indexed
    id and removes every new member; indexed documents are never removed or re-shingled. The band rows (id, band, key, _old) are
    persisted; ``_old`` marks rows of indexed documents."""
    from functools import partial

    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from curation.components import connected_components_auto
    from curation.dedup_decisions import near_decisions, near_details

    rows_all = band_rows(docs, params).withColumn("_old", F.lit(False))
    texts = docs.select("id", "text")
    if index is not None:
        rows_all = rows_all.unionByName(index.bands.select("id", "band", "key").withColumn("_old", F.lit(True)))
        texts = texts.unionByName(index.texts.select("id", "text"))
    # One shuffle by bucket: every row of a bucket lands in the same partition, and the star
    # edges come from one sort per partition (:func:`curation.minhash.bucket_star_edges`) —
    # Spark's own min over string ids is a sort-based aggregate that exhausted a 4 GiB heap at
    # 400k documents.
    partitions = int(docs.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    rows_all = rows_all.repartition(partitions, "band", "key").persist(StorageLevel.MEMORY_AND_DISK)
    n_band_rows = rows_all.count()  # materialize now; later jobs reuse it

    def star_edges(batches):
        parts = [b for b in batches if b.num_rows]
        if not parts:
            return
        t = pa.Table.from_batches(parts).combine_chunks()
        src, dst = bucket_star_edges(
            t.column("band").to_numpy(), t.column("key").to_numpy(), t.column("id").combine_chunks(), t.column("_old").to_numpy(zero_copy_only=False)
        )
        yield pa.RecordBatch.from_arrays([src, dst], names=["src", "dst"])

    candidates = rows_all.mapInArrow(star_edges, "src string, dst string").distinct().persist(StorageLevel.MEMORY_AND_DISK)
    n_candidates = candidates.count()
    edges = verify_edges(candidates, texts, params, n_candidates).persist(StorageLevel.MEMORY_AND_DISK) if params.verify else candidates
    n_edges = edges.count()
    components = connected_components_auto(edges)
    narrow = docs.select(
        "id", "source", "token_count", *([F.length("text").alias("_text_len")] if params.keep.rule == "longest" else keep_columns(params.keep))
    )
    # every node of the duplicate graph with its document's narrow row (none for an indexed
    # document); the text is never shuffled here
    graph = components.select(F.col("node").alias("id"), F.col("component").alias("_component")).join(
        narrow.withColumn("_member", F.lit(True)), "id", "left"
    )
    if index is not None:
        graph = graph.join(index.texts.select("id").distinct().withColumn("_old", F.lit(True)), "id", "left")
    else:
        graph = graph.withColumn("_old", F.lit(False))
    removed = decide_per_partition(graph, partial(near_decisions, policy=params.keep), "_component")
    kept = docs.join(F.broadcast(removed.select("id")) if n_edges < 2_000_000 else removed.select("id"), "id", "left_anti")
    details = near_details(params, index is not None, n_band_rows, n_candidates, n_edges)
    return kept, removed, details, rows_all


def near_dedup_stage(docs, params: NearDedupParams, index: NearDedupIndex | None = None, known_in: tuple[int, int] | None = None):
    """(kept, removed, StageStats, band rows: id, band, key, _old = from the index); removed and the band rows
    are persisted (the caller unpersists them when written). ``kept`` is ``docs`` minus a
    broadcast list of removed ids, not a second cached copy of the texts."""
    from pyspark import StorageLevel

    from connectors.accounting import removal_stats

    started = time.time()
    if not params.enabled:
        return docs, None, removal_stats("near_dedup", docs, None, started, known_in=known_in), None
    kept, removed, details, rows_all = near_dedup(docs, params, index)
    removed = removed.persist(StorageLevel.MEMORY_AND_DISK)
    details["clusters"] = removed.select("duplicate_of").distinct().count()
    return kept, removed, removal_stats("near_dedup", docs, removed, started, details, known_in), rows_all


def repoint(earlier_removed, later_removed):
    """Removals of an earlier stage re-pointed past removals of a later one: an exact duplicate of a
    document that near dedup removed afterwards points to the document near dedup kept, so every
    ``duplicate_of`` names a kept document. Returns the earlier removals (same columns)."""
    from pyspark.sql import functions as F

    later = later_removed.where(F.col("duplicate_of").isNotNull()).select(F.col("id").alias("_later_id"), F.col("duplicate_of").alias("_later_kept"))
    joined = earlier_removed.join(F.broadcast(later), earlier_removed["duplicate_of"] == later["_later_id"], "left")
    return joined.withColumn("duplicate_of", F.coalesce("_later_kept", "duplicate_of")).select(*earlier_removed.columns)


def combine_removed(exact_removed, near_removed):
    """All removals of exact then near dedup, every ``duplicate_of`` naming a kept document."""
    if exact_removed is not None and near_removed is not None:
        return repoint(exact_removed, near_removed).unionByName(near_removed)
    return exact_removed if exact_removed is not None else near_removed
