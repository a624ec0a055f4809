"""Spark's fixed start cost, apart from its per-document cost.

    .venv/bin/python bench/pipeline.py --docs 20000 --repeat 3 --engines spark,local --tag demo
    .venv/bin/python bench/spark_start.py [--repeat 3] [--results bench/results/pipeline-demo.json]

Times, in a fresh interpreter each time (as ``tierlake run --engine spark`` starts), the import of
pyspark, the session's start with the demo recipe's settings (``get_spark``: the JVM, the driver,
local[*]) and the first job (``spark.range(1).count()``: the executors' first Python worker is
started by the first Python UDF, not here). Then, from a ``bench/pipeline.py`` result, splits each
engine's whole command into the session start measured here, the rest of the fixed cost (imports,
Prefect's temporary server, output shards, report, manifest) and the stages, with the stages' seconds per 1,000
documents: what a larger input pays in proportion. Medians; writes docs/benchmarks.md ("Spark's
fixed start cost").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section  # noqa: E402

PROBE = """
import json, time
t0 = time.perf_counter()
import pyspark  # noqa: F401
from connectors.spark_session import SparkSettings, get_spark
t1 = time.perf_counter()
spark = get_spark(SparkSettings(master="local[*]", driver_memory="2g"))
t2 = time.perf_counter()
spark.range(1).count()
t3 = time.perf_counter()
spark.stop()
print(json.dumps({"import": t1 - t0, "session": t2 - t1, "first_job": t3 - t2}))
"""


def measure(repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), flush=True)
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": runs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "pipeline-demo.json"))
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args(argv)
    start = measure(args.repeat)
    with open(args.results) as fh:
        pipeline = json.load(fh)
    with open(os.path.join(ROOT, "bench", "results", "spark-start.json"), "w") as fh:
        json.dump({"start": start, "pipeline": args.results}, fh, indent=1)
    spark_start = start["import"] + start["session"] + start["first_job"]
    lines = [
        f"Command: `.venv/bin/python bench/spark_start.py --repeat {args.repeat}` (with `{pipeline['command']}` before it)  ",
        f"Machine: {pipeline['machine']}",
        "",
        "A fresh interpreter that starts Spark as `tierlake run --engine spark` does (the demo recipe's settings, "
        f"local[*], 2 GB driver), medians of {args.repeat}:",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| import pyspark and tierlake's session module | {start['import']:.2f} |",
        f"| start the session (JVM, driver) | {start['session']:.2f} |",
        f"| first job (`spark.range(1).count()`) | {start['first_job']:.2f} |",
        f"| **Spark's fixed start** | **{spark_start:.2f}** |",
        "",
        "Each engine's whole `tierlake run` on the demo lake split into that start, the rest of the fixed cost "
        "(imports, Prefect's temporary server, the output datasets' shards, report and manifest: the whole command's wall time minus the stages, "
        "minus Spark's start on the Spark engine) and the stages, with the stages' seconds per 1,000 documents "
        f"(from `{os.path.relpath(args.results, ROOT)}`, medians of its runs):",
        "",
        "| documents | engine | whole command | Spark's start | other fixed cost | stages | stages per 1,000 documents |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in pipeline["results"]:
        spark = spark_start if r["engine"] == "spark" else 0.0
        lines.append(
            f"| {r['documents']:,} | {r['engine']} | {r['wall_seconds']:.1f} s | {spark:.1f} s | {r['fixed_seconds'] - spark:.1f} s | "
            f"{r['stages_seconds']:.1f} s | {1000 * r['stages_seconds'] / r['documents']:.2f} s |"
        )
    lines += [
        "",
        "Spark's per-document cost is the stages' share: the JVM's start is paid once per command, and on a "
        "cluster once per application. Per stage, Spark's seconds against the local engine's are in "
        '"Curate: per-stage throughput (demo)".',
    ]
    replace_section(args.markdown, "Spark's fixed start cost", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
