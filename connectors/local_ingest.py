"""Ingest in one process, without Spark: the canonical documents and quarantine of
:func:`connectors.sources.ingest`, as Arrow tables, for inputs that fit one machine's memory.

Same files, readers (:mod:`connectors.file_formats`), schema settling, canonical columns, id rules
(derived id = first 32 hex digits of SHA-256 of ``source \\0 text``; repeated derived ids get
``-k`` suffixes in (source, file, line) order; a repeated given id is quarantined as
``duplicate_id``), quarantine reasons and stage counts; tests check both paths give the same rows.
Read tasks (files, Parquet row ranges) run on a thread pool: Arrow's readers release the GIL.
Derived ids are one ``hashlib.sha256`` call per document, as the exact-dedup keys are (Arrow
has no SHA-256 kernel; Spark computes it in the JVM); inputs with an id column skip it.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import file_formats as ff
from connectors.accounting import StageStats
from connectors.arrow_rows import filter_rows, take_rows
from connectors.filesystem import InputError
from connectors.sources import (
    CHARS_PER_TOKEN,
    RESERVED,
    IngestParams,
    SourceSpec,
    _plan_files,
    input_records,
    read_splits,
    resolve_id_column,
    settle_schema,
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)


# Peak anonymous memory of a one-process curate run per byte of input text, as this module
# estimates the text (below): 15.2 GB at the tier stage for an estimated 3.75 GiB on the 1.1M-document,
# 4,000-character lake of bench/pipeline.py (2026-12-07; stage outputs memory-mapped from their
# checkpoints, docs/engine.md "Memory of the one-process engine"); the expansion assumed for a
# compressed JSONL/CSV file (Parquet footers give their uncompressed sizes exactly).
PEAK_PER_TEXT_BYTE = 4
COMPRESSED_TEXT_RATIO = 5


def uncompressed_bytes(spec: SourceSpec) -> int:
    """About how many bytes a source's records take once read (Parquet: the footers' uncompressed
    column sizes; compressed text files: 5x their size; others: their size)."""
    total = 0
    for uri, fmt, comp, _rel, info in _plan_files(spec):
        if fmt == "parquet":
            try:
                meta = ff.parquet_metadata(uri)
                total += sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
                continue
            except (OSError, pa.ArrowInvalid):
                pass  # unreadable: the reader quarantines it; count its size
        total += info.size * (COMPRESSED_TEXT_RATIO if comp else 1)
    return total


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits_in_memory(specs: list[SourceSpec]) -> None:
    """Refuse, with a clear message, an input the local engine would run out of memory on."""
    need = PEAK_PER_TEXT_BYTE * sum(uncompressed_bytes(s) for s in specs)
    have = available_memory()
    if have is not None and need > have:
        raise InputError(
            f"the local engine needs about {need / 2**30:.1f} GiB of memory for {', '.join(s.path for s in specs)} "
            f"and {have / 2**30:.1f} GiB are available; run it with --engine spark (or on a larger machine)"
        )


def read_source_table(spec: SourceSpec, params: IngestParams, threads: int) -> tuple[pa.Table, list[dict]]:
    """(every record of one source in its own schema plus provenance columns, the input files)."""
    plan = _plan_files(spec)
    schema = settle_schema(spec, plan)
    out_schema = pa.schema(list(schema) + list(ff.PROVENANCE))

    def read_split(split):
        uri, fmt, comp, rel, start, end = split
        rows = (start, end) if end >= 0 else None
        tables = [
            t.cast(out_schema)
            for t in ff.read_file(uri, fmt, comp or None, schema, ff.hive_partitions(rel), params.max_line_bytes, spec.csv_delimiter, rows)
        ]
        return pa.concat_tables(tables) if tables else out_schema.empty_table()

    with ThreadPoolExecutor(max(1, threads)) as pool:
        # parallelism 1: a big Parquet row group is read once, not decoded whole by each of several
        # tasks (Spark's split of one group pays off in row conversion; here decoding is the cost)
        parts = list(pool.map(read_split, read_splits(plan, 1)))  # in plan order: deterministic
    return pa.concat_tables(parts), input_records(spec, plan)


def derived_ids(source: str, text: pa.Array) -> pa.Array:
    """Spark's ``substring(sha2(concat_ws('\\0', source, text), 256), 1, 32)`` (a null text is skipped
    by concat_ws, leaving the source name alone)."""
    prefix = source.encode() + b"\0"
    return pa.array(
        [
            hashlib.sha256(prefix + t).hexdigest()[:32] if t is not None else hashlib.sha256(source.encode()).hexdigest()[:32]
            for t in text.cast(pa.binary()).to_pylist()
        ],
        pa.string(),
    )


def canonical_table(raw: pa.Table, spec: SourceSpec, params: IngestParams) -> pa.Table:
    """:func:`connectors.sources.canonicalize` on an Arrow table: canonical columns, passed-through
    input columns, ``_reason`` (null for a good record) and ``_raw``."""
    root = spec.path.rstrip("/")
    # chunked columns throughout: combining the chunks would copy every text once more
    text = raw.column(spec.text_column).cast(pa.string())
    length = pc.utf8_length(text)
    given = raw.column(spec.id_column).cast(pa.string()) if spec.id_column else None
    if given is None:
        ids = derived_ids(spec.name, text)
    else:  # a null given id falls back to the derived one (the row is quarantined as missing_id)
        ids = pc.coalesce(given, derived_ids(spec.name, text)) if given.null_count else given
    files = raw.column("_file")
    rel_file = pc.if_else(pc.equal(files, root), pc.replace_substring_regex(files, r"^.*/", ""), pc.utf8_slice_codeunits(files, len(root) + 1))
    error = raw.column("_error")
    reason = pc.case_when(
        pc.make_struct(
            pc.is_valid(error),
            pc.is_null(text),
            pc.fill_null(pc.greater(length, params.max_doc_chars), False),
            pa.repeat(pa.scalar(False), len(text)) if given is None else pc.is_null(given),
        ),
        error,
        pa.scalar("missing_text"),
        pa.scalar("too_large"),
        pa.scalar("missing_id"),
    )
    tokens = pc.cast(pc.ceil(pc.divide(pc.cast(length, pa.float64()), float(CHARS_PER_TOKEN))), pa.int64())
    columns = {
        "id": ids,
        "text": text,
        "source": pa.repeat(pa.scalar(spec.name, pa.string()), len(text)),
        "token_count": tokens,
        "source_file": rel_file,
        "source_line": raw.column("_line"),
    }
    for name in raw.column_names:
        if name.startswith("_") or name in (spec.text_column, spec.id_column):
            continue
        columns[f"input_{name}" if name in RESERVED else name] = raw.column(name)
    columns["_reason"] = reason
    columns["_raw"] = raw.column("_raw")
    return pa.table(columns)


def split_staged_table(staged: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(documents, quarantine) as :func:`connectors.sources.split_staged`."""
    good = pc.is_null(staged.column("_reason"))
    if staged.column("_reason").null_count == staged.num_rows:  # the usual case: no copy of the texts
        return staged.drop_columns(["_reason", "_raw"]), QUARANTINE_SCHEMA.empty_table()
    docs = filter_rows(staged.drop_columns(["_reason", "_raw"]), good)  # only the batches with a bad record are copied
    bad = staged.filter(pc.invert(good))
    reason = bad.column("_reason")
    code = pc.replace_substring_regex(reason, r"(?s): .*", "", max_replacements=1)  # up to the first ": "
    detail = pc.if_else(
        pc.match_substring(reason, ": "), pc.replace_substring_regex(reason, r"(?s)^.*?: ", "", max_replacements=1), pa.scalar(None, pa.string())
    )
    raw = pc.coalesce(bad.column("_raw"), pc.utf8_slice_codeunits(bad.column("text"), 0, ff.RAW_PREVIEW))
    quarantine = pa.table([bad.column("source"), bad.column("source_file"), bad.column("source_line"), code, detail, raw], schema=QUARANTINE_SCHEMA)
    return docs, quarantine


