"""Read a recipe's sources into one Spark DataFrame with tierlake's canonical document schema.

Canonical schema: ``id`` (string; the source's id column, or a stable hash of source + text),
``text``, ``source`` (the recipe's source name), ``token_count`` (estimate, see below),
``source_file``/``source_line`` (provenance), then the source's own columns passed through. An
input column whose name is reserved is kept as ``input_<name>`` (dolma's ``source`` field
becomes ``input_source``), so nothing is lost.

Every row read ends up in exactly one of two DataFrames: documents, or quarantine (source, file,
line, reason, detail, raw preview). Quarantine reasons: ``malformed_json``, ``invalid_utf8``,
``line_too_large``, ``bad_csv_row``, ``unreadable_file``, ``truncated``, ``too_deep``, ``invalid_unicode``, ``type_mismatch``, ``missing_text``, ``too_large``,
``missing_id``, ``duplicate_id``.

Token counts are an estimate, ceil(characters / 4) (the usual ~4 characters per token of BPE
tokenizers on English); no tokenizer that works offline is assumed.
"""

from __future__ import annotations

import posixpath
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field, field_validator

from connectors import file_formats as ff
from connectors.filesystem import (
    FileInfo,
    InputError,
    apply_storage_env,
    is_s3,
    list_files,
    storage_env,
)
from connectors.spark_session import task_memory_bytes, task_slots

RESERVED = ("id", "text", "source", "token_count", "source_file", "source_line")
DEFAULT_ID_COLUMN = "id"  # used as the document id when the input has it (datatrove's id_key)
CHARS_PER_TOKEN = 4


class SourceSpec(BaseModel):
    """One input of a recipe."""

    model_config = {"extra": "forbid"}

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="source name recorded on every document")
    path: str = Field(..., min_length=1, description="file, folder or s3:// URI")
    format: Literal["auto", "jsonl", "parquet", "csv"] = "auto"
    text_column: str = "text"
    id_column: str | None = Field(
        "id",
        description="column holding each document's unique id. The default `id` is used when the input has "
        "that column, else ids are a hash of source + text; any other name must exist; null: always hash ids",
    )
    license: str | None = None
    csv_delimiter: str = Field(",", min_length=1, max_length=1)

    @field_validator("path")
    @classmethod
    def _no_credentials_in_uri(cls, value: str) -> str:
        if "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("credentials must come from the environment, not the URI")
        return value


def resolve_id_column(spec: SourceSpec, columns: list[str]) -> SourceSpec:
    """``spec`` with ``id_column`` settled against the input's columns: the default ``id`` falls
    back to hash ids (None) when the input has no such column."""
    if spec.id_column == DEFAULT_ID_COLUMN and DEFAULT_ID_COLUMN not in columns:
        return spec.model_copy(update={"id_column": None})
    return spec


class IngestParams(BaseModel):
    model_config = {"extra": "forbid"}

    max_doc_chars: int = Field(1_000_000, ge=1, description="longer documents are quarantined as too_large")
    max_line_bytes: int = Field(64 << 20, ge=1024, description="longer JSONL lines are quarantined unparsed")


def shard_size_hint(stats) -> tuple[int, int]:
    """(rows, text characters) of a stage's output documents for :func:`connectors.shards.write_shards`,
    from its counts: token_count = ceil(characters / 4), so 4 x tokens bounds the characters
    (no pass over the texts to size the shards)."""
    return stats.docs_out, stats.tokens_out * CHARS_PER_TOKEN


