"""Which document of a duplicate group stays, and what every other member's removal row says:
the one decision implementation of exact and near dedup, shared by both engines.

Plain Arrow/numpy functions without Spark. The local engine (:mod:`curation.dedup_local`) calls
them on its whole table; the Spark engine (:mod:`curation.exact_dedup`, :mod:`curation.near_dedup`)
repartitions a narrow frame (ids, keys, keep-rule columns; never the text) by group and calls
them per partition through ``mapInArrow``, so each partition holds whole groups. A group is ranked
by one Arrow sort under the keep rule (:func:`keep_sort_keys`: smallest id, longest text or
highest score, ties to the smallest id); the first row is kept and the others are removed with
``duplicate_of`` = the kept id, ``kind``, ``cluster_size`` and ``reason``. A group holding a
document of an earlier run's index keeps that document (the smallest indexed id) and removes every
new member. docs/dedup.md has the reasoning and the measurements of this plan against Spark
windows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.params import KeepPolicy

REMOVED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("token_count", pa.int64()),
        ("reason", pa.string()),
        ("duplicate_of", pa.string()),
        ("kind", pa.string()),
        ("cluster_size", pa.int64()),
    ]
)
REMOVED_DDL = (
    "id string, source string, token_count long, reason string, duplicate_of string, kind string, "
    "cluster_size long"
)  # REMOVED_SCHEMA as a Spark schema string


def near_details(params, incremental: bool, band_rows: int, candidate_edges: int, edges: int) -> dict:
    """The near-dedup stage's details (its parameters and the funnel band rows -> candidate edges ->
    edges after verification), the same record from both engines."""
    bands, rows = params.banding()
    return {
        "bands": bands,
        "rows": rows,
        "num_perm": params.num_perm,
        "threshold": params.threshold,
        "ngram": params.ngram,
        "unit": params.unit,
        "verify": params.verify,
        "incremental": incremental,
        "band_rows": band_rows,
        "candidate_edges": candidate_edges,
        "edges_after_verification": edges,
        "edges_dropped_by_verification": candidate_edges - edges if params.verify else None,
    }


def keep_columns(policy: KeepPolicy) -> list[str]:
    """Columns the keep rule reads besides ``id``: the narrow frame a keep decision needs
    (``_text_len`` = characters of the text, for ``longest``)."""
    if policy.rule == "highest_score":
        assert policy.score_column is not None  # KeepPolicy requires it for this rule
        return [policy.score_column]
    if policy.rule == "longest":
        return ["_text_len"]
    return []


def keep_sort_keys(policy: KeepPolicy) -> list[tuple[str, str, str]]:
    """Arrow sort keys under which a group's first row is the one kept (ties -> smallest id)."""
    if policy.rule == "highest_score":
        assert policy.score_column is not None
        return [(policy.score_column, "descending", "at_end"), ("id", "ascending", "at_end")]  # nulls last
    if policy.rule == "longest":
        return [("_text_len", "descending", "at_end"), ("id", "ascending", "at_end")]
    return [("id", "ascending", "at_end")]


