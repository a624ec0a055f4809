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
from connectors.manifest import write_file_atomic
from curation.containment_stage import ContainmentParams, find_containment

EDGE_SCHEMA = pa.schema([("child", pa.string()), ("parent", pa.string()), ("ratio", pa.float64()),
                         ("child_rows", pa.int64()), ("verified", pa.bool_())])


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
    write_file_atomic(os.path.join(output, "edges.parquet"), lambda p: pq.write_table(table, p))
    write_file_atomic(os.path.join(output, "report.md"), lambda p: open(p, "w").write(report_markdown(lake, edges, funnel, tables, params)))
    write_file_atomic(os.path.join(output, "funnel.json"), lambda p: open(p, "w").write(json.dumps(funnel, indent=2)))
    return {"edges": edges, "funnel": funnel}


# ---------------------------------------------------------------- deletion plan costs (YAML)

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