def _plan_files(spec: SourceSpec) -> list[tuple[str, str, str | None, str, FileInfo]]:
    """(uri, format, compression, relative path, FileInfo) for each readable file of a source."""
    files = list_files(spec.path)
    root = spec.path.rstrip("/")
    plan = []
    for info in files:
        fmt, comp = ff.split_suffix(posixpath.basename(info.uri))
        if spec.format != "auto":
            fmt = spec.format
        if fmt is None:
            continue  # not a data file (README, notes ...): ignored by suffix
        rel = posixpath.relpath(info.uri, root) if info.uri != root else posixpath.basename(info.uri)
        plan.append((info.uri, fmt, comp, rel, info))
    if not plan:
        raise InputError(f"source {spec.name!r}: no JSONL, Parquet or CSV files under {spec.path}")
    formats = {p[1] for p in plan}
    if len(formats) > 1:
        raise InputError(f"source {spec.name!r}: mixed formats {sorted(formats)} under {spec.path}; split it into one source per format")
    return plan


def settle_schema(spec: SourceSpec, plan) -> pa.Schema:
    """One Arrow schema for a source: Parquet footers unified; JSONL/CSV from the first blocks of
    up to 16 files. Raises InputError naming the file when the text column is absent or not text."""
    fmt = plan[0][1]
    sample = plan if fmt == "parquet" else plan[:16]
    schemas = []
    partition_keys: dict[str, None] = {}
    unreadable = []
    for uri, fmt_, comp, rel, _info in sample:
        try:
            schemas.append(ff.sample_schema(uri, fmt_, comp, spec.csv_delimiter))
        except InputError as exc:  # one broken file costs only itself: the reader quarantines it as unreadable_file
            unreadable.append(str(exc))
            continue
        for key in ff.hive_partitions(rel):
            partition_keys[key] = None
    if not schemas:
        raise InputError(f"source {spec.name!r}: no file could be read; first: {unreadable[0]}")
    try:
        schema = ff.unify(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"source {spec.name!r}: files disagree on column types: {exc}") from None
    for key in partition_keys:
        if key not in schema.names:
            schema = schema.append(pa.field(key, pa.string()))
    if not schema.names:  # say what is wrong with the input instead of "column not found"
        empty = all((info.size or 0) == 0 for *_, info in sample)
        what = (
            "no records: every file is empty"
            if empty
            else ("not JSON: no line of the first 4 MB is a JSON object" if fmt == "jsonl" else f"no {fmt} records could be read")
        )
        raise InputError(f"source {spec.name!r}: {what} ({plan[0][0]}{' and others' if len(sample) > 1 else ''})")
    if spec.text_column not in schema.names:
        raise InputError(
            f"source {spec.name!r}: text column {spec.text_column!r} not found in {plan[0][0]} "
            f"(columns: {', '.join(schema.names) or 'none'}); set text_column in the recipe"
        )
    ttype = schema.field(spec.text_column).type
    if not (pa.types.is_string(ttype) or pa.types.is_large_string(ttype)):
        raise InputError(f"source {spec.name!r}: text column {spec.text_column!r} has type {ttype}, expected a string")
    if spec.id_column and spec.id_column != DEFAULT_ID_COLUMN and spec.id_column not in schema.names:
        raise InputError(f"source {spec.name!r}: id column {spec.id_column!r} not found in {plan[0][0]}")
    # Spark has no large_string or null type: narrow them.
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_null(t):
            t = pa.string()
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def check_source(spec: SourceSpec) -> None:
    """Settle the source's schema now (Parquet footers, the first blocks of text files): raises the
    InputError a run would otherwise meet inside its flow (no records, not JSON, no text column,
    mixed formats), so a command can report it in one line before Prefect or Spark start."""
    settle_schema(spec, _plan_files(spec))


SPLIT_ROWS = 50_000  # Parquet rows per read task, so one big file still uses every core


def read_splits(plan, parallelism: int) -> list[tuple[str, str, str, str, int, int]]:
    """One read task per (file, row range): Parquet files are cut at row groups (a huge row group
    into at most ``parallelism`` ranges), other files are read whole (end = -1)."""
    rows: list[tuple[str, str, str, str, int, int]] = []
    for uri, fmt, comp, rel, _info in plan:
        if fmt == "parquet":
            try:
                groups = ff.parquet_row_groups(uri)
            except (OSError, pa.ArrowInvalid):
                groups = None  # unreadable: one task reports it once
            if groups and sum(groups) > SPLIT_ROWS:
                rows.extend((uri, fmt, comp or "", rel, a, b) for a, b in ff.parquet_splits(groups, SPLIT_ROWS, parallelism))
                continue
        rows.append((uri, fmt, comp or "", rel, 0, -1))
    return rows


