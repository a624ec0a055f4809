"""Parquet shards of bounded size, written under a temporary name and renamed when complete.

Rows are hash-partitioned on ``id`` (an explicit partition count, so neither sampling nor AQE
changes the split) and sorted by ``id`` inside each shard, and pyarrow writes the files inside the
Spark tasks: the same rows and config give the same shards byte for byte, however the input was
partitioned and in whichever JVM (Spark's own Parquet writer lists encodings in a varying order).
Shard count = ceil(uncompressed text bytes / target), and a row cap splits any shard a skewed
range would inflate. Shards are renamed ``part-00000.parquet`` ... in order, hashed (sha256) and
described for the manifest.

Output roots may be ``s3://``: Spark writes to a local staging folder (Spark's own S3 connector
needs hadoop-aws JARs that pip does not ship) and the finished folder is copied up with pyarrow.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from connectors.arrow_rows import take_rows

DEFAULT_SHARD_BYTES = 256 << 20
QUARANTINE_ORDER = ["source", "source_file", "source_line", "reason", "detail", "raw"]  # a total order of quarantine rows
PARQUET_OPTIONS = {"compression": "zstd"}  # one writer (pyarrow) and one setting for every shard, both engines


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


def _nullable_type(t):
    import pyarrow as pa

    if pa.types.is_large_string(t):
        return pa.string()  # as Spark writes it; a shard is far below string's 2 GiB per array
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _nullable_type(f.type), True) for f in t])
    if pa.types.is_large_list(t):
        return pa.list_(pa.field("element", _nullable_type(t.value_type), True))
    if pa.types.is_list(t):
        return pa.list_(pa.field("element", _nullable_type(t.value_type), True))  # Spark's name for list items
    if pa.types.is_map(t):
        return pa.map_(t.key_type, _nullable_type(t.item_type))
    return t


def nullable_schema(schema):
    """``schema`` with every field nullable, as Spark reads any Parquet back: whether a column was
    declared non-null depends on the plan that made it (computed, or read from a checkpoint), so
    leaving it in would make the same rows give different bytes."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _nullable_type(f.type), True) for f in schema])


def write_shards(
    df,
    root: str,
    name: str,
    run_id: str,
    target_bytes: int = DEFAULT_SHARD_BYTES,
    sort_by: str | list[str] = "id",
    size_column: str | None = "text",
    size_hint: tuple[int, int] | None = None,
) -> DatasetInfo:
    """Write ``df`` to ``root/name/part-NNNNN.parquet`` atomically; return its description.
    ``size_hint`` = (rows, text characters) when the caller already knows them (saves a pass
    over the data); otherwise they are counted. ``sort_by``: the column(s) ordering rows inside a
    shard; they must identify a row, or rows that tie could come in any order.

    The shards are written by pyarrow inside the Spark tasks (``mapInArrow``), not by Spark's
    Parquet writer, whose footers list a column chunk's encodings in an order that varies
    between identical runs: the same rows and config give the same bytes. An Arrow table (the
    one-process engine's frames) goes to :func:`write_table_shards`."""
    if isinstance(df, pa.Table):
        return write_table_shards(df, root, name, run_id, target_bytes, sort_by, size_column)
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
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
    os.makedirs(tmp)
    folder = os.path.abspath(tmp)

    def write_partition(batches):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()
        files, counts, writer, in_file = [], [], None, 0
        for batch in batches:
            start = 0
            while start < batch.num_rows:
                if writer is None:
                    files.append(f"part-{part:05d}-{len(files):04d}.parquet")
                    counts.append(0)
                    schema = nullable_schema(batch.schema)
                    writer = pq.ParquetWriter(os.path.join(folder, files[-1]), schema, **PARQUET_OPTIONS)
                take = min(batch.num_rows - start, max_rows - in_file)
                writer.write_batch(pa.RecordBatch.from_arrays(batch.slice(start, take).columns, schema=schema))
                start, in_file, counts[-1] = start + take, in_file + take, counts[-1] + take
                if in_file == max_rows:
                    writer.close()
                    writer, in_file = None, 0
        if writer is not None:
            writer.close()
        yield pa.RecordBatch.from_pydict({"file": files, "rows": counts}, schema=pa.schema([("file", pa.string()), ("rows", pa.int64())]))

    written = df.repartition(parts, *keys).sortWithinPartitions(*keys).mapInArrow(write_partition, "file string, rows long").collect()
    produced = sorted(r["file"] for r in written)
    if not produced:  # an empty dataset is one empty shard with the schema, so readers find its columns
        schema = nullable_schema(to_arrow_schema(df.schema))
        pq.write_table(schema.empty_table(), os.path.join(tmp, "part-00000.parquet"), **PARQUET_OPTIONS)
        produced = ["part-00000.parquet"]
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
        shards.append(
            ShardInfo(path=f"{name}/{new}", rows=meta.metadata.num_rows, bytes=os.path.getsize(full), sha256=sha256_file(full), tokens=tokens)
        )
    commit_dir(tmp, final)
    total_tokens = sum(s.tokens or 0 for s in shards) if any(s.tokens is not None for s in shards) else None
    return DatasetInfo(path=name, rows=sum(s.rows for s in shards), bytes=sum(s.bytes for s in shards), tokens=total_tokens, shards=shards)


