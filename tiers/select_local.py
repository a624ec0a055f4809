"""The select stage's frame operations on an Arrow table (polars), for the one-process engine.

:func:`tiers.select_stage.select_stage` runs the same logic on either engine; this class does in
polars what :class:`tiers.select_stage.SparkFrames` does in Spark: pools by (source, tier), best
first by ``betr_score`` (ties by id), the embedding sample by the seeded xxhash64 of the id
(:mod:`curation.spark_hash`, Spark's hash), and the materialized rows per pool's epochs. The
selected rows equal the Spark engine's (tests/test_engines.py). See docs/engine.md.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from curation.spark_hash import spark_xxhash64
from tiers.mix_optimizer import PoolSpec


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _hash(frame: pl.DataFrame, seed: int) -> pl.Series:
    return pl.Series("_h", spark_xxhash64(frame.get_column("id").to_arrow(), seed))


POOL = pl.concat_str([pl.col("source"), pl.col("tier")], separator="/", ignore_nulls=True).alias("pool")  # Spark's concat_ws


def best_first(frame: pl.DataFrame) -> pl.DataFrame:
    """``pool``, and when scored ``_before`` (the pool's tokens ahead of the document, best
    ``betr_score`` first, ties by id) and ``_pool_tokens``; rows come back in that order."""
    frame = frame.with_columns(POOL)
    if "betr_score" not in frame.columns:
        return frame
    tokens = pl.col("token_count").fill_null(0)
    return frame.sort(["pool", "betr_score", "id"], descending=[False, True, False], nulls_last=[False, True, False]).with_columns(
        (tokens.cum_sum().over("pool") - tokens).alias("_before"), tokens.sum().over("pool").alias("_pool_tokens")
    )


class ArrowFrames:
    def __init__(self, docs: pa.Table | pl.DataFrame):
        self.docs = docs if isinstance(docs, pl.DataFrame) else _frame(docs)

    @property
    def columns(self) -> list[str]:
        return list(self.docs.columns)

    def with_scores(self, scores: pa.Table) -> ArrowFrames:
        return ArrowFrames(self.docs.join(_frame(scores.select(["id", "betr_score"])), on="id", how="left"))

    def count(self, tiers: list[str] | None = None) -> int:
        return self.docs.height if tiers is None else self.docs.filter(pl.col("tier").is_in(tiers)).height

    def keep_top(self, keep_top: dict[str, float]) -> ArrowFrames:
        if not keep_top:
            return self
        if "betr_score" not in self.docs.columns:
            raise ValueError("keep_top needs BETR scores (the score stage, or a run with scores/)")
        frac = pl.lit(keep_top.get("*", 1.0))
        for name, value in keep_top.items():
            if name != "*":
                frac = pl.when(pl.col("pool") == name).then(pl.lit(value)).otherwise(frac)
        ranked = best_first(self.docs)
        return ArrowFrames(ranked.filter(pl.col("_before") < frac * pl.col("_pool_tokens")).drop("pool", "_before", "_pool_tokens"))

    def pool_rows(self, tiers: list[str]) -> list[dict]:
        return (
            self.docs.filter(pl.col("tier").is_in(tiers))
            .group_by("source", "tier")
            .agg(pl.len().alias("documents"), pl.col("token_count").sum().alias("tokens"), pl.col("text").str.len_bytes().sum().alias("bytes"))
            .sort("source", "tier")
            .to_dicts()
        )

    def samples(self, pools: list[PoolSpec], limit: int, seed: int) -> dict[str, list[str]]:
        names = [p.name for p in pools]
        frame = self.docs.with_columns(POOL).filter(pl.col("pool").is_in(names))
        picked = (
            frame.with_columns(_hash(frame, seed))
            .sort(["pool", "_h", "id"])
            .group_by("pool", maintain_order=True)
            .head(limit)
            .select("pool", pl.col("text").fill_null("").str.slice(0, 8192))
        )
        out: dict[str, list[str]] = {n: [] for n in names}
        for pool, text in picked.iter_rows():
            out[pool].append(text)
        return out

    def materialize(self, pools: list[PoolSpec], epochs: np.ndarray, seed: int) -> pa.Table:
        plan = pl.DataFrame({"pool": [p.name for p in pools], "epochs": [float(e) for e in epochs]})
        ranked = best_first(self.docs)
        frac = pl.col("epochs") - pl.col("epochs").floor()
        if "betr_score" in ranked.columns:
            extra = pl.col("_before") + 0.5 * pl.col("token_count") < frac * pl.col("_pool_tokens")
        else:
            extra = pl.col("_u") < frac
        joined = plan.join(ranked, on="pool", how="inner").select(["pool", *[c for c in ranked.columns if c != "pool"], "epochs"])
        u = (spark_xxhash64(joined.get_column("id").to_arrow(), seed) & 0xFFFFFFFF).astype(np.float64) / float(1 << 32)
        picked = (
            joined.with_columns(pl.Series("_u", u))
            .with_columns((pl.col("epochs").floor().cast(pl.Int64) + extra.cast(pl.Int64)).cast(pl.Int32).alias("_copies"))
            .filter(pl.col("_copies") > 0)
            .with_columns(pl.int_ranges(1, pl.col("_copies") + 1, dtype=pl.Int32).alias("repeat"))
            .explode("repeat")
            .drop(["_u", "_copies", "epochs", *[c for c in ("_before", "_pool_tokens") if c in joined.columns]])
        )
        return picked.to_arrow()

    @staticmethod
    def selected_by_pool(selected: pa.Table) -> dict[str, dict]:
        rows = (
            _frame(selected)
            .group_by("pool")
            .agg(pl.len().alias("rows"), pl.col("id").n_unique().alias("documents"), pl.col("token_count").sum().alias("tokens"))
            .to_dicts()
        )
        return {r["pool"]: r for r in rows}