def read_source_raw(spark, spec: SourceSpec, params: IngestParams):
    """(DataFrame of every record of one source in its own schema plus provenance columns,
    the input files read: source, path, bytes, mtime_ns, format)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    plan = _plan_files(spec)
    schema = settle_schema(spec, plan)
    out_schema = pa.schema(list(schema) + list(ff.PROVENANCE))
    rows = read_splits(plan, task_slots(spark))
    max_line = params.max_line_bytes
    delimiter = spec.csv_delimiter
    env = storage_env() if is_s3(spec.path) else {}

    def read_partition(batches):
        apply_storage_env(env)
        for batch in batches:
            for uri, fmt, comp, rel, start, end in zip(*(batch.column(i).to_pylist() for i in range(6))):
                constants = ff.hive_partitions(rel)
                rows = (start, end) if end >= 0 else None
                for table in ff.read_file(uri, fmt, comp or None, schema, constants, max_line, delimiter, rows):
                    yield from table.cast(out_schema).to_batches()

    files_df = spark.sparkContext.parallelize(rows, max(1, len(rows))).toDF("uri string, fmt string, comp string, rel string, start long, end long")
    raw = files_df.mapInArrow(read_partition, from_arrow_schema(out_schema))
    return raw, input_records(spec, plan)


def input_records(spec: SourceSpec, plan) -> list[dict]:
    """The input files of a source as the manifest records them (source, path, bytes, mtime_ns, format)."""
    return [
        {"source": spec.name, "path": info.uri, "bytes": info.size, "mtime_ns": info.mtime_ns, "format": fmt} for _uri, fmt, _comp, _rel, info in plan
    ]


def canonicalize(raw, spec: SourceSpec, params: IngestParams):
    """One source's raw records in the canonical columns plus ``_reason`` (null for a good
    record) and ``_raw``; :func:`split_staged` turns them into documents and quarantine."""
    from pyspark.sql import functions as F

    source_root = spec.path.rstrip("/")
    passthrough = [c for c in raw.columns if not c.startswith("_") and c not in (spec.text_column, spec.id_column)]
    renamed = [F.col(f"`{c}`").alias(f"input_{c}" if c in RESERVED else c) for c in passthrough]
    text = F.col(f"`{spec.text_column}`").cast("string")
    derived_id = F.substring(F.sha2(F.concat_ws("\u0000", F.lit(spec.name), text), 256), 1, 32)
    given_id = F.col(f"`{spec.id_column}`").cast("string") if spec.id_column else F.lit(None).cast("string")
    rel_file = F.when(F.col("_file") == source_root, F.regexp_extract("_file", r"[^/]+$", 0)).otherwise(
        F.expr(f"substring(_file, {len(source_root) + 2})")
    )
    reason = (
        F.when(F.col("_error").isNotNull(), F.col("_error"))
        .when(text.isNull(), F.lit("missing_text"))
        .when(F.length(text) > params.max_doc_chars, F.lit("too_large"))
        .when(F.lit(bool(spec.id_column)) & given_id.isNull(), F.lit("missing_id"))
    )
    staged = raw.select(
        F.coalesce(given_id, derived_id).alias("id"),
        text.alias("text"),
        F.lit(spec.name).alias("source"),
        F.ceil(F.length(text) / CHARS_PER_TOKEN).cast("long").alias("token_count"),
        rel_file.alias("source_file"),
        F.col("_line").alias("source_line"),
        *renamed,
        reason.alias("_reason"),
        F.col("_raw"),
    )
    return staged


def _reason_code():
    """The quarantine reason of a staged row: ``_reason`` up to its first ": " (the rest is detail)."""
    from pyspark.sql import functions as F

    return F.split_part(F.col("_reason"), F.lit(": "), F.lit(1))


def split_staged(staged):
    """(documents, quarantine) from canonical staged rows: two filters of one frame, so caching
    ``staged`` reads every input file once (twice would cost a second download from S3)."""
    from pyspark.sql import functions as F

    docs = staged.where(F.col("_reason").isNull()).drop("_reason", "_raw")
    quarantine = staged.where(F.col("_reason").isNotNull()).select(
        F.col("source"),
        F.col("source_file"),
        F.col("source_line"),
        _reason_code().alias("reason"),
        F.when(F.col("_reason").contains(": "), F.expr("substring(_reason, instr(_reason, ': ') + 2)")).alias("detail"),
        F.coalesce(F.col("_raw"), F.substring("text", 1, ff.RAW_PREVIEW)).alias("raw"),
    )
    return docs, quarantine


def dedupe_ids(docs, derived_sources: list[str]):
    """Make ids unique across all sources. Derived ids (identical text in one source) get ``-k``
    suffixes in order of appearance; a given id that repeats keeps its first occurrence and the
    others are quarantined as ``duplicate_id``. Returns (documents, quarantine). Only rows whose
    id repeats are shuffled with their text (found by an id-only aggregation first)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    repeated = docs.groupBy("id").count().where(F.col("count") > 1).select("id").persist()
    if repeated.limit(1).count() == 0:  # the usual case: nothing to fix, no second copy of the text
        repeated.unpersist()
        return docs, docs.sparkSession.createDataFrame(
            [], "source string, source_file string, source_line long, reason string, detail string, raw string"
        )
    clean = docs.join(F.broadcast(repeated), "id", "left_anti")
    affected = docs.join(F.broadcast(repeated), "id")
    order = Window.partitionBy("id").orderBy("source", "source_file", "source_line")
    ranked = affected.withColumn("_k", F.row_number().over(order) - 1).withColumn(
        "_id_derived", F.col("source").isin(derived_sources) if derived_sources else F.lit(False)
    )
    ranked = ranked.withColumn(
        "id",
        F.when((F.col("_k") > 0) & F.col("_id_derived"), F.concat_ws("-", "id", F.col("_k").cast("string"))).otherwise(F.col("id")),
    )
    bad = (F.col("_k") > 0) & ~F.col("_id_derived")
    dup = ranked.where(bad).select(
        "source",
        "source_file",
        "source_line",
        F.lit("duplicate_id").alias("reason"),
        F.concat(F.lit("id "), F.col("id"), F.lit(" is already used by an earlier record")).alias("detail"),
        F.substring("text", 1, ff.RAW_PREVIEW).alias("raw"),
    )
    fixed = ranked.where(~bad).select(*clean.columns)
    return clean.unionByName(fixed), dup


