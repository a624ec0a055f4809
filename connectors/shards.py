"""Parquet shards of bounded size, written under a temporary name and renamed when complete.

Rows are hash-partitioned on ``id`` (an explicit partition count, so neither sampling nor AQE
changes the split) and sorted by ``id`` inside each shard: the same rows and config give the same
shards byte for byte, however the input was partitioned. Shard count = ceil(uncompressed text bytes / target), and
``maxRecordsPerFile`` caps any shard a skewed range would inflate. Shards are renamed
``part-00000.parquet`` ... in order, hashed (sha256) and described for the manifest.

Output roots may be ``s3://``: Spark writes to a local staging folder (Spark's own S3 connector
needs hadoop-aws JARs that pip does not ship) and the finished folder is copied up with pyarrow.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil

import pyarrow.parquet as pq
from pydantic import BaseModel

DEFAULT_SHARD_BYTES = 256 << 20


class ShardInfo(BaseModel):
    path: str  # relative to the output root, "/"-separated
    rows: int
    bytes: int
    sha256: str
    tokens: int | None = None


class DatasetInfo(BaseModel):
    path: str
    rows: int
    bytes: int
    tokens: int | None = None
    shards: list[ShardInfo]


def sha256_file(path: str, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def commit_dir(tmp: str, final: str) -> None:
    """Replace ``final`` by ``tmp`` with renames only (old copy removed after the swap)."""
    old = None
    if os.path.exists(final):
        old = f"{final}.old-{os.getpid()}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_shards(df, root: str, name: str, run_id: str, target_bytes: int = DEFAULT_SHARD_BYTES,
                 sort_by: str = "id", size_column: str | None = "text",
                 size_hint: tuple[int, int] | None = None) -> DatasetInfo:
    """Write ``df`` to ``root/name/part-NNNNN.parquet`` atomically; return its description.
    ``size_hint`` = (rows, text characters) when the caller already knows them (saves a pass
    over the data); otherwise they are counted."""
    from pyspark.sql import functions as F

    tmp, final = _temporary_dir(root, name, run_id)
    if size_hint is not None:
        rows, text_bytes = size_hint
    else:
        agg = [F.count(F.lit(1)).alias("rows")]
        if size_column:
            agg.append(F.sum(F.length(size_column)).alias("bytes"))
        stats = df.agg(*agg).first()
        rows = int(stats["rows"] or 0)
        text_bytes = int(stats["bytes"] or 0) if size_column else rows * 64
    parts = max(1, math.ceil(text_bytes / target_bytes))
    max_rows = max(1, math.ceil(rows / parts * 1.5)) if rows else 1
    (
        df.repartition(parts, sort_by)  # hash partitioning: a function of the data alone
        .sortWithinPartitions(sort_by)
        .write.option("compression", "zstd")
        .option("maxRecordsPerFile", max_rows)
        .mode("error")
        .parquet(tmp)
    )
    produced = sorted(f for f in os.listdir(tmp) if f.startswith("part-") and f.endswith(".parquet"))
    for junk in os.listdir(tmp):
        if junk not in produced:
            os.remove(os.path.join(tmp, junk))  # _SUCCESS and .crc files
    return _describe_and_commit(tmp, final, name, produced)


def _describe_and_commit(tmp: str, final: str, name: str, produced: list[str]) -> DatasetInfo:
    """Rename the written files ``part-00000.parquet`` ... in order, hash and describe them, then
    move the finished folder into place."""
    shards = []
    for i, fname in enumerate(produced):
        new = f"part-{i:05d}.parquet"
        if fname != new:
            os.rename(os.path.join(tmp, fname), os.path.join(tmp, new))
        full = os.path.join(tmp, new)
        meta = pq.ParquetFile(full)
        tokens = None
        if "token_count" in meta.schema_arrow.names:
            col = meta.read(columns=["token_count"]).column(0)
            tokens = int(col.to_numpy(zero_copy_only=False).sum()) if len(col) else 0
        shards.append(ShardInfo(path=f"{name}/{new}", rows=meta.metadata.num_rows, bytes=os.path.getsize(full),
                                sha256=sha256_file(full), tokens=tokens))
    commit_dir(tmp, final)
    total_tokens = sum(s.tokens or 0 for s in shards) if any(s.tokens is not None for s in shards) else None
    return DatasetInfo(path=name, rows=sum(s.rows for s in shards), bytes=sum(s.bytes for s in shards),
                       tokens=total_tokens, shards=shards)


def _temporary_dir(root: str, name: str, run_id: str) -> tuple[str, str]:
    """(temporary folder, final folder) of dataset ``name`` under ``root``."""
    final = os.path.join(root, name)
    parent, leaf = os.path.split(name)  # nested names (tiers/documents/tier=L1) keep their parents
    os.makedirs(os.path.join(root, parent), exist_ok=True)
    tmp = os.path.join(root, parent, f".{leaf}.tmp-{run_id}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp, final


def write_table_shards(table, root: str, name: str, run_id: str, target_bytes: int = DEFAULT_SHARD_BYTES,
                       sort_by: str = "id", size_column: str | None = "text", threads: int = 2) -> DatasetInfo:
    """:func:`write_shards` for an Arrow table in one process (the local dedup engine): rows sorted
    by ``sort_by`` and cut into ceil(text bytes / target) contiguous shards of equal row counts,
    written zstd on a thread pool. The same table gives the same files; the split differs from
    Spark's hash partitioning (same rows, other shard boundaries)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.compute as pc

    tmp, final = _temporary_dir(root, name, run_id)
    os.makedirs(tmp)
    rows = table.num_rows
    text_bytes = int(pc.sum(pc.utf8_length(table.column(size_column))).as_py() or 0) if size_column and rows else rows * 64
    parts = max(1, math.ceil(text_bytes / target_bytes))
    ordered = table.take(pc.sort_indices(table, sort_keys=[(sort_by, "ascending")])) if rows else table
    bounds = [round(i * rows / parts) for i in range(parts + 1)]
    names = [f"part-{i:05d}.parquet" for i in range(parts)]

    def write(i: int) -> None:
        pq.write_table(ordered.slice(bounds[i], bounds[i + 1] - bounds[i]), os.path.join(tmp, names[i]), compression="zstd")

    with ThreadPoolExecutor(max(1, min(threads, parts))) as pool:
        list(pool.map(write, range(parts)))
    return _describe_and_commit(tmp, final, name, names)


def upload_tree(local_root: str, uri: str) -> None:
    """Copy a finished local output folder to an s3:// root (manifest last)."""
    import pyarrow.fs as pafs

    from connectors.filesystem import resolve

    fs, base = resolve(uri)
    local = pafs.LocalFileSystem()
    manifest = None
    for info in local.get_file_info(pafs.FileSelector(local_root, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = os.path.relpath(info.path, local_root).replace(os.sep, "/")
        if rel == "manifest.json":
            manifest = info.path
            continue
        pafs.copy_files(info.path, f"{base}/{rel}", source_filesystem=local, destination_filesystem=fs)
    if manifest:
        pafs.copy_files(manifest, f"{base}/manifest.json", source_filesystem=local, destination_filesystem=fs)
