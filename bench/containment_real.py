"""Containment on the real tables of ../shared/data/tables, against what each source says.

    .venv/bin/python bench/containment_real.py

* fivethirtyeight snapshots: the DERIVED pairs (distinct-row containment >= 0.5 on shared columns)
  whose small table's columns are all in the large one (tierlake's definition) — recall of those
  pairs at --min-ratio 0.5 and agreement of the ratios.
* TUS samples (SANTOS repo): tables ``t_<base>____c<k>_<v>____<part>`` with the same base and row
  partition are projections of one row set; A ⊑ B expected exactly when base and part match and
  cols(A) ⊆ cols(B); different partitions share no rows.
* Gen-T TP-TR Small: the six ``psql_edge_projSel_*`` queries against the lake: best single-table
  ratio (the source says 0.33–0.68; the union of same-schema tables covers 100%, which single-table
  containment does not model).
* Sloth: pairs 5 (tab009 in tab010), 6 (tab011 in tab012), 39 (tab077 in tab078) are exact
  containments aligned by content, not by column name.
Writes bench/results/containment_real.json and prints a summary.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TABLES = os.path.join(ROOT, "..", "shared", "data", "tables")

from connectors.lake_catalog import build_catalog  # noqa: E402
from curation.containment import schema_of  # noqa: E402
from curation.containment_stage import find_containment  # noqa: E402
from curation.params import ContainmentParams  # noqa: E402


def run(root: str, ratio: float):
    tables, _ = build_catalog(root)
    edges, funnel = find_containment(tables, ContainmentParams(min_ratio=ratio))
    return tables, edges, funnel


def fivethirtyeight() -> dict:
    root = os.path.join(TABLES, "fivethirtyeight_snapshots")
    tables, edges, funnel = run(root, 0.5)
    paths = {t.path for t in tables}
    got = {(e["child"], e["parent"]): e["ratio"] for e in edges}
    expected = {}
    with open(os.path.join(root, "DERIVED_row_containment_pairs_all_538_csvs.tsv")) as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["small_table"] in paths and row["large_table"] in paths and row["shared_cols"] == row["small_ncols"]:
                expected[(row["small_table"], row["large_table"])] = float(row["containment"])
    found = [p for p in expected if p in got]
    close = [p for p in found if abs(got[p] - expected[p]) < 1e-6]
    extra = [p for p in got if p not in expected]
    return {
        "tables": len(tables),
        "derived_pairs_in_scope": len(expected),
        "found": len(found),
        "recall": round(len(found) / max(len(expected), 1), 4),
        "same_ratio": len(close),
        "reported_not_in_derived": len(extra),
        "examples_not_in_derived": extra[:5],
        "examples_missed": [p for p in expected if p not in got][:5],
        "ratio_mismatch_examples": [(p, got[p], expected[p]) for p in found if p not in close][:5],
        "funnel": [(s["stage"], s["pairs_left"]) for s in funnel["stages"]],
    }


def tus() -> dict:
    src = os.path.join(TABLES, "santos", "benchmark", "tus_benchmark")
    tmp = tempfile.mkdtemp(prefix="tus-")
    for sub in ("dataLake", "query"):
        for name in os.listdir(os.path.join(src, sub)):
            shutil.copy(os.path.join(src, sub, name), os.path.join(tmp, name))  # the query copies are the lake's files
    tables, edges, funnel = run(tmp, 1.0)
    pat = re.compile(r"t_(?P<base>[0-9a-f]+)____c(?P<k>\d+)_(?P<v>\d+)____(?P<part>\d+)\.csv")
    meta = {t.path: (pat.match(t.path), set(schema_of(t))) for t in tables}
    expected = set()
    for a, (ma, ca) in meta.items():
        for b, (mb, cb) in meta.items():
            if a != b and ma and mb and ma["base"] == mb["base"] and ma["part"] == mb["part"] and ca <= cb:
                expected.add((a, b))
    got = {(e["child"], e["parent"]) for e in edges}
    tp = len(got & expected)
    return {
        "tables": len(tables),
        "expected_pairs": len(expected),
        "found": len(got),
        "precision": round(tp / max(len(got), 1), 4),
        "recall": round(tp / max(len(expected), 1), 4),
        "unexpected": sorted(got - expected)[:5],
        "missed": sorted(expected - got)[:5],
        "funnel": [(s["stage"], s["pairs_left"]) for s in funnel["stages"]],
    }


def gen_t() -> dict:
    src = os.path.join(TABLES, "gen_t_tptr_small", "benchmarks", "tptr_small")
    tables, edges, funnel = run(src, 0.01)
    best = {}
    for e in edges:
        if "psql_edge_projSel" in e["child"] and e["parent"].startswith("datalake/"):
            best[e["child"]] = max(best.get(e["child"], 0), e["ratio"])
    return {
        "tables": len(tables),
        "best_single_table_ratio": {k: round(v, 4) for k, v in sorted(best.items())},
        "funnel": [(s["stage"], s["pairs_left"]) for s in funnel["stages"]],
    }


def sloth() -> dict:
    src = os.path.join(TABLES, "sloth_examples", "examples", "tables")
    out = {}
    for child, parent in (("tab009", "tab010"), ("tab011", "tab012"), ("tab077", "tab078")):
        tmp = tempfile.mkdtemp(prefix="sloth-")
        for t in (child, parent):
            shutil.copy(os.path.join(src, f"{t}.csv"), os.path.join(tmp, f"{t}.csv"))
        _, edges, _ = run(tmp, 0.01)
        hit = [e for e in edges if e["child"] == f"{child}.csv" and e["parent"] == f"{parent}.csv"]
        out[f"{child} in {parent}"] = round(hit[0]["ratio"], 4) if hit else "not a schema candidate (columns differ by name)"
    return out


def main() -> None:
    res = {}
    for name, fn in (("fivethirtyeight", fivethirtyeight), ("tus", tus), ("gen_t", gen_t), ("sloth", sloth)):
        try:
            res[name] = fn()
        except FileNotFoundError as exc:
            res[name] = {"skipped": f"shared data absent: {exc}"}
        print(name, json.dumps(res[name], indent=1, default=str), flush=True)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "containment_real.json"), "w") as fh:
        json.dump(res, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
