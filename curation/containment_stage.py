"""The containment funnel over a catalogued lake: schema -> min-max -> content -> exact ratio.

Kernels in :mod:`curation.containment`. Each table is read at most once (its projected row hashes
are cached per column set), so the cost is one read per table that survives the schema and
min-max stages, plus hashing. The funnel records the candidate pairs left after each stage and
each stage's time.

Verification is the row-hash set difference: in-process (numpy over 64-bit hashes, 8 bytes a row of
driver memory) when both tables are at most ``driver_max_bytes`` on disk, which avoids a Spark job
per pair; pairs with a larger table skip the in-driver content probe and are verified exactly on
Spark (:mod:`curation.containment_spark`: distinct row hashes, left-anti join).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa

from connectors.containment_outputs import write_containment_outputs
from connectors.lake_catalog import TableInfo, build_catalog, read_table
from curation.containment import (
    content_keep,
    exact_ratio,
    minmax_keep,
    normalize_name,
    row_hashes,
    schema_candidates,
    schema_of,
)
from curation.params import ContainmentParams


class _Hashes:
    """Projected row hashes per (table, normalized column tuple), each table read once."""

    def __init__(self, tables: list[TableInfo]):
        self.tables = tables
        self.data: dict[int, pa.Table] = {}
        self.cache: dict[tuple[int, tuple[str, ...]], np.ndarray] = {}

    def get(self, i: int, cols: tuple[str, ...]) -> np.ndarray:
        key = (i, cols)
        if key not in self.cache:
            if i not in self.data:
                self.data[i] = read_table(self.tables[i])
            table = self.data[i]
            by_norm: dict[str, str] = {}
            for name in table.column_names:
                by_norm.setdefault(normalize_name(name), name)
            self.cache[key] = row_hashes(table, [by_norm[c] for c in cols])
        return self.cache[key]

    def release(self, i: int) -> None:
        self.data.pop(i, None)
        for key in [k for k in self.cache if k[0] == i]:
            del self.cache[key]


def find_containment(tables: list[TableInfo], params: ContainmentParams, spark=None) -> tuple[list[dict], dict]:
    """``spark``: a session for pairs with a table above ``driver_max_bytes`` (created on demand)."""
    n = len(tables)
    funnel: dict = {"tables": n, "ordered_pairs": n * (n - 1), "stages": []}

    def record(name: str, pairs: list, started: float, **extra) -> None:
        funnel["stages"].append({"stage": name, "pairs_left": len(pairs), "seconds": round(time.time() - started, 4), **extra})

    t = time.time()
    pairs = schema_candidates(tables)
    record("schema", pairs, t)
    t = time.time()
    dropped: dict[str, int] = {}
    if params.min_ratio >= 1.0:
        kept = []
        for i, j in pairs:
            ok, why = minmax_keep(tables[i], tables[j])
            if ok:
                kept.append((i, j))
            else:
                reason = why or "unknown"
                dropped[reason] = dropped.get(reason, 0) + 1
        pairs = kept
    record("minmax", pairs, t, skipped=params.min_ratio < 1.0)
    t = time.time()
    hashes = _Hashes(tables)
    rng = np.random.default_rng(params.seed)
    cols_of = {i: tuple(sorted(schema_of(tables[i]))) for i, _ in pairs}
    distinct: dict[int, np.ndarray] = {}
    samples: dict[int, np.ndarray] = {}
    survivors, on_spark = [], []
    for i, j in sorted(pairs, key=lambda p: (p[1], p[0])):  # grouped by parent: each parent read once
        if max(tables[i].bytes, tables[j].bytes) > params.driver_max_bytes:
            on_spark.append((i, j))  # too large for the driver: straight to exact verification on Spark
            continue
        if i not in distinct:
            distinct[i] = np.unique(hashes.get(i, cols_of[i]))
            k = min(params.sample, len(distinct[i]))
            samples[i] = rng.choice(distinct[i], size=k, replace=False) if k else distinct[i]
        if len(distinct[i]) > tables[j].rows:
            continue  # more distinct rows than the parent has rows
        ok, _hits = content_keep(samples[i], hashes.get(j, cols_of[i]), params.min_ratio)
        if ok:
            survivors.append((i, j))
    record("content", survivors + on_spark, t, sample=params.sample, on_spark=len(on_spark))
    t = time.time()
    edges = []
    if on_spark:
        from connectors.spark_session import get_spark
        from curation.containment_spark import spark_ratio

        session = spark or get_spark()
        for i, j in on_spark:
            ratio, rows = spark_ratio(session, tables[i], tables[j])
            if ratio >= params.min_ratio:
                edges.append({"child": tables[i].path, "parent": tables[j].path, "ratio": ratio, "child_rows": rows, "verified": True})
    for i, j in survivors:
        ratio, rows = exact_ratio(distinct[i], hashes.get(j, cols_of[i]))
        if ratio >= params.min_ratio:
            edges.append({"child": tables[i].path, "parent": tables[j].path, "ratio": ratio, "child_rows": rows, "verified": True})
    record("verified", edges, t)
    funnel["minmax_drop_reasons"] = dropped
    funnel["pruned_before_verification_pct"] = round(100 * (1 - (len(survivors) + len(on_spark)) / max(funnel["ordered_pairs"], 1)), 4)
    return sorted(edges, key=lambda e: (e["child"], e["parent"])), funnel


# ---------------------------------------------------------------- the stage's outputs


def report_markdown(lake: str, edges: list[dict], funnel: dict, tables, params: ContainmentParams) -> str:
    lines = [
        f"# Containment in `{lake}`",
        "",
        f"{funnel['tables']} tables, {funnel['ordered_pairs']:,} ordered pairs; minimum ratio {params.min_ratio}.",
        "",
        "| stage | pairs left | seconds |",
        "|---|---|---|",
    ]
    lines += [f"| {s['stage']} | {s['pairs_left']:,} | {s['seconds']} |" for s in funnel["stages"]]
    lines += ["", f"Pruned before exact verification: {funnel['pruned_before_verification_pct']}% of ordered pairs.", ""]
    broken = [t for t in tables if t.error]
    if broken:
        lines += ["Tables that could not be read (skipped):", ""] + [f"- `{t.path}`: {t.error}" for t in broken] + [""]
    lines += ["| child | parent | ratio | child distinct rows |", "|---|---|---|---|"]
    lines += [f"| `{e['child']}` | `{e['parent']}` | {e['ratio']:.4f} | {e['child_rows']:,} |" for e in edges]
    return "\n".join(lines) + "\n"


def run_containment(lake: str, output: str, params: ContainmentParams) -> dict:
    started = time.time()
    os.makedirs(output, exist_ok=True)
    t = time.time()
    tables, cache = build_catalog(lake, os.path.join(output, "catalog.json"))
    catalog_s = time.time() - t
    edges, funnel = find_containment(tables, params)
    funnel["catalog"] = {"seconds": round(catalog_s, 4), **cache, "unreadable": sum(1 for x in tables if x.error)}
    funnel["seconds"] = round(time.time() - started, 3)
    write_containment_outputs(output, edges, funnel, report_markdown(lake, edges, funnel, tables, params))
    return {"edges": edges, "funnel": funnel}
