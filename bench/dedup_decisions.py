"""Dedup decisions on Spark: the shared Arrow kernels per partition against the window plan they
replaced, on groups shaped like a web crawl's boilerplate (a few clusters of thousands of copies)
and on many small groups, same data, one run.

    .venv/bin/python bench/dedup_decisions.py [--rows 400000,1600000] [--repeat 3]

Input: a narrow frame as the dedup stages see it after hashing (id, source, token_count, key,
normalized length for exact dedup; node, component for near dedup), written to Parquet first so
both plans read the same files. ``window`` is the plan tierlake used until the decisions were shared
(Spark ``row_number``/``first``/``count`` windows over the group, kept here verbatim as the
reference); ``kernel`` is :func:`curation.exact_dedup.decide_per_partition` with
:func:`curation.dedup_decisions.exact_decisions` / ``near_decisions`` (one shuffle by group, one
Arrow sort per partition). Both results are checked equal row for row before any time is kept.
Wall time of writing the removal rows (Spark's noop sink), medians over ``--repeat`` runs in
rotation. Writes bench/results/dedup-decisions.json and a section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from bench_markdown import replace_section  # noqa: E402  (bench/ is on sys.path when run as a script)
from dedup import machine  # noqa: E402

from curation.dedup_decisions import exact_decisions, near_decisions  # noqa: E402
from curation.exact_dedup import decide_per_partition  # noqa: E402
from curation.params import KeepPolicy  # noqa: E402

SHAPES = {
    # 30% of the rows in 30 boilerplate clusters (cookie banners, navigation pages), the rest 20% pairs
    "boilerplate": {"big_share": 0.30, "big_clusters": 30, "pair_share": 0.20},
    # no large cluster: 20% of the rows in pairs and triples, as bench/corpus.py plants them
    "small groups": {"big_share": 0.0, "big_clusters": 0, "pair_share": 0.20},
}


def groups_for(n: int, shape: dict, rng: np.random.Generator) -> np.ndarray:
    """Group label per row: big clusters, pairs/triples, singletons; rows in a random order."""
    labels = np.arange(n, dtype=np.int64)  # singletons by default
    big = int(n * shape["big_share"])
    if big:
        labels[:big] = rng.integers(0, shape["big_clusters"], big)
    pairs = int(n * shape["pair_share"])
    labels[big : big + pairs] = n + (np.arange(pairs) // rng.choice([2, 3]))
    return labels[rng.permutation(n)]


def write_inputs(folder: str, n: int, shape: dict, seed: int) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("d", np.char.zfill(rng.permutation(n).astype(str), 9))
    group = groups_for(n, shape, rng)
    keys = np.char.add("k", group.astype(str))
    exact = pa.table(
        {
            "id": ids,
            "source": np.full(n, "crawl"),
            "token_count": rng.integers(50, 900, n),
            "_key": keys,
            "_norm_len": np.where(rng.random(n) < 0.001, 0, 100).astype(np.int32),
        }
    )
    # near dedup: only rows in a group of two or more are graph nodes; component = smallest id of the group
    table = pa.table({"id": ids, "g": group})
    sizes = table.group_by("g").aggregate([("id", "count"), ("id", "min")])
    member = table.join(sizes, "g").filter(pc.field("id_count") > 1)
    components = pa.table({"node": member.column("id"), "component": member.column("id_min")})
    exact_path, comp_path = os.path.join(folder, f"exact-{n}.parquet"), os.path.join(folder, f"components-{n}.parquet")
    pq.write_table(exact, exact_path)
    pq.write_table(components, comp_path)
    return exact_path, comp_path


def window_exact(rows):
    """The window plan of exact dedup (smallest id kept), as tierlake ran it before."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    empty = rows.where(F.col("_norm_len") == 0)
    nonempty = rows.where(F.col("_norm_len") > 0)
    group = Window.partitionBy("_key")
    ordered = group.orderBy(F.col("id").asc())
    ranked = (
        nonempty.withColumn("_rank", F.row_number().over(ordered))
        .withColumn("_kept_id", F.first("id").over(ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .withColumn("_size", F.count(F.lit(1)).over(group))
    )
    dups = ranked.where(F.col("_rank") > 1).select(
        "id",
        "source",
        "token_count",
        F.lit("exact_duplicate").alias("reason"),
        F.col("_kept_id").alias("duplicate_of"),
        F.lit("exact").alias("kind"),
        F.col("_size").cast("long").alias("cluster_size"),
    )
    return dups.unionByName(
        empty.select(
            "id",
            "source",
            "token_count",
            F.lit("empty_text").alias("reason"),
            F.lit(None).cast("string").alias("duplicate_of"),
            F.lit(None).cast("string").alias("kind"),
            F.lit(None).cast("long").alias("cluster_size"),
        )
    )


def window_near(components, narrow):
    """The window plan of near dedup (smallest id kept), as tierlake ran it before."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    sized = components.withColumn("cluster_size", F.count(F.lit(1)).over(Window.partitionBy("component")))
    members = narrow.join(sized, narrow["id"] == sized["node"]).drop("node")
    ordered = Window.partitionBy("component").orderBy(F.col("id").asc())
    ranked = members.withColumn("_rank", F.row_number().over(ordered)).withColumn(
        "_kept", F.first("id").over(ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    )
    return ranked.where(F.col("_rank") > 1).select(
        "id",
        "source",
        "token_count",
        F.lit("near_duplicate").alias("reason"),
        F.col("_kept").alias("duplicate_of"),
        F.lit("near").alias("kind"),
        F.col("cluster_size").cast("long"),
    )


def kernel_exact(rows):
    return decide_per_partition(rows, partial(exact_decisions, policy=KeepPolicy()), "_key")


def kernel_near(components, narrow):
    from pyspark.sql import functions as F

    graph = (
        components.select(F.col("node").alias("id"), F.col("component").alias("_component"))
        .join(narrow.withColumn("_member", F.lit(True)), "id", "left")
        .withColumn("_old", F.lit(False))
    )
    return decide_per_partition(graph, partial(near_decisions, policy=KeepPolicy()), "_component")


def sorted_rows(frame) -> pa.Table:
    return frame.toArrow().sort_by([("id", "ascending")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="400000,1600000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    from connectors.spark_session import SparkSettings, get_spark

    spark = get_spark(SparkSettings(master="local[2]", driver_memory="6g"))
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(float(x)) for x in args.rows.split(",")]:
            for shape_name, shape in SHAPES.items():
                exact_path, comp_path = write_inputs(tmp, n, shape, seed=0)
                rows = spark.read.parquet(exact_path)
                components = spark.read.parquet(comp_path)
                narrow = rows.select("id", "source", "token_count")
                plans = {
                    ("exact", "window"): lambda: window_exact(rows),
                    ("exact", "kernel"): lambda: kernel_exact(rows),
                    ("near", "window"): lambda: window_near(components, narrow),
                    ("near", "kernel"): lambda: kernel_near(components, narrow),
                }
                for stage in ("exact", "near"):  # the same rows from both plans, before any timing counts
                    a, b = sorted_rows(plans[(stage, "window")]()), sorted_rows(plans[(stage, "kernel")]())
                    assert a.num_rows == b.num_rows and a.to_pylist() == b.to_pylist(), f"{stage} plans differ at {n}"
                times: dict = {k: [] for k in plans}
                for _ in range(args.repeat):
                    for key, plan in plans.items():
                        started = time.perf_counter()
                        plan().write.format("noop").mode("overwrite").save()
                        times[key].append(time.perf_counter() - started)
                removed = {stage: int(sorted_rows(plans[(stage, "kernel")]()).num_rows) for stage in ("exact", "near")}
                for stage in ("exact", "near"):
                    w, k = statistics.median(times[(stage, "window")]), statistics.median(times[(stage, "kernel")])
                    results.append(
                        {
                            "rows": n,
                            "shape": shape_name,
                            "stage": stage,
                            "removed": removed[stage],
                            "window_s": round(w, 2),
                            "kernel_s": round(k, 2),
                            "window_over_kernel": round(w / k, 2),
                            "window_runs": [round(t, 2) for t in times[(stage, "window")]],
                            "kernel_runs": [round(t, 2) for t in times[(stage, "kernel")]],
                        }
                    )
                    print(json.dumps(results[-1]), flush=True)
    spark.stop()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = {"machine": machine(), "repeat": args.repeat, "results": results}
    with open(os.path.join(HERE, "results", "dedup-decisions.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    lines = [
        "Run: `.venv/bin/python bench/dedup_decisions.py --rows " + args.rows + f" --repeat {args.repeat}` "
        f"on {out['machine']}, Spark local[2]; medians of {args.repeat} runs in rotation. The removal rows of both "
        "plans are checked equal before timing. `window`: Spark windows over each group (tierlake's plan before "
        "the decisions were shared); `kernel`: one shuffle by group and the shared Arrow decision functions per "
        "partition (curation/dedup_decisions.py, the functions the local engine runs).",
        "",
        "| rows | groups | stage | removed | window s | kernel s | window / kernel |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['shape']} | {r['stage']} | {r['removed']:,} | {r['window_s']} | {r['kernel_s']} | {r['window_over_kernel']}x |"
        )
    replace_section(args.markdown, "Dedup decisions on Spark: shared kernels vs windows", "\n".join(lines))


if __name__ == "__main__":
    main()