def rank_in_groups(table: pa.Table, group: str, policy: KeepPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, in table order: rank in its group under the keep order (0 = kept), the row index
    of its group's kept row, and its group's size. One sort, no per-group Python."""
    n = table.num_rows
    if n == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    order = pc.sort_indices(table, sort_keys=[(group, "ascending", "at_end"), *keep_sort_keys(policy)]).to_numpy()
    g = table.column(group).combine_chunks().take(pa.array(order))
    first = np.ones(n, dtype=bool)
    first[1:] = pc.not_equal(g.slice(1), g.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(first)
    grp = np.cumsum(first) - 1
    sizes = np.diff(np.append(starts, n))
    rank, kept, size = (np.empty(n, np.int64) for _ in range(3))
    rank[order] = np.arange(n) - starts[grp]
    kept[order] = order[starts[grp]]
    size[order] = sizes[grp]
    return rank, kept, size


def removed_rows(rows: pa.Table, reason: str, duplicate_of, kind: str | None, cluster_size) -> pa.Table:
    """Removal rows (:data:`REMOVED_SCHEMA`) for ``rows`` (id, source, token_count)."""
    n = rows.num_rows
    return pa.table(
        [
            rows.column("id"),
            rows.column("source"),
            rows.column("token_count").cast(pa.int64()),
            pa.array([reason] * n, pa.string()),
            pa.array(duplicate_of, pa.string()) if duplicate_of is not None else pa.nulls(n, pa.string()),
            pa.array([kind] * n, pa.string()),
            pa.array(cluster_size, pa.int64()) if cluster_size is not None else pa.nulls(n, pa.int64()),
        ],
        schema=REMOVED_SCHEMA,
    )


def _mask(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.bool_())


def exact_decisions(rows: pa.Table, policy: KeepPolicy) -> pa.Table:
    """Removal rows of exact dedup. ``rows``: id, source, token_count, the keep rule's columns,
    ``_key`` (hash of the normalized text), ``_norm_len`` (its length) and, with an index,
    ``_old_id`` / ``_old_n`` (smallest indexed id and indexed documents of the key; null when the
    key is not indexed). Every row of a key must be in ``rows``.

    Empty normalized text -> ``empty_text`` (never clustered). An indexed key -> every new row is
    an ``exact_duplicate`` of ``_old_id``, cluster size = indexed + new rows. Otherwise the first
    row under the keep rule stays and the others point to it."""
    if rows.num_rows == 0:
        return REMOVED_SCHEMA.empty_table()
    empty = pc.equal(rows.column("_norm_len"), 0).to_numpy(zero_copy_only=False)
    parts = [removed_rows(rows.filter(_mask(empty)), "empty_text", None, None, None)]
    live = ~empty
    if "_old_id" in rows.column_names:
        hit = live & pc.is_valid(rows.column("_old_id")).to_numpy(zero_copy_only=False)
        hits = rows.filter(_mask(hit))
        _, _, new_n = rank_in_groups(hits, "_key", policy)
        parts.append(
            removed_rows(
                hits,
                "exact_duplicate",
                hits.column("_old_id").combine_chunks(),
                "exact",
                pc.add(hits.column("_old_n").cast(pa.int64()), pa.array(new_n)).combine_chunks(),
            )
        )
        live &= ~hit
    rest = rows.filter(_mask(live))
    rank, kept, size = rank_in_groups(rest, "_key", policy)
    dup = rank > 0
    parts.append(
        removed_rows(rest.filter(_mask(dup)), "exact_duplicate", rest.column("id").combine_chunks().take(pa.array(kept[dup])), "exact", size[dup])
    )
    return pa.concat_tables(parts)


def near_decisions(nodes: pa.Table, policy: KeepPolicy) -> pa.Table:
    """Removal rows of near dedup. ``nodes``: every node of the duplicate graph's components —
    ``id``, ``_component``, ``_old`` (a document of an earlier run's index), ``_member`` (a
    document of this input) and, for members, source, token_count and the keep rule's columns.
    Every node of a component must be in ``nodes``.

    Cluster size = the component's nodes. A component holding an indexed document keeps the
    smallest indexed id and removes every member; otherwise its first member under the keep rule
    stays and the other members point to it."""
    if nodes.num_rows == 0:
        return REMOVED_SCHEMA.empty_table()
    _, _, size = rank_in_groups(nodes.select(["_component", "id"]), "_component", KeepPolicy())
    old = pc.fill_null(nodes.column("_old"), False).to_numpy(zero_copy_only=False)
    member = pc.fill_null(nodes.column("_member"), False).to_numpy(zero_copy_only=False)
    # smallest indexed id per component: the old nodes ranked by id within their component
    olds = nodes.filter(_mask(old)).select(["_component", "id"])
    o_rank, o_kept, _ = rank_in_groups(olds, "_component", KeepPolicy())
    roots = olds.filter(_mask(o_rank == 0))
    members = nodes.filter(_mask(member)).append_column("_size", pa.array(size[member], pa.int64()))
    rank, kept, _ = rank_in_groups(members, "_component", policy)
    duplicate_of = members.column("id").combine_chunks().take(pa.array(kept))
    root_pos = pc.index_in(members.column("_component"), value_set=roots.column("_component").combine_chunks())
    has_old = pc.is_valid(root_pos).to_numpy(zero_copy_only=False)
    if has_old.any():
        duplicate_of = pc.coalesce(roots.column("id").combine_chunks().take(root_pos), duplicate_of)
    gone = (rank > 0) | has_old
    return removed_rows(
        members.filter(_mask(gone)),
        "near_duplicate",
        duplicate_of.filter(_mask(gone)),
        "near",
        members.column("_size").filter(_mask(gone)).combine_chunks(),
    )


def repoint_removed(earlier: pa.Table, later: pa.Table) -> pa.Table:
    """Removals of an earlier stage re-pointed past removals of a later one: an exact duplicate of
    a document that near dedup removed afterwards points to the document near dedup kept, so every
    ``duplicate_of`` names a kept document. Returns ``earlier`` with ``duplicate_of`` replaced."""
    if later.num_rows == 0 or earlier.num_rows == 0:
        return earlier
    later = later.filter(pc.is_valid(later.column("duplicate_of")))
    pos = pc.index_in(earlier.column("duplicate_of"), value_set=later.column("id").combine_chunks())
    repointed = pc.coalesce(later.column("duplicate_of").combine_chunks().take(pos), earlier.column("duplicate_of"))
    return earlier.set_column(earlier.column_names.index("duplicate_of"), "duplicate_of", repointed)
