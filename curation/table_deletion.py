"""Executing a deletion plan: ``plan.json`` from a containment run, moving planned tables to a
trash root with what rebuilds them, and rebuilding a table from its parent.

The plan itself is :func:`curation.deletion_plan.plan_deletions`. A deleted table's trash entry
holds ``original/`` (its files, recoverable until the trash is emptied), ``recipe.json`` (parent,
columns, types, format, a Spark SQL projection) and ``rows.parquet`` (its canonical row hashes,
:func:`curation.containment.row_hashes`, with multiplicities). :func:`restore` reads the parent,
keeps the rows whose hash is listed (each as many times as counted), casts to the original types
and writes the table back in its format.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.filesystem import InputError
from connectors.lake_catalog import (
    ColumnStats,
    TableInfo,
    build_catalog,
    read_table,
    write_delta_table,
)
from connectors.manifest import write_file_atomic
from curation.containment import normalize_name, row_hashes
from curation.deletion_plan import plan_deletions


def _catalog(output: str) -> tuple[str, dict]:
    with open(os.path.join(output, "catalog.json")) as fh:
        doc = json.load(fh)
    return doc["lake"], {t["path"]: t for t in doc["tables"]}


def make_plan(output: str, costs) -> dict:
    """Solve the deletion plan over a containment run's verified ratio-1.0 edges; write plan.json."""
    for need in ("edges.parquet", "catalog.json"):
        if not os.path.exists(os.path.join(output, need)):
            raise InputError(f"{output} has no {need}: run `tierlake containment LAKE {output}` first")
    lake, tables = _catalog(output)
    edges = pq.read_table(os.path.join(output, "edges.parquet")).to_pylist()
    full = [(e["child"], e["parent"]) for e in edges if e["verified"] and e["ratio"] >= 1.0]
    plan = plan_deletions({p: t["bytes"] for p, t in tables.items()}, full, costs)
    plan["lake"] = lake
    for d in plan["delete"]:
        d["recipe"] = _recipe(lake, tables[d["table"]], tables[d["parent"]])
    write_file_atomic(os.path.join(output, "plan.json"), lambda p: open(p, "w").write(json.dumps(plan, indent=2)))
    return plan


def _recipe(lake: str, child: dict, parent: dict) -> dict:
    pcols = {normalize_name(c): c for c in parent["columns"]}
    cols = list(child["columns"])
    select = ", ".join(f"CAST(`{pcols[normalize_name(c)]}` AS {_sql_type(child['columns'][c]['type'])}) AS `{c}`" for c in cols)
    src = f"parquet.`{os.path.join(lake, parent['path'])}`" if parent["format"] != "csv" else f"csv.`{os.path.join(lake, parent['path'])}`"
    return {
        "parent": parent["path"],
        "columns": cols,
        "types": {c: child["columns"][c]["type"] for c in cols},
        "format": child["format"],
        "spark_sql": f"SELECT {select} FROM {src} -- keep the rows whose tierlake row hash is in rows.parquet "
        "(one copy per count); `tierlake containment restore` does exactly this",
        "rows": "rows.parquet",
    }


def _sql_type(t: str) -> str:
    t = t.lower()
    return {
        "int64": "BIGINT",
        "long": "BIGINT",
        "int32": "INT",
        "integer": "INT",
        "double": "DOUBLE",
        "float": "FLOAT",
        "bool": "BOOLEAN",
        "boolean": "BOOLEAN",
    }.get(t, "STRING")


