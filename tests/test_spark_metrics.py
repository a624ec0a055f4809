"""What Spark did per stage (connectors/spark_metrics.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.spark_metrics import job_group, mark, metric_bytes, metric_seconds, spark_work


def test_spark_metric_strings_are_read_as_spark_formats_them():
    several = "total (min, med, max (stageId: taskId))\n1602.9 KiB (200.4 KiB, 200.4 KiB, 200.4 KiB (stage 3.0: task 9))"
    assert metric_bytes(several) == round(1602.9 * 1024)
    assert metric_bytes("12.0 B") == 12
    assert metric_bytes("2.0 GiB") == 2 << 30
    assert metric_bytes("") == 0
    assert metric_seconds("total (min, med, max (stageId: taskId))\n1.6 s (17 ms, 797 ms, 817 ms (stage 3.0: task 10))") == 1.6
    assert metric_seconds("106 ms") == pytest.approx(0.106)
    assert metric_seconds("2.5 m") == 150.0
    assert metric_seconds("1.25 h") == 4500.0
    assert metric_seconds("n/a") == 0.0


def test_spark_work_counts_the_jobs_shuffles_and_python_bytes_of_what_ran_since_the_mark(spark):
    from pyspark.sql import functions as F

    texts = [f"document number {i} " * 20 for i in range(2_000)]
    df = spark.createDataFrame([(str(i), t) for i, t in enumerate(texts)], "id string, text string")
    df.count()  # the input's own jobs come before the mark

    def lengths(batches):
        for b in batches:
            yield pa.RecordBatch.from_arrays([b.column(0), pa.compute.utf8_length(b.column(1))], names=["id", "n"])

    since = mark(spark)
    with job_group(spark, "probe"):
        out = df.mapInArrow(lengths, "id string, n int").groupBy((F.col("n") % 3).alias("k")).count().collect()
        group = spark.sparkContext.getLocalProperty("spark.jobGroup.id")
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # cleared after the stage
    assert group == "tierlake-probe"
    assert sum(r["count"] for r in out) == 2_000
    work = spark_work(spark, since)
    assert work["jobs"] >= 1 and work["stages"] >= 2 and work["tasks"] >= 2
    assert work["shuffle_write_bytes"] > 0 and work["shuffle_read_bytes"] > 0
    assert work["python_operators"] == 1
    text_bytes = sum(len(t.encode()) for t in texts)
    assert text_bytes <= work["python_sent_bytes"] < 2 * text_bytes  # the text crossed once, with its Arrow framing
    assert 0 < work["python_returned_bytes"] < text_bytes

    nothing = spark_work(spark, mark(spark))
    assert nothing["jobs"] == 0 and nothing["python_sent_bytes"] == 0
