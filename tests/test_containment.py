"""Containment: catalog, funnel against planted ground truth, deletion plan, apply and restore."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.containment_lake import generate_containment_lake, truth_pairs
from connectors.lake_catalog import build_catalog, read_table
from curation.containment import compatible, needed_hits, normalize_name, row_hashes
from curation.containment_stage import find_containment
from curation.deletion_plan import CostModel, plan_deletions
from curation.params import ContainmentParams
from flows.cli import main


def test_kernels():
    assert normalize_name(" Unit Price (USD) ") == "unit_price_usd"
    assert compatible("int32", "int64") and compatible("int64", "double") and compatible("large_string", "string")
    assert not compatible("string", "int64")
    a = pa.table({"x": pa.array([5, 6], pa.int32()), "s": ["a", None]})
    b = pa.table({"x": pa.array([5.0, 6.0]), "s": ["a", None]})
    assert list(row_hashes(a, ["x", "s"])) == list(row_hashes(b, ["x", "s"]))  # widening keeps equality
    c = pa.table({"x": pa.array([5.0, 6.0]), "s": ["a", ""]})
    assert row_hashes(c, ["x", "s"])[1] != row_hashes(b, ["x", "s"])[1]  # null is not ''
    assert needed_hits(1.0, 64) == 64 and 0 < needed_hits(0.9, 400) < 360


def test_generated_lake_precision_recall_and_funnel(tmp_path):
    records = generate_containment_lake(str(tmp_path / "lake"), 120, seed=3)
    truth = truth_pairs(records)
    tables, counts = build_catalog(str(tmp_path / "lake"), str(tmp_path / "catalog.json"))
    assert counts == {"scanned": 120, "cached": 0} and not [t.path for t in tables if t.error]
    assert {t.format for t in tables} == {"parquet", "csv", "parquet_dataset", "delta"}
    edges, funnel = find_containment(tables, ContainmentParams())
    got = {(e["child"], e["parent"]) for e in edges}
    assert got == truth and all(e["ratio"] == 1.0 and e["verified"] for e in edges)
    left = [s["pairs_left"] for s in funnel["stages"]]
    assert left == sorted(left, reverse=True) and left[-1] == len(truth)
    # an unchanged lake is served from the cache; a touched table is re-read
    _, again = build_catalog(str(tmp_path / "lake"), str(tmp_path / "catalog.json"))
    assert again == {"scanned": 0, "cached": 120}
    first_csv = next(t for t in tables if t.format == "csv")
    with open(os.path.join(tmp_path, "lake", first_csv.path), "a") as fh:
        fh.write("")
    os.utime(os.path.join(tmp_path, "lake", first_csv.path), ns=(1, 1))
    _, third = build_catalog(str(tmp_path / "lake"), str(tmp_path / "catalog.json"))
    assert third == {"scanned": 1, "cached": 119}


def test_partial_ratio_and_near_misses(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    base = pa.table({"id": list(range(100)), "v": [f"x{i}" for i in range(100)]})
    pq.write_table(base, lake / "base.parquet")
    half = pa.table({"id": list(range(50, 150)), "v": [f"x{i}" for i in range(50, 150)]})  # 50% inside
    pq.write_table(half, lake / "half.parquet")
    changed = base.slice(0, 10).set_column(1, "v", pa.array([f"x{i}" for i in range(9)] + ["CHANGED"]))  # one changed cell
    pq.write_table(changed, lake / "changed.parquet")
    tables, _ = build_catalog(str(lake))
    edges, _ = find_containment(tables, ContainmentParams(min_ratio=1.0))
    assert {(e["child"], e["parent"]) for e in edges} == set()
    edges, _ = find_containment(tables, ContainmentParams(min_ratio=0.5, sample=64))
    ratios = {(e["child"], e["parent"]): e["ratio"] for e in edges}
    assert ratios[("half.parquet", "base.parquet")] == 0.5
    assert ratios[("changed.parquet", "base.parquet")] == pytest.approx(0.9)


def test_plan_apply_restore_roundtrip(tmp_path, capsys):
    generate_containment_lake(str(tmp_path / "lake"), 30, seed=5)
    out, trash = tmp_path / "out", tmp_path / "trash"
    assert main(["containment", str(tmp_path / "lake"), str(out)]) == 0
    assert (out / "edges.parquet").exists() and (out / "report.md").exists()
    funnel = json.loads((out / "funnel.json").read_text())
    assert [s["stage"] for s in funnel["stages"]] == ["schema", "minmax", "content", "verified"]
    costs = tmp_path / "costs.yaml"
    (tmp_path / "accesses.csv").write_text("table,accesses_per_month\nb0000/base.parquet,1000000\n")
    costs.write_text("storage_usd_per_gb_month: 20\ndefault_latency_seconds: 5\naccesses_csv: accesses.csv\n")
    assert main(["containment", "plan", str(out), "--costs", str(costs), "--apply", "--trash", str(trash)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["method"] == "milp" and plan["delete"]
    deleted = {d["table"] for d in plan["delete"]}
    assert "b0000/base.parquet" not in deleted  # read a million times a month: rebuilding it costs more than it saves
    for d in plan["delete"]:
        assert d["parent"] not in deleted  # never rebuild from a deleted table
        assert not os.path.exists(tmp_path / "lake" / d["table"])
        assert main(["containment", "restore", str(trash / d["table"])]) == 0
        tables = {t.path: t for t in build_catalog(str(tmp_path / "lake"))[0]}
        restored = read_table(tables[d["table"]])
        original = read_table(build_catalog(str(trash / d["table"] / "original"))[0][0])
        cols = sorted(original.column_names)
        key = [(c, "ascending") for c in cols]
        assert restored.select(cols).sort_by(key).to_pylist() == original.select(cols).sort_by(key).to_pylist()


def test_plan_never_deletes_both_copies_and_greedy_agrees():
    sizes = {"a": 10 << 30, "b": 10 << 30, "c": 1 << 30}
    edges = [("a", "b"), ("b", "a"), ("c", "a"), ("c", "b")]
    costs = CostModel(default_latency_seconds=1e9)
    exact = plan_deletions(sizes, edges, costs)
    assert len({d["table"] for d in exact["delete"]} & {"a", "b"}) == 1
    greedy = plan_deletions(sizes, edges, costs.model_copy(update={"max_exact_edges": 0}))
    assert greedy["method"] == "greedy" and greedy["savings_usd_month"] <= exact["savings_usd_month"] + 1e-12
    tight = plan_deletions(sizes, edges, CostModel(default_latency_seconds=0.001))
    assert tight["delete"] == []  # rebuilding from a 10 GiB parent cannot meet a 1 ms bound


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["containment", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["containment", "plan", str(tmp_path / "o")]) == 2
    assert "run `tierlake containment" in capsys.readouterr().err


@pytest.mark.spark
def test_spark_verification_agrees_with_the_driver(spark, tmp_path):
    generate_containment_lake(str(tmp_path / "lake"), 20, seed=9)
    tables, _ = build_catalog(str(tmp_path / "lake"))
    in_driver, _ = find_containment(tables, ContainmentParams())
    on_spark, funnel = find_containment(tables, ContainmentParams(driver_max_bytes=0), spark=spark)
    assert funnel["stages"][2]["on_spark"] > 0
    assert {(e["child"], e["parent"], e["ratio"], e["child_rows"]) for e in on_spark} == {
        (e["child"], e["parent"], e["ratio"], e["child_rows"]) for e in in_driver
    }


def test_a_csv_table_with_multi_line_values_is_catalogued_and_read(tmp_path):
    """A CSV whose quoted values hold line breaks (RFC 4180), several of Arrow's 1 MB blocks long:
    catalogued with its row count and min/max, and read back whole."""
    import pyarrow.csv as pacsv

    lake = tmp_path / "lake"
    lake.mkdir()
    notes = [f'line one of {i} {"x" * (i % 90)}\nline two, "quoted" {i}' for i in range(40_000)]
    pacsv.write_csv(pa.table({"k": list(range(40_000)), "note": notes}), lake / "notes.csv")
    assert (lake / "notes.csv").stat().st_size > 3 << 20
    tables, _ = build_catalog(str(lake))
    (info,) = tables
    assert info.rows == 40_000 and info.columns["k"].min == 0 and info.columns["k"].max == 39_999
    assert read_table(info).column("note").to_pylist() == notes


@pytest.mark.spark
def test_spark_reads_a_multi_line_csv_table_as_the_catalog_does(spark, tmp_path):
    import pyarrow.csv as pacsv

    from curation.containment_spark import spark_table

    lake = tmp_path / "lake"
    lake.mkdir()
    notes = [f'line one of {i}\nline two, "quoted" {i}' for i in range(500)]
    pacsv.write_csv(pa.table({"k": list(range(500)), "note": notes}), lake / "notes.csv")
    (info,) = build_catalog(str(lake))[0]
    rows = sorted((r["k"], r["note"]) for r in spark_table(spark, info).collect())
    assert rows == list(zip(range(500), notes))
