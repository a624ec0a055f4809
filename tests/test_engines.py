"""The one-process engine against the Spark engine: the kernels that must agree bit for bit with
Spark (its xxhash64, its exact quantile rule), and a whole `tierlake run` of the demo recipe on
both engines, every output dataset compared row by row."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash
import yaml

from curation.quantiles import exact_quantiles
from curation.spark_hash import spark_xxhash64

IDS = ["", "a", "abc", "hello world", "x" * 31, "y" * 32, "z" * 33, "été-ü-中文 🙂", "0123456789" * 17] + [f"doc-{i}" for i in range(500)]


def _xxhash_reference(text: str, seed: int) -> int:
    """Spark's XxHash64 of (string, int literal): XXH64 of the UTF-8 bytes seeded 42, then of
    the int's 4 little-endian bytes seeded with that."""
    h = xxhash.xxh64_intdigest(text.encode(), 42)
    h = xxhash.xxh64_intdigest(int(seed).to_bytes(4, "little", signed=True), h)
    return int(np.array([h], np.uint64).view(np.int64)[0])


def test_spark_xxhash64_kernel_matches_the_xxhash_library():
    for seed in (0, 7, -3, 2**31 - 1):
        got = spark_xxhash64(pa.array(IDS), seed)
        assert got.tolist() == [_xxhash_reference(s, seed) for s in IDS]
    sliced = pa.array(IDS).slice(3, 50)  # an array with an offset, as Arrow slices are
    assert spark_xxhash64(sliced, 7).tolist() == [_xxhash_reference(s, 7) for s in IDS[3:53]]
    with pytest.raises(ValueError, match="32 bits"):
        spark_xxhash64(pa.array(IDS), 2**40)


def test_spark_xxhash64_kernel_matches_spark(spark):
    from pyspark.sql import functions as F

    rows = [(s,) for s in IDS] + [(None,)]
    df = spark.createDataFrame(rows, "id string")
    got = df.select("id", F.xxhash64("id", F.lit(7)).alias("a"), F.xxhash64("id", F.lit(-3)).alias("b")).collect()
    ids = pa.array([r["id"] for r in got], pa.string())
    assert spark_xxhash64(ids, 7).tolist() == [r["a"] for r in got]
    assert spark_xxhash64(ids, -3).tolist() == [r["b"] for r in got]


def test_exact_quantiles_follow_sparks_rule(spark):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=997), [1.0, 1.0, 1.0]])
    with_gaps = [None if i % 17 == 0 else float(v) for i, v in enumerate(values)] + [float("nan")]
    probs = [0.0, 1e-9, 0.001, 0.1, 0.25, 0.5, 0.9, 0.999, 1 - 1e-12, 1.0] + [i / 1000 for i in range(1001)]
    df = spark.createDataFrame([(v,) for v in with_gaps], "x double")
    expected = df.approxQuantile("x", probs, 0.0)
    got = exact_quantiles(np.array([np.nan if v is None else v for v in with_gaps]), probs)
    assert got is not None and got.tolist() == expected
    assert exact_quantiles(np.array([np.nan]), [0.5]) is None


def _sorted(table: pa.Table) -> pa.Table:
    for keys in (["unit_id"], ["id", "repeat"], ["id"], ["source", "source_file", "source_line", "reason"]):
        if all(k in table.column_names for k in keys):
            return table.sort_by([(k, "ascending") for k in keys])
    raise AssertionError(f"no key among {table.column_names}")


def test_local_engine_curates_what_the_spark_engine_curates(demo_run, demo_lake, tmp_path):
    """The demo recipe with ``--engine local``: every output dataset holds the Spark run's rows
    (shard boundaries may differ), and the counts, tiers, thresholds and mix are the same."""
    from flows.cli import main

    lake, _ = demo_lake
    workdir = os.path.dirname(lake)
    recipe, spark_out = demo_run
    with open(recipe) as fh:
        data = yaml.safe_load(fh)
    local_out = str(tmp_path / "local-out")
    data["output"]["path"] = local_out
    local_recipe = str(tmp_path / "local.yaml")
    with open(local_recipe, "w") as fh:
        yaml.safe_dump(data, fh)
    assert main(["--quiet", "run", local_recipe, "--base-dir", workdir, "--engine", "local"]) == 0
    ms, ml = (json.load(open(os.path.join(root, "manifest.json"))) for root in (spark_out, local_out))
    assert ml["software"]["engine"] == "local" and ml["software"]["spark_master"] is None
    assert ms["software"]["engine"] == "spark"
    assert sorted(ml["outputs"]) == sorted(ms["outputs"])
    for name in ms["outputs"]:
        a, b = (_sorted(pq.read_table(os.path.join(root, name))) for root in (spark_out, local_out))
        assert b.schema.equals(a.schema), f"{name}: {b.schema} != {a.schema}"
        for column in a.column_names:
            assert b.column(column).to_pylist() == a.column(column).to_pylist(), f"{name}.{column}"
    assert ml["totals"] == ms["totals"]
    assert ml["tiers"] == ms["tiers"]
    assert ml["selection"] == ms["selection"]
    # how long, whether re-run, and what Spark ran (the Spark engine only)
    timing = {"seconds", "step_seconds", "embed_docs_per_s", "rank_seconds", "restored_from_checkpoint", "spark"}
    for s, loc in zip(ms["stages"], ml["stages"]):
        assert (loc["name"], loc["docs_in"], loc["docs_out"], loc["removed"], loc["quarantined"]) == (
            s["name"],
            s["docs_in"],
            s["docs_out"],
            s["removed"],
            s["quarantined"],
        )
        if s["name"] in ("score", "tier", "select"):
            assert {k: v for k, v in loc["details"].items() if k not in timing} == {k: v for k, v in s["details"].items() if k not in timing}
    assert os.path.exists(os.path.join(local_out, "report.html"))