def release(*frames) -> None:
    """Unpersist frames, including the staged cache that :func:`ingest`'s documents and
    quarantine are filters of (``frame.unpersist()`` alone would leave it cached)."""
    for frame in frames:
        if frame is None:
            continue
        frame.unpersist()
        owner = getattr(frame, "_tierlake_cache", None)
        if owner is not None:
            owner.unpersist()


# Bytes of staged rows per byte of input file: text files and Parquet are mostly compressed
# text (gzip, zstd: 3-5x on prose), and the cache holds the rows decompressed.
STAGED_BYTES_PER_INPUT_BYTE = 4


def staged_storage_level(input_bytes: int, task_memory: int):
    """The storage level of ingest's staged cache: memory and disk while the input, decompressed,
    fits a quarter of the memory one task may use, else disk only. Spark builds a partition's
    in-memory columnar cache on the heap before it can spill, so a read task of a gigabyte of text
    (a gzip file cannot be split) ran a 2 GB driver out of heap in a 1M-document run at ~4,000
    characters a document; on disk only the same run's ingest passes (docs/benchmarks.md, "1M
    documents at this length on Spark")."""
    from pyspark import StorageLevel

    if input_bytes * STAGED_BYTES_PER_INPUT_BYTE > task_memory // 4:
        return StorageLevel.DISK_ONLY
    return StorageLevel.MEMORY_AND_DISK


