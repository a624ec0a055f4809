"""The documents of a curate run's pools (source × tier) as byte streams for proxy training.

Reads only the columns it needs from the tiered Parquet documents (polars, lazy, Hive tier
partitions). Inside a pool documents are ordered best first: by ``betr_score`` (descending, ties
by id) when the run scored them, else by a seeded hash of the id — the order in which selection
takes them, so a probe on a pool's first U bytes trains on what a partial pass would keep. The
learning-curve probes take a pool in seeded hash order instead (``order="hash"``), so each of their
unique sizes is a random sample of the pool, as QQT's law assumes. A
stream is the documents' UTF-8 bytes, each preceded by the separator byte 0 (:data:`SEPARATOR`);
benchmark examples are encoded the same way for the proxies' target loss.
"""

from __future__ import annotations

import glob
import os
from typing import Literal

import numpy as np
import polars as pl

from connectors.filesystem import InputError

SEPARATOR = b"\x00"


def tiered_parquet(path: str) -> pl.LazyFrame:
    files = sorted(glob.glob(os.path.join(path, "tier=*", "*.parquet")))
    if not files:
        raise InputError(f"{path}: no tiered Parquet documents (tier=L*/ partitions)")
    return pl.scan_parquet(files, hive_partitioning=True)


def scores_path(run_dir: str) -> str | None:
    """RUN_DIR/scores/scores (the score stage's per-document BETR scores) when the run has it."""
    path = os.path.join(run_dir, "scores", "scores")
    return path if glob.glob(os.path.join(path, "*.parquet")) else None


def pool_documents(path: str, tiers: list[str], seed: int = 0, scores: str | None = None, order: Literal["score", "hash"] = "score") -> pl.DataFrame:
    """id, source, tier, pool, text (and betr_score when the run has scores) of the eligible
    tiers, ordered by pool, then best first (module docstring); ``order="hash"``: by pool, then in
    seeded hash order even where scores exist."""
    lf = tiered_parquet(path)
    names = lf.collect_schema().names()
    cols = ["id", "source", "tier", "text"] + (["betr_score"] if "betr_score" in names else [])
    lf = lf.select(cols)
    if scores and "betr_score" not in names:
        lf = lf.join(pl.scan_parquet(os.path.join(scores, "*.parquet")).select(["id", "betr_score"]), on="id", how="left")
    df = lf.filter(pl.col("tier").is_in(tiers)).with_columns(pool=pl.concat_str([pl.col("source"), pl.col("tier")], separator="/")).collect()
    if "betr_score" in df.columns and order == "score":
        return df.sort(["pool", "betr_score", "id"], descending=[False, True, False], nulls_last=True)
    return in_hash_order(df, seed)


def in_hash_order(docs: pl.DataFrame, seed: int) -> pl.DataFrame:
    """``docs`` (a :func:`pool_documents` frame) by pool, then in seeded hash order of the id: any
    prefix of a pool is a random sample of it."""
    return docs.with_columns(_hash=pl.col("id").cast(pl.Utf8).hash(seed)).sort(["pool", "_hash", "id"]).drop("_hash")


def encode(texts: list[str], max_bytes: int | None = None) -> np.ndarray:
    """Documents as one uint8 stream, each preceded by the separator (cut at ``max_bytes``)."""
    series = pl.Series(texts, dtype=pl.Utf8)
    series = series.filter(series.is_not_null() & (series.str.len_bytes() > 0)).str.replace_all("\x00", " ", literal=True)
    if series.is_empty():
        return np.zeros(0, dtype=np.uint8)
    data = (SEPARATOR.decode() + series.str.join(SEPARATOR.decode()).item()).encode("utf-8")  # one join in polars
    if max_bytes is not None:
        data = data[:max_bytes]
    return np.frombuffer(data, dtype=np.uint8).copy()


def hash_ordered_texts(path: str, tiers: list[str] | None, seed: int = 0) -> list[str]:
    """Texts of the given tiers (all tiers when None) in seeded hash order: a random sample of
    any size is a prefix."""
    lf = tiered_parquet(path)
    if tiers is not None:
        lf = lf.filter(pl.col("tier").is_in(tiers))
    df = lf.select(["id", "text"]).with_columns(_h=pl.col("id").cast(pl.Utf8).hash(seed)).sort(["_h", "id"]).collect()
    return df["text"].to_list()
