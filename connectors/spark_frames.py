"""Joins that leave the documents' text where it is.

Joining a frame of documents (with their text) to a narrow frame of per-document columns by id is
a sort-merge join in Spark: both sides are shuffled, so every text crosses the network and the
shuffle files once more. :func:`join_narrow` broadcasts the narrow side instead when it fits a
share of the driver's memory, so only the narrow columns move; measured in docs/engine.md, "What
Spark does per stage".
"""

from __future__ import annotations

# a broadcast is collected on the driver and held there as Java objects (a few times its Parquet
# size): the narrow side may take at most this share of the driver's heap, by its JSON size
DRIVER_SHARE = 1 / 16


def broadcast_budget(spark) -> int:
    """Bytes of narrow rows this session broadcasts (a share of ``spark.driver.memory``)."""
    conf = spark.sparkContext._jsc.sc().getConf()
    return int(conf.getSizeAsBytes("spark.driver.memory", "1g") * DRIVER_SHARE)


def narrow_bytes(frame) -> int:
    """Rows' size as JSON (one job over ``frame``; an over-estimate of its binary size)."""
    from pyspark.sql import functions as F

    row = frame.select(F.sum(F.octet_length(F.to_json(F.struct(*frame.columns)))).alias("b")).first()
    return int(row["b"] or 0)


def join_narrow(wide, narrow, on: str | list[str] = "id", how: str = "inner", budget: int | None = None):
    """``wide.join(narrow, on, how)`` with ``narrow`` broadcast when its rows fit ``budget``
    (default :func:`broadcast_budget`), so ``wide`` is not shuffled. ``how`` is ``inner`` or
    ``left`` (the broadcast side must be the right one). The rows are the same either way; their
    order is not (tierlake sorts what it writes)."""
    from pyspark.sql import functions as F

    if how not in ("inner", "left"):
        raise ValueError(f"join_narrow broadcasts the right side: how must be 'inner' or 'left', not {how!r}")
    limit = broadcast_budget(wide.sparkSession) if budget is None else budget
    if narrow_bytes(narrow) <= limit:
        return wide.join(F.broadcast(narrow), on, how)
    return wide.join(narrow, on, how)