def ingest(spark, specs: list[SourceSpec], params: IngestParams):
    """Read every source: (documents, quarantine, input files, StageStats for stage ``ingest``).
    ``documents`` and ``quarantine`` are cached (one cache, released by :func:`release`);
    documents in = read records; out = documents; the rest quarantined."""
    import time

    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    from connectors.accounting import StageStats, count_by

    started = time.time()
    staged_all, inputs = None, []
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"source names must be unique, got {names}")
    resolved = []
    for spec in specs:
        raw, files = read_source_raw(spark, spec, params)
        inputs.extend(files)
        spec = resolve_id_column(spec, raw.columns)
        resolved.append(spec)
        staged = canonicalize(raw, spec, params)
        try:
            staged_all = staged if staged_all is None else staged_all.unionByName(staged, allowMissingColumns=True)
        except AnalysisException as exc:
            raise InputError(f"source {spec.name!r} has a column whose type differs from an earlier source: {str(exc).splitlines()[0]}") from None
    # Read tasks are files (Parquet: row ranges). When there are fewer than cores, spread the
    # documents over every core once, here, so later CPU-bound stages (keys, MinHash) use the
    # whole machine. One cache of the staged rows; documents and quarantine are filters of it,
    # so every file is read once.
    slots = task_slots(spark)
    assert staged_all is not None  # specs is not empty
    if staged_all.rdd.getNumPartitions() < slots:
        staged_all = staged_all.repartition(4 * slots)
    staged_all = staged_all.persist(staged_storage_level(sum(int(f["bytes"]) for f in inputs), task_memory_bytes(spark)))
    docs_all, quarantine_all = split_staged(staged_all)
    docs_all, dup_ids = dedupe_ids(docs_all, [s.name for s in resolved if s.id_column is None])
    quarantine_all = quarantine_all.unionByName(dup_ids)
    cached = []
    if not dup_ids.isEmpty():
        # materialize with cut lineage, so releasing the staged cache cannot invalidate these
        docs_all = docs_all.localCheckpoint()
        quarantine_all = quarantine_all.localCheckpoint()
        cached.append(staged_all)
    else:
        for frame in (docs_all, quarantine_all):  # what release() frees with them
            frame._tierlake_cache = staged_all
    if cached:  # ids were fixed: count the final frames
        agg = docs_all.agg(F.count(F.lit(1)), F.sum("token_count")).first()
        docs_out, tokens_out = int(agg[0]), int(agg[1] or 0)
        quarantined = count_by(quarantine_all, "reason")
        by_source = count_by(docs_all, "source")
    else:  # one pass over the cache: documents per source, tokens and quarantine reasons
        rows = (
            staged_all.groupBy("source", _reason_code().alias("reason"))
            .agg(F.count(F.lit(1)).alias("n"), F.sum("token_count").alias("tokens"))
            .collect()
        )
        by_source, quarantined, tokens_out = {}, {}, 0
        for r in rows:
            if r["reason"] is None:
                by_source[r["source"]] = by_source.get(r["source"], 0) + int(r["n"])
                tokens_out += int(r["tokens"] or 0)
            else:
                quarantined[r["reason"]] = quarantined.get(r["reason"], 0) + int(r["n"])
        by_source, quarantined = dict(sorted(by_source.items())), dict(sorted(quarantined.items()))  # stable manifests
        docs_out = sum(by_source.values())
    stats = StageStats(
        name="ingest",
        docs_in=docs_out + sum(quarantined.values()),
        docs_out=docs_out,
        tokens_in=tokens_out,
        tokens_out=tokens_out,
        quarantined=quarantined,
        seconds=round(time.time() - started, 3),
        details={"files": len(inputs), "by_source": by_source},
    )
    for frame in cached:
        frame.unpersist()
    return docs_all, quarantine_all, inputs, stats
