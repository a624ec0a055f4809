"""``tierlake containment LAKE OUTPUT``: which tables of a lake are contained in which.

Orchestration only: catalog (:mod:`connectors.lake_catalog`, cached in ``OUTPUT/catalog.json``)
-> funnel (:mod:`curation.containment_stage`) -> ``OUTPUT/edges.parquet`` (child, parent as paths
relative to the lake root, ratio, child_rows, verified), ``OUTPUT/funnel.json`` (pairs left and
seconds per stage) and ``OUTPUT/report.md``, each written under a temporary name and renamed.
"""
from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.lake_catalog import build_catalog
from curation.containment_stage import ContainmentParams, find_containment

EDGE_SCHEMA = pa.schema([("child", pa.string()), ("parent", pa.string()), ("ratio", pa.float64()),
                         ("child_rows", pa.int64()), ("verified", pa.bool_())])


def _replace(path: str, write) -> None:
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def report_markdown(lake: str, edges: list[dict], funnel: dict, tables, params: ContainmentParams) -> str:
    lines = [f"# Containment in `{lake}`", "",
             f"{funnel['tables']} tables, {funnel['ordered_pairs']:,} ordered pairs; minimum ratio {params.min_ratio}.", "",
             "| stage | pairs left | seconds |", "|---|---|---|"]
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
    table = pa.Table.from_pylist(edges, schema=EDGE_SCHEMA)
    _replace(os.path.join(output, "edges.parquet"), lambda p: pq.write_table(table, p))
    _replace(os.path.join(output, "report.md"), lambda p: open(p, "w").write(report_markdown(lake, edges, funnel, tables, params)))
    _replace(os.path.join(output, "funnel.json"), lambda p: open(p, "w").write(json.dumps(funnel, indent=2)))
    return {"edges": edges, "funnel": funnel}


# ---------------------------------------------------------------- deletion plan, apply, restore

def load_costs(path: str | None):
    import csv

    import yaml
    from pydantic import ValidationError

    from curation.deletion_plan import CostModel
    from flows.recipe import RecipeError, _format_errors

    if not path:
        return CostModel()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise RecipeError(f"costs file not found: {path}") from None
    csv_path = data.pop("accesses_csv", None)
    try:
        costs = CostModel.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(path, exc)) from None
    if csv_path:
        full = csv_path if os.path.isabs(csv_path) else os.path.join(os.path.dirname(os.path.abspath(path)), csv_path)
        with open(full, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), 2):
                try:
                    costs.accesses[row["table"]] = float(row["accesses_per_month"])
                except (KeyError, ValueError):
                    raise RecipeError(f"{full}:{lineno}: expected columns table,accesses_per_month with a number") from None
    return costs


def _catalog(output: str) -> tuple[str, dict]:
    with open(os.path.join(output, "catalog.json")) as fh:
        doc = json.load(fh)
    return doc["lake"], {t["path"]: t for t in doc["tables"]}


def make_plan(output: str, costs) -> dict:
    from curation.deletion_plan import plan_deletions

    for need in ("edges.parquet", "catalog.json"):
        if not os.path.exists(os.path.join(output, need)):
            from connectors.filesystem import InputError
            raise InputError(f"{output} has no {need}: run `tierlake containment LAKE {output}` first")
    lake, tables = _catalog(output)
    edges = pq.read_table(os.path.join(output, "edges.parquet")).to_pylist()
    full = [(e["child"], e["parent"]) for e in edges if e["verified"] and e["ratio"] >= 1.0]
    plan = plan_deletions({p: t["bytes"] for p, t in tables.items()}, full, costs)
    plan["lake"] = lake
    for d in plan["delete"]:
        d["recipe"] = _recipe(lake, tables[d["table"]], tables[d["parent"]])
    _replace(os.path.join(output, "plan.json"), lambda p: open(p, "w").write(json.dumps(plan, indent=2)))
    return plan


def _recipe(lake: str, child: dict, parent: dict) -> dict:
    from curation.containment import normalize_name

    pcols = {normalize_name(c): c for c in parent["columns"]}
    cols = list(child["columns"])
    select = ", ".join(f"CAST(`{pcols[normalize_name(c)]}` AS {_sql_type(child['columns'][c]['type'])}) AS `{c}`" for c in cols)
    src = f"parquet.`{os.path.join(lake, parent['path'])}`" if parent["format"] != "csv" else f"csv.`{os.path.join(lake, parent['path'])}`"
    return {"parent": parent["path"], "columns": cols, "types": {c: child["columns"][c]["type"] for c in cols},
            "format": child["format"],
            "spark_sql": f"SELECT {select} FROM {src} -- keep the rows whose tierlake row hash is in rows.parquet "
                         "(one copy per count); `tierlake containment restore` does exactly this",
            "rows": "rows.parquet"}


def _sql_type(t: str) -> str:
    t = t.lower()
    return {"int64": "BIGINT", "long": "BIGINT", "int32": "INT", "integer": "INT", "double": "DOUBLE",
            "float": "FLOAT", "bool": "BOOLEAN", "boolean": "BOOLEAN"}.get(t, "STRING")


def apply_plan(output: str, trash: str) -> list[str]:
    """Move every planned table into ``trash`` with its recipe and row hashes; nothing else changes."""
    import shutil

    import numpy as np

    from connectors.lake_catalog import ColumnStats, TableInfo, read_table
    from curation.containment import normalize_name, row_hashes

    with open(os.path.join(output, "plan.json")) as fh:
        plan = json.load(fh)
    lake, tables = _catalog(output)
    moved = []
    for d in plan["delete"]:
        t = tables[d["table"]]
        info = TableInfo(**{k: v for k, v in t.items() if k not in ("columns", "_fingerprint")},
                         columns={c: ColumnStats(**s) for c, s in t["columns"].items()})
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
            json.dump({**d["recipe"], "table": d["table"], "lake": lake, "hash_columns": cols,
                       "partition_columns": _partition_columns(info, data)}, fh, indent=2)
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
    import numpy as np

    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from connectors.lake_catalog import build_catalog, read_table, write_delta_table
    from curation.containment import normalize_name, row_hashes

    with open(os.path.join(entry, "recipe.json")) as fh:
        recipe = json.load(fh)
    lake = recipe["lake"]
    parents = [t for t in build_catalog(lake)[0] if t.path == recipe["parent"]]
    if not parents:
        from connectors.filesystem import InputError
        raise InputError(f"cannot restore {recipe['table']}: its parent {recipe['parent']} is no longer in {lake}")
    data = read_table(parents[0])
    by_norm = {normalize_name(c): c for c in data.column_names}
    h = row_hashes(data, [by_norm[normalize_name(c)] for c in recipe["hash_columns"]]).view(np.int64)
    want = pq.read_table(os.path.join(entry, "rows.parquet"))
    keys, counts = want.column("row_hash").to_numpy(), want.column("count").to_numpy()
    _, first = np.unique(h, return_index=True)
    first_of = dict(zip(h[first].tolist(), first.tolist()))
    missing = [k for k in keys.tolist() if k not in first_of]
    if missing:
        raise RuntimeError(f"parent {recipe['parent']} no longer holds {len(missing)} of the rows of {recipe['table']}")
    take = np.repeat([first_of[k] for k in keys.tolist()], counts)
    out = data.take(pa.array(take)).select([by_norm[normalize_name(c)] for c in recipe["columns"]])
    out = out.rename_columns(recipe["columns"])
    types = {"int64": pa.int64(), "int32": pa.int32(), "double": pa.float64(), "string": pa.string(), "long": pa.int64(),
             "integer": pa.int32()}
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