def dedupe_ids_table(docs: pa.Table, derived_sources: list[str]) -> tuple[pa.Table, pa.Table]:
    """:func:`connectors.sources.dedupe_ids` on an Arrow table: (documents, duplicate_id quarantine)."""
    counts = pc.value_counts(docs.column("id").combine_chunks())
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return docs, QUARANTINE_SCHEMA.empty_table()
    hit = pc.is_in(docs.column("id"), value_set=repeated).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(hit)
    affected = take_rows(docs, rows)
    order = pc.sort_indices(
        affected, sort_keys=[("id", "ascending"), ("source", "ascending"), ("source_file", "ascending"), ("source_line", "ascending")]
    ).to_numpy()
    ids = affected.column("id").take(pa.array(order)).to_numpy(zero_copy_only=False)
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    starts = np.flatnonzero(first)
    k = np.arange(len(ids)) - starts[np.cumsum(first) - 1]
    derived = pc.is_in(affected.column("source").take(pa.array(order)), value_set=pa.array(derived_sources, pa.string())).to_numpy(
        zero_copy_only=False
    )
    new_ids = np.where((k > 0) & derived, np.char.add(np.char.add(ids.astype(str), "-"), k.astype(str)), ids.astype(str))
    bad = (k > 0) & ~derived
    sorted_rows = affected.take(pa.array(order))
    fixed = sorted_rows.set_column(sorted_rows.column_names.index("id"), "id", pa.array(new_ids.tolist(), pa.string()))
    dups = sorted_rows.filter(pa.array(bad))
    dup_q = pa.table(
        [
            dups.column("source"),
            dups.column("source_file"),
            dups.column("source_line"),
            pa.array(["duplicate_id"] * dups.num_rows, pa.string()),
            pa.array([f"id {i} is already used by an earlier record" for i in dups.column("id").to_pylist()], pa.string()),
            pc.utf8_slice_codeunits(dups.column("text"), 0, ff.RAW_PREVIEW),
        ],
        schema=QUARANTINE_SCHEMA,
    )
    clean = filter_rows(docs, ~hit)  # only the batches holding a repeated id are copied
    return pa.concat_tables([clean, fixed.filter(pa.array(~bad))]), dup_q


