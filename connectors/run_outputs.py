"""Read a finished run's Parquet outputs by the columns and row groups a question needs.

Used by the report's samples and ``tierlake inspect``: the small columns of every row are read
once (ids, tiers, reasons, scores; never the text), rows are chosen on them, and only the chosen
rows' texts are read back, one Parquet row group at a time. Sampling is a seeded, stable 64-bit
hash of the document id (:func:`stable_hash`, the same on every machine and version), so a run's
samples are the same bytes wherever they are drawn. Reasoning and measurements: docs/inspect.md.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash


def stable_hash(values, seed: int = 0) -> np.ndarray:
    """A seeded 64-bit hash per string (nulls hash as the empty string), the same on every machine
    and library version: XXH3-64 of the UTF-8 bytes (a published, fixed algorithm; polars' own
    ``hash`` is documented as unstable across versions). One C call per id (as
    :func:`curation.minhash.token_hashes` hashes tokens), ~0.2 s per million ids (docs/inspect.md)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    digest = xxhash.xxh3_64_intdigest
    seed = seed & 0xFFFFFFFFFFFFFFFF
    return np.fromiter((digest((v or "").encode("utf-8"), seed) for v in values), np.uint64, len(values))


def _frame(table: pa.Table) -> pl.DataFrame:
    """A polars DataFrame of an Arrow table (``pl.from_arrow`` is typed to return a Series too)."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


@dataclass(frozen=True)
class Dataset:
    """The Parquet files of one output (``root/rel``), sorted; hive ``key=value`` folders become columns."""

    root: str
    rel: str
    files: tuple[str, ...]

    @classmethod
    def open(cls, root: str, rel: str) -> Dataset:
        base = os.path.join(root, rel)
        if os.path.isfile(base):
            files = [base]
        else:
            files = sorted(glob.glob(os.path.join(base, "**", "*.parquet"), recursive=True))
        return cls(root, rel, tuple(f for f in files if not os.path.basename(f).startswith((".", "_"))))

    def __bool__(self) -> bool:
        return bool(self.files)

    def _partitions(self, path: str) -> dict[str, str]:
        rel = os.path.relpath(os.path.dirname(path), os.path.join(self.root, self.rel))
        return dict(p.split("=", 1) for p in rel.split(os.sep) if "=" in p)

    def scan(self, columns: list[str], **partition: list[str] | None) -> pl.DataFrame:
        """``columns`` of every row (those the files have), plus ``_file`` and ``_row`` (its
        position), read with Arrow's threads; hive partition values become columns. Keyword
        arguments keep only the files in those partitions (``tier=["L2"]``; None: all)."""
        wanted = {k: set(v) for k, v in partition.items() if v is not None}
        chosen = [i for i, f in enumerate(self.files) if all(self._partitions(f).get(k) in v for k, v in wanted.items())]
        if not chosen:
            return pl.DataFrame()
        import pyarrow.dataset as pads

        dataset = pads.dataset([self.files[i] for i in chosen], format="parquet")
        fragments = list(dataset.get_fragments())
        counts = np.array([f.metadata.num_rows for f in fragments], np.int64)
        names = set(dataset.schema.names)
        table = dataset.to_table(columns=[c for c in columns if c in names], use_threads=True)  # in file order
        df = _frame(table) if table.num_columns else pl.DataFrame()
        file_index = np.repeat(np.array(chosen, dtype=np.int32), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        extra = [pl.Series("_file", file_index), pl.Series("_row", np.arange(int(counts.sum()), dtype=np.int64) - starts)]
        for key in sorted({k for f in self.files for k in self._partitions(f)} & set(columns)):
            values = [self._partitions(f).get(key) for f in self.files]  # by global file index
            extra.append(pl.Series(key, values, pl.String).gather(pl.Series(file_index)))
        return df.with_columns(extra) if df.width else pl.DataFrame(extra)

    def fetch(self, located: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """``columns`` of the rows in ``located`` (``_file``, ``_row``), in ``located``'s order,
        reading only the row groups that hold them."""
        if located.is_empty():
            return pl.DataFrame({c: [] for c in columns})
        from concurrent.futures import ThreadPoolExecutor

        groups = list(located.with_row_index("_order").group_by(["_file"], maintain_order=True))
        with ThreadPoolExecutor(max_workers=min(8, len(groups))) as pool:  # Arrow decodes without the GIL
            pieces = list(pool.map(lambda g: self._fetch_file(int(g[0][0]), g[1], columns), groups))
        return pl.concat(pieces, how="diagonal_relaxed").sort("_order").drop("_order")

    def _fetch_file(self, file_index: int, rows: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        path = self.files[file_index]
        meta = pq.ParquetFile(path)
        starts = np.cumsum([0] + [meta.metadata.row_group(g).num_rows for g in range(meta.num_row_groups)])
        want = rows["_row"].to_numpy()
        groups = np.unique(np.searchsorted(starts, want, side="right") - 1)
        names = set(meta.schema_arrow.names)
        table = meta.read_row_groups(groups.tolist(), columns=[c for c in columns if c in names])
        base = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in groups])
        local = np.searchsorted(base, want)
        part = _frame(table.take(pa.array(local))) if table.num_columns else pl.DataFrame({"_n": local}).drop("_n")
        parts = self._partitions(path)
        part = part.with_columns(*[pl.lit(v).alias(k) for k, v in parts.items() if k in columns])
        return part.with_columns(rows["_order"].alias("_order"))

    def lookup(self, key: str, values: list[str], columns: list[str]) -> pl.DataFrame:
        """``columns`` of the rows whose ``key`` is in ``values`` (Arrow's filtered, threaded scan)."""
        if not self.files or not values:
            return pl.DataFrame()
        import pyarrow.compute as pc
        import pyarrow.dataset as pads

        dataset = pads.dataset(list(self.files), format="parquet")
        names = set(dataset.schema.names)
        table = dataset.to_table(
            columns=[c for c in dict.fromkeys([key, *columns]) if c in names],
            filter=pc.field(key).isin(pa.array(values, pa.string())),
            use_threads=True,
        )
        return _frame(table)


def hash_sample(df: pl.DataFrame, by: list[str], n: int, seed: int, id_column: str = "id") -> pl.DataFrame:
    """Up to ``n`` rows per group of ``by``: the lowest seeded hashes of ``id_column`` (deterministic)."""
    if df.is_empty():
        return df
    h = stable_hash(df[id_column].cast(pl.String).to_arrow(), seed)
    if not by:
        if len(h) > n:  # top-n without sorting every row
            keep = np.argpartition(h, n - 1)[:n]
            df, h = df[np.sort(keep)], h[np.sort(keep)]
        return df.with_columns(pl.Series("_h", h)).sort(["_h", id_column]).drop("_h")
    out = df.with_columns(pl.Series("_h", h)).sort(["_h", id_column])
    return out.group_by(by, maintain_order=True).head(n).sort([*by, "_h", id_column]).drop("_h")
