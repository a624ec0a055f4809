"""Exact and MinHash-LSH near-duplicate removal of one in-memory Arrow table, without Spark: the
local engine of ``tierlake dedup --engine local``, for inputs that fit one machine's memory.

The algorithm is that of :mod:`curation.exact_dedup` and :mod:`curation.near_dedup` (Broder 1997
MinHash with datasketch's affine32 permutations; LSH banding, *Mining of Massive Datasets* ch. 3;
star edges per bucket; exact-Jaccard verification; connected components) and so are the kernels:
:func:`curation.normalize.exact_keys_arrow`, :func:`curation.near_dedup.band_rows_batch`,
:func:`curation.minhash.bucket_star_edges`, :func:`curation.near_dedup.verify_pairs_local`,
:func:`curation.components.components_local`. The decisions are the same functions too
(:mod:`curation.dedup_decisions`, which Spark runs per partition). Only the glue differs: the
table is cut into slices that a thread pool hands to the kernels (the numba kernels and Arrow
compute release the GIL). Kept ids, removed rows
(``duplicate_of``, ``kind``, ``cluster_size``, ``reason``) and stage counts equal the Spark
path's (tests/test_dedup_local.py).

Why a second engine: below a few million documents on one machine, Spark's fixed costs (JVM
start, 60+ small jobs, every pass moving the text from the JVM to Python workers) are most of a
run; this engine has none of them. It is a departure in execution, not in results.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.accounting import removal_stats_arrow
from curation.components import components_local
from curation.dedup_decisions import REMOVED_SCHEMA, exact_decisions, near_decisions, near_details, repoint_removed
from curation.exact_dedup import check_keep_column
from curation.minhash import bucket_star_edges, permutations
from curation.near_dedup import band_rows_batch, verify_pairs_local
from curation.normalize import exact_keys_arrow
from curation.params import ExactDedupParams, NearDedupParams

SLICE_ROWS = 8192
BAND_SCHEMA = pa.schema([("id", pa.string()), ("band", pa.int32()), ("key", pa.int64())])


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def progress_bar(total: int, desc: str):
    """A tqdm bar on a terminal (as Spark's console progress: not when piped or ``--quiet``), else a
    context that yields None."""
    if not sys.stderr.isatty() or os.environ.get("TIERLAKE_QUIET"):
        return contextlib.nullcontext()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="docs", unit_scale=True, leave=False)


def map_slices(n: int, fn, threads: int, desc: str | None = None) -> list:
    """``fn(start, stop)`` over slices of ``n`` rows on a thread pool, results in slice order;
    with ``desc``, a progress bar of the rows done."""
    bounds = [(s, min(s + SLICE_ROWS, n)) for s in range(0, n, SLICE_ROWS)]
    with progress_bar(n, desc) if desc else contextlib.nullcontext() as bar:

        def run(se):
            out = fn(*se)
            if bar is not None:
                bar.update(se[1] - se[0])
            return out

        if threads <= 1 or len(bounds) <= 1:
            return [run(se) for se in bounds]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, bounds))


def slice_of(column, start: int, stop: int) -> pa.Array:
    """Rows [start, stop) of a (chunked) column as one array; only the slice is ever copied."""
    return column.slice(start, stop - start).combine_chunks()


def exact_dedup_local(docs: pa.Table, params: ExactDedupParams, index_keys: pa.Table | None = None, threads: int = 1) -> tuple[pa.Table, pa.Table]:
    """(removed, keys (id, key) of every document): :func:`curation.exact_dedup.exact_dedup` on a table."""
    check_keep_column(params.keep, docs.column_names)
    texts = docs.column("text")
    parts = map_slices(len(texts), lambda s, e: exact_keys_arrow(slice_of(texts, s, e)), threads, "exact keys")
    keys = pa.concat_arrays([p[0] for p in parts]) if parts else pa.array([], pa.string())
    norm_len = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    narrow = docs.select(["id", "source", "token_count"] + ([params.keep.score_column] if params.keep.rule == "highest_score" else []))
    narrow = (
        narrow.append_column("_key", keys)
        .append_column("_norm_len", pa.array(norm_len, pa.int32()))
        .append_column("_text_len", pc.utf8_length(texts))
    )
    if index_keys is not None and index_keys.num_rows:
        indexed = index_keys.group_by("key").aggregate([("id", "min"), ("id", "count")])
        pos = pc.index_in(keys, value_set=indexed.column("key").combine_chunks())
        narrow = narrow.append_column("_old_id", indexed.column("id_min").combine_chunks().take(pos)).append_column(
            "_old_n", indexed.column("id_count").combine_chunks().take(pos)
        )
    removed = exact_decisions(narrow, params.keep)
    return removed, pa.table({"id": docs.column("id"), "key": keys})


def exact_dedup_stage_local(docs: pa.Table, params: ExactDedupParams, index_keys: pa.Table | None, known_in: tuple[int, int], threads: int):
    """(kept, removed, StageStats, keys): :func:`curation.exact_dedup.exact_dedup_stage` on a table."""
    started = time.time()
    if not params.enabled:
        return docs, None, removal_stats_arrow("exact_dedup", known_in, None, started, {}), None
    removed, keys = exact_dedup_local(docs, params, index_keys, threads)
    exact = removed.filter(pc.equal(removed.column("kind"), "exact"))
    details = {"duplicate_clusters": len(pc.unique(exact.column("duplicate_of"))), "keep": params.keep.rule, "incremental": index_keys is not None}
    kept = docs.filter(pc.invert(pc.is_in(docs.column("id"), value_set=removed.column("id"))))
    return kept, removed, removal_stats_arrow("exact_dedup", known_in, removed, started, details), keys


def _strings(arr) -> np.ndarray:
    return np.asarray(arr.to_pylist(), dtype=str)


def near_dedup_local(
    docs: pa.Table, params: NearDedupParams, index_bands: pa.Table | None = None, index_texts: pa.Table | None = None, threads: int = 1
) -> tuple[pa.Table, dict, pa.Table]:
    """(removed, details, band rows of ``docs``): :func:`curation.near_dedup.near_dedup` on a table,
    index semantics included (a component holding an indexed document keeps its smallest indexed
    id and removes every new member)."""
    a, b = permutations(params.num_perm, params.seed)
    ids, texts = docs.column("id").combine_chunks(), docs.column("text")
    new_rows = pa.Table.from_batches(
        map_slices(len(ids), lambda s, e: band_rows_batch(ids.slice(s, e - s), slice_of(texts, s, e), params, a, b), threads, "MinHash"),
        schema=BAND_SCHEMA,
    )
    all_rows, old = new_rows, None
    indexed = index_texts is not None and index_bands is not None and index_texts.num_rows > 0
    if indexed:
        assert index_bands is not None and index_texts is not None
        all_rows = pa.concat_tables([new_rows, index_bands.select(["id", "band", "key"]).cast(BAND_SCHEMA)])
        old = np.concatenate([np.zeros(new_rows.num_rows, dtype=bool), np.ones(index_bands.num_rows, dtype=bool)])
    src, dst = bucket_star_edges(all_rows.column("band").to_numpy(), all_rows.column("key").to_numpy(), all_rows.column("id").combine_chunks(), old)
    candidates = pa.table({"src": src, "dst": dst}).group_by(["src", "dst"]).aggregate([])  # distinct
    n_candidates = candidates.num_rows
    edges = candidates
    if params.verify and n_candidates:
        pool = pa.table({"id": ids, "text": texts})
        if indexed and index_texts is not None:
            pool = pa.concat_tables([pool, index_texts.select(["id", "text"]).cast(pool.schema)])
        ends = pc.unique(pa.chunked_array([candidates.column("src"), candidates.column("dst")]).combine_chunks())
        pool = pool.filter(pc.is_in(pool.column("id"), value_set=ends))  # only texts on an edge are shingled again
        edges = verify_pairs_local(candidates, pool, params)
    details = near_details(params, index_texts is not None, all_rows.num_rows, n_candidates, edges.num_rows)
    if edges.num_rows == 0:
        return REMOVED_SCHEMA.empty_table(), details, new_rows
    nodes, component = components_local(_strings(edges.column("src")), _strings(edges.column("dst")))
    node_arr = pa.array(nodes.tolist(), pa.string())
    pos = pc.index_in(node_arr, value_set=ids)  # the row of docs each node is, null for an indexed document
    cols = ["id", "source", "token_count"] + ([params.keep.score_column] if params.keep.rule == "highest_score" else [])
    narrow = docs.select(cols)
    if params.keep.rule == "longest":
        narrow = narrow.append_column("_text_len", pc.utf8_length(texts))
    graph = narrow.take(pos).set_column(0, "id", node_arr)
    is_old = (
        pc.is_in(node_arr, value_set=index_texts.column("id").combine_chunks())
        if indexed and index_texts is not None
        else pa.array(np.zeros(len(nodes), bool))
    )
    graph = (
        graph.append_column("_component", pa.array(component.tolist(), pa.string()))
        .append_column("_old", is_old)
        .append_column("_member", pc.is_valid(pos))
    )
    removed = near_decisions(graph, params.keep)
    return removed, details, new_rows


def near_dedup_stage_local(
    docs: pa.Table, params: NearDedupParams, index_bands: pa.Table | None, index_texts: pa.Table | None, known_in: tuple[int, int], threads: int
):
    """(kept, removed, StageStats, band rows): :func:`curation.near_dedup.near_dedup_stage` on a table."""
    started = time.time()
    if not params.enabled:
        return docs, None, removal_stats_arrow("near_dedup", known_in, None, started, {}), None
    removed, details, rows = near_dedup_local(docs, params, index_bands, index_texts, threads)
    details["clusters"] = len(pc.unique(removed.column("duplicate_of")))
    kept = docs.filter(pc.invert(pc.is_in(docs.column("id"), value_set=removed.column("id"))))
    return kept, removed, removal_stats_arrow("near_dedup", known_in, removed, started, details), rows


def combine_removed_local(exact: pa.Table | None, near: pa.Table | None) -> pa.Table | None:
    """All removals of exact then near dedup, every ``duplicate_of`` naming a kept document
    (:func:`curation.dedup_decisions.repoint_removed`)."""
    if exact is None or near is None:
        return exact if exact is not None else near
    return pa.concat_tables([repoint_removed(exact, near), near])


def index_parts_local(kept: pa.Table, keys: pa.Table | None, band_rows: pa.Table | None) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(keys, band rows, texts) of the kept documents, for :meth:`connectors.dedup_index.DedupIndex.append`;
    keys are computed here when exact dedup was off."""
    kept_ids = kept.column("id")
    if keys is None:
        keys = pa.table({"id": kept_ids, "key": exact_keys_arrow(kept.column("text").combine_chunks())[0]})
    kept_keys = keys.filter(pc.is_in(keys.column("id"), value_set=kept_ids))
    kept_bands = band_rows.filter(pc.is_in(band_rows.column("id"), value_set=kept_ids)) if band_rows is not None else BAND_SCHEMA.empty_table()
    return kept_keys, kept_bands, kept.select(["id", "text"])
