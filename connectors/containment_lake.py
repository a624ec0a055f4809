"""A generated lake of many tables with planted containment and exact ground truth.

Every table descends from one of ``n_tables // 10`` base tables (ids unique per base, values drawn
from per-base ranges so two bases never share a row) as one of: an exact copy, a projection, a row
selection, a projection + selection, a column reorder, a type widening (int32 -> int64 or double),
a renamed column (not contained: its column set differs), and near misses — one changed cell, one
extra row. Formats rotate over Parquet files, CSV, Hive-partitioned Parquet datasets and Delta
tables (log written by hand: protocol, metaData with schemaString, add actions with stats).

Ground truth is by construction: each table is (base, column names, base row indices, number of
rows no other table has); A ⊑ B exactly when they share a base, cols(A) ⊆ cols(B), rows(A) ⊆
rows(B) and A has no row of its own. Every table keeps the base's unique ``id`` column, so a
projection cannot become contained by collapsing rows.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.lake_catalog import write_delta_table

KINDS = ["copy", "projection", "selection", "projection_selection", "reorder", "widened", "renamed", "changed_cell", "extra_row"]


def _base_table(rng: np.random.Generator, b: int, rows: int) -> pa.Table:
    ids = np.arange(rows, dtype=np.int64) + b * 1_000_000
    cols = {"id": pa.array(ids)}
    cols["qty"] = pa.array(rng.integers(0, 1000, rows, dtype=np.int32) + b * 1000, pa.int32())
    cols["price"] = pa.array(np.round(rng.uniform(0, 100, rows) + b * 100, 2))
    cols["label"] = pa.array([f"b{b}-{x}" for x in rng.integers(0, 50, rows)])
    cols["zone"] = pa.array(rng.choice(["north", "south"], rows))
    for k in range(int(rng.integers(0, 4))):
        cols[f"extra{k}"] = pa.array(rng.integers(0, 10_000, rows, dtype=np.int64) + b * 10_000)
    return pa.table(cols)


def _write(root: str, rel: str, table: pa.Table, fmt: str) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "dataset":  # Hive-partitioned on the zone column (its values move into the paths)
        for v in ("north", "south"):
            piece = table.filter(pc.equal(table.column("zone"), v)).drop_columns(["zone"])
            os.makedirs(os.path.join(path, f"zone={v}"), exist_ok=True)
            pq.write_table(piece, os.path.join(path, f"zone={v}", "part-00000.parquet"))
    elif fmt == "delta":
        write_delta_table(path, table)


def generate_containment_lake(root: str, n_tables: int = 300, seed: int = 0) -> list[dict]:
    """Write the lake; return one truth record per table: path, base, cols, rows (sorted list), own_rows."""
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    n_bases = max(1, n_tables // 10)
    formats = ["parquet", "csv", "dataset", "delta"]
    records = []
    per_base = [n_tables // n_bases + (1 if b < n_tables % n_bases else 0) for b in range(n_bases)]
    for b in range(n_bases):
        rows = int(rng.integers(200, 1500))
        base = _base_table(rng, b, rows)
        all_idx = np.arange(rows)
        records.append(_emit(root, f"b{b:04d}/base.parquet", base, "parquet", b, all_idx, 0))
        for k in range(per_base[b] - 1):
            kind = KINDS[k % len(KINDS)]
            fmt = formats[(b + k) % len(formats)] if kind not in ("widened",) else "parquet"
            if fmt == "dataset" and kind in ("projection", "projection_selection"):
                fmt = "csv"  # a projection may drop the partition column
            names = base.column_names
            idx, cols, own = all_idx, list(names), 0
            table = base
            if kind in ("projection", "projection_selection"):
                keep = ["id"] + sorted(rng.choice(names[1:], size=int(rng.integers(1, len(names) - 1)), replace=False).tolist())
                cols = [c for c in names if c in keep]
            if kind in ("selection", "projection_selection", "changed_cell", "extra_row"):
                idx = np.sort(rng.choice(all_idx, size=int(rng.integers(rows // 4, rows - 1)), replace=False))
            table = base.take(pa.array(idx)).select(cols)
            if kind == "reorder":
                table = table.select(list(reversed(cols)))
            elif kind == "widened":
                table = table.set_column(table.schema.get_field_index("qty"), "qty", table.column("qty").cast(pa.int64()))
            elif kind == "renamed":
                table = table.rename_columns(["price_usd" if c == "price" else c for c in table.column_names])
                cols = table.column_names
            elif kind == "changed_cell":
                qty = np.asarray(table.column("qty")).copy()
                qty[0] = 999_999  # a value no other table holds
                table = table.set_column(table.schema.get_field_index("qty"), "qty", pa.array(qty, pa.int32()))
                own, idx = 1, idx[1:]
            elif kind == "extra_row":
                extra: dict[str, list] = {c: [None] for c in table.column_names}
                extra.update(id=[b * 1_000_000 + 999_999], qty=[b * 1000 + 1], price=[b * 100 + 1.0], label=[f"b{b}-extra"], zone=["north"])
                for c in table.column_names:
                    if c.startswith("extra"):
                        extra[c] = [b * 10_000 + 1]
                table = pa.concat_tables([table, pa.table(extra, schema=table.schema)])
                own = 1
            ext = {"parquet": ".parquet", "csv": ".csv", "dataset": "", "delta": ""}[fmt]
            records.append(_emit(root, f"b{b:04d}/{kind}_{k:03d}{ext}", table, fmt, b, idx, own))
    return records


def _emit(root, rel, table, fmt, base, idx, own) -> dict:
    _write(root, rel, table, fmt)
    return {"path": rel, "base": base, "cols": sorted(table.column_names), "rows": np.asarray(idx).tolist(), "own_rows": own, "format": fmt}


def truth_pairs(records: list[dict]) -> set[tuple[str, str]]:
    """Every ordered pair (child, parent) with child ⊑ parent, by construction."""
    by_base: dict[int, list[dict]] = {}
    for r in records:
        by_base.setdefault(r["base"], []).append(r)
    out = set()
    for group in by_base.values():
        sets = [(r, set(r["cols"]), set(r["rows"])) for r in group]
        for a, ca, ra in sets:
            if a["own_rows"]:
                continue
            for b, cb, rb in sets:
                if a is not b and ca <= cb and ra <= rb:
                    out.add((a["path"], b["path"]))
    return out