def apply_plan(output: str, trash: str) -> list[str]:
    """Move every planned table into ``trash`` with its recipe and row hashes; nothing else changes."""

    with open(os.path.join(output, "plan.json")) as fh:
        plan = json.load(fh)
    lake, tables = _catalog(output)
    moved = []
    for d in plan["delete"]:
        t = tables[d["table"]]
        info = TableInfo(
            **{k: v for k, v in t.items() if k not in ("columns", "_fingerprint")}, columns={c: ColumnStats(**s) for c, s in t["columns"].items()}
        )
        data = read_table(info)
        cols = sorted(data.column_names, key=normalize_name)
        h = row_hashes(data, cols).view(np.int64)
        uniq, counts = np.unique(h, return_counts=True)
        entry = os.path.join(trash, d["table"])
        if os.path.exists(entry):
            shutil.rmtree(entry)
        os.makedirs(entry)
        pq.write_table(pa.table({"row_hash": uniq, "count": counts.astype(np.int64)}), os.path.join(entry, "rows.parquet"))
        with open(os.path.join(entry, "recipe.json"), "w") as fh:
            json.dump(
                {**d["recipe"], "table": d["table"], "lake": lake, "hash_columns": cols, "partition_columns": _partition_columns(info, data)},
                fh,
                indent=2,
            )
        src = os.path.join(lake, d["table"])
        os.makedirs(os.path.join(entry, "original"))
        shutil.move(src, os.path.join(entry, "original", os.path.basename(src)))  # recoverable until the trash is emptied
        moved.append(d["table"])
    return moved


def _partition_columns(info, data: pa.Table) -> list[str]:
    """Columns of a Hive dataset that live in its folder names, not in its files."""
    if info.format != "parquet_dataset":
        return []
    in_files = set(pq.read_schema(info.files[0][0]).names)
    return [c for c in data.column_names if c not in in_files]


def restore(entry: str) -> str:
    """Rebuild a deleted table from its parent and write it back where it was (same format)."""

    with open(os.path.join(entry, "recipe.json")) as fh:
        recipe = json.load(fh)
    lake = recipe["lake"]
    parents = [t for t in build_catalog(lake)[0] if t.path == recipe["parent"]]
    if not parents:
        raise InputError(f"cannot restore {recipe['table']}: its parent {recipe['parent']} is no longer in {lake}")
    data = read_table(parents[0])
    by_norm = {normalize_name(c): c for c in data.column_names}
    h = row_hashes(data, [by_norm[normalize_name(c)] for c in recipe["hash_columns"]]).view(np.int64)
    want = pq.read_table(os.path.join(entry, "rows.parquet"))
    keys, counts = want.column("row_hash").to_numpy(), want.column("count").to_numpy()
    uniq, first = np.unique(h, return_index=True)
    pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1) if len(uniq) else np.zeros(len(keys), np.int64)
    found = (uniq[pos] == keys) if len(uniq) else np.zeros(len(keys), bool)
    if not found.all():
        raise RuntimeError(f"parent {recipe['parent']} no longer holds {int((~found).sum())} of the rows of {recipe['table']}")
    take = np.repeat(first[pos], counts)
    out = data.take(pa.array(take)).select([by_norm[normalize_name(c)] for c in recipe["columns"]])
    out = out.rename_columns(recipe["columns"])
    types = {"int64": pa.int64(), "int32": pa.int32(), "double": pa.float64(), "string": pa.string(), "long": pa.int64(), "integer": pa.int32()}
    out = pa.table({c: out.column(c).cast(types.get(recipe["types"][c], out.column(c).type)) for c in recipe["columns"]})
    dest = os.path.join(lake, recipe["table"])
    fmt = recipe["format"]
    if fmt == "parquet_dataset" and recipe.get("partition_columns"):
        part = recipe["partition_columns"][0]
        for v in sorted(set(out.column(part).to_pylist())):
            piece = out.filter(pc.equal(out.column(part), v)).drop_columns([part])
            os.makedirs(os.path.join(dest, f"{part}={v}"), exist_ok=True)
            pq.write_table(piece, os.path.join(dest, f"{part}={v}", "part-00000.parquet"))
    elif fmt == "parquet_dataset":
        os.makedirs(dest, exist_ok=True)
        pq.write_table(out, os.path.join(dest, "part-00000.parquet"))
    elif fmt == "delta":
        write_delta_table(dest, out)
    elif fmt == "csv":
        pacsv.write_csv(out, dest)
    else:
        pq.write_table(out, dest)
    return dest