def _temporary_dir(root: str, name: str, run_id: str) -> tuple[str, str]:
    """(temporary folder, final folder) of dataset ``name`` under ``root``."""
    final = os.path.join(root, name)
    parent, leaf = os.path.split(name)  # nested names (tiers/documents/tier=L1) keep their parents
    os.makedirs(os.path.join(root, parent), exist_ok=True)
    tmp = os.path.join(root, parent, f".{leaf}.tmp-{run_id}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp, final


def write_table_shards(
    table,
    root: str,
    name: str,
    run_id: str,
    target_bytes: int = DEFAULT_SHARD_BYTES,
    sort_by: str | list[str] = "id",
    size_column: str | None = "text",
    threads: int = 2,
) -> DatasetInfo:
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
    keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]) if rows else None
    if order is not None and pc.all(pc.equal(order, pa.array(np.arange(rows, dtype=np.uint64)))).as_py():
        order = None  # already in order: shards are slices, no copy
    schema = nullable_schema(table.schema)
    bounds = [round(i * rows / parts) for i in range(parts + 1)]
    names = [f"part-{i:05d}.parquet" for i in range(parts)]

    def write(i: int) -> None:
        # each shard gathers its own rows, so the copy of the texts runs on the pool's threads
        n = bounds[i + 1] - bounds[i]
        shard = table.slice(bounds[i], n) if order is None else take_rows(table, order.slice(bounds[i], n))
        pq.write_table(shard.cast(schema), os.path.join(tmp, names[i]), **PARQUET_OPTIONS)

    with ThreadPoolExecutor(max(1, min(threads, parts))) as pool:
        list(pool.map(write, range(parts)))
    return _describe_and_commit(tmp, final, name, names)


class UploadError(OSError):
    """Copying a finished run to its s3:// root failed after the S3 client's retries."""


def upload_tree(local_root: str, uri: str) -> None:
    """Copy a finished local output folder to an s3:// root, the manifest last: a remote run
    without ``manifest.json`` is incomplete. The S3 client retries each request
    (:func:`connectors.filesystem.s3_filesystem`); a file that still fails raises
    :class:`UploadError` naming it, and a re-run copies everything again."""
    import pyarrow.fs as pafs

    from connectors.filesystem import resolve

    fs, base = resolve(uri)
    local = pafs.LocalFileSystem()
    files = sorted(info.path for info in local.get_file_info(pafs.FileSelector(local_root, recursive=True)) if info.type == pafs.FileType.File)
    rels = [os.path.relpath(p, local_root).replace(os.sep, "/") for p in files]
    order = [i for i, r in enumerate(rels) if r != "manifest.json"] + [i for i, r in enumerate(rels) if r == "manifest.json"]
    for done, i in enumerate(order):
        try:
            pafs.copy_files(files[i], f"{base}/{rels[i]}", source_filesystem=local, destination_filesystem=fs)
        except OSError as exc:
            raise UploadError(
                f"upload to {uri} failed at {rels[i]} after retries ({done} of {len(order)} files copied; "
                f"the manifest was not uploaded, so the remote run does not look complete; run the same "
                f"command again): {str(exc).splitlines()[0]}"
            ) from None
