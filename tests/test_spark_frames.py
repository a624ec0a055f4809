"""join_narrow (connectors/spark_frames.py): the documents' text stays put when the narrow side fits."""

from __future__ import annotations

import pytest

from connectors.spark_frames import join_narrow
from connectors.spark_metrics import mark, spark_work


def _rows(df):
    return sorted(tuple(r) for r in df.collect())


def test_join_narrow_gives_the_rows_of_a_plain_join_and_shuffles_no_text_when_it_broadcasts(spark):
    docs = spark.createDataFrame([(str(i), f"text {i} " * 200, i % 5) for i in range(3_000)], "id string, text string, n int").repartition(4)
    tiers = spark.createDataFrame([(str(i), f"L{i % 4}") for i in range(0, 3_000, 2)], "id string, tier string")
    docs.localCheckpoint()
    for how in ("inner", "left"):
        plain = docs.join(tiers, "id", how)
        since = mark(spark)
        broadcast = join_narrow(docs, tiers, how=how)
        got = _rows(broadcast)
        work = spark_work(spark, since)
        assert got == _rows(plain)
        assert broadcast.columns == plain.columns
        assert work["shuffle_write_bytes"] < 200_000  # the narrow side's id/tier only: the texts are ~4.8 MB
        shuffled = join_narrow(docs, tiers, how=how, budget=0)  # over budget: the plain shuffle join
        assert _rows(shuffled) == got
        assert "BroadcastHashJoin" in broadcast._jdf.queryExecution().executedPlan().toString()
    with pytest.raises(ValueError, match="inner' or 'left'"):
        join_narrow(docs, tiers, how="right")