def ingest_local(specs: list[SourceSpec], params: IngestParams, threads: int):
    """(documents, quarantine, input files, StageStats ``ingest``) as :func:`connectors.sources.ingest`."""
    started = time.time()
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"source names must be unique, got {names}")
    staged, inputs = [], []
    resolved = []
    for spec in specs:
        raw, files = read_source_table(spec, params, threads)
        inputs.extend(files)
        spec = resolve_id_column(spec, raw.column_names)
        resolved.append(spec)
        staged.append(canonical_table(raw, spec, params))
    try:
        staged_all = pa.concat_tables(staged, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"sources disagree on a column's type: {exc}") from None
    docs, quarantine = split_staged_table(staged_all)
    docs, dup_ids = dedupe_ids_table(docs, [s.name for s in resolved if s.id_column is None])
    quarantine = pa.concat_tables([quarantine, dup_ids])
    quarantined = dict(sorted(zip(*(c.to_pylist() for c in pc.value_counts(quarantine.column("reason")).flatten()))))
    by_source = dict(sorted(zip(*(c.to_pylist() for c in pc.value_counts(docs.column("source")).flatten()))))
    tokens = int(pc.sum(docs.column("token_count")).as_py() or 0)
    stats = StageStats(
        name="ingest",
        docs_in=docs.num_rows + quarantine.num_rows,
        docs_out=docs.num_rows,
        tokens_in=tokens,
        tokens_out=tokens,
        quarantined=quarantined,
        seconds=round(time.time() - started, 3),
        details={"files": len(inputs), "by_source": by_source},
    )
    return docs, quarantine, inputs, stats
