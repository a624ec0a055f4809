"""Format detection and per-file readers that yield Arrow batches (run inside Spark tasks).

Each reader yields record batches in the *target schema* plus four provenance columns:
``_file`` (URI), ``_line`` (1-based line for JSONL, data row for CSV, row number for Parquet), ``_error``
(null for a good record, else ``"<reason>: <detail>"``; reasons: malformed_json, invalid_utf8,
line_too_large, bad_csv_row, unreadable_file, truncated, too_deep, invalid_unicode,
type_mismatch) and ``_raw`` (the first bytes of a
bad record, for the quarantine report). Nothing is dropped: a malformed line, a line with bad
UTF-8, a row of the wrong width or an unreadable file all come out as a row with ``_error`` set.

JSONL is parsed by pyarrow's C++ JSON reader one block (16 MiB) at a time; only a block that
fails is re-parsed line by line to find and quarantine the bad lines, so the common path has no
per-line Python. Lines that disagree on a field's type do not stop a file: the schema is the
unified schema of the sampled lines (scalar conflicts become string), and in a failing block a
line Arrow refuses is converted value by value where that is faithful (a number in a string
column becomes its JSON text) and quarantined only where it is not. A compressed file cut off
before its end keeps what precedes the cut and adds one ``truncated`` row.
"""

from __future__ import annotations

import io
import json
import posixpath
import sys
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from connectors.filesystem import InputError, resolve

BLOCK_BYTES = 16 << 20
RAW_PREVIEW = 300
PROVENANCE = pa.schema([("_file", pa.string()), ("_line", pa.int64()), ("_error", pa.string()), ("_raw", pa.string())])

_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
}


def split_suffix(name: str) -> tuple[str | None, str | None]:
    """(format, compression) from a file name such as ``x.jsonl.zst``; (None, None) if unknown."""
    base, ext = posixpath.splitext(name.lower())
    compression = _COMPRESSION.get(ext)
    if compression:
        base, ext = posixpath.splitext(base)
    return _FORMATS.get(ext), compression


def hive_partitions(relative_path: str) -> dict[str, str]:
    """``year=2024/lang=en/part.parquet`` -> {"year": "2024", "lang": "en"}."""
    parts = {}
    for seg in relative_path.split("/")[:-1]:
        if "=" in seg:
            key, value = seg.split("=", 1)
            parts[key] = value
    return parts


def open_stream(uri: str, compression: str | None):
    fs, path = resolve(uri)
    return fs.open_input_stream(path, compression=compression)


# ---------------------------------------------------------------- schema inference (driver)


def _json_type(t: pa.DataType) -> pa.DataType:
    """JSON has no timestamp or null type: pyarrow's inferred timestamps stay strings (as written),
    all-null columns become strings so later values fit. Applied inside structs and lists too."""
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _json_type(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_json_type(t.value_type))
    return t


def _null_to_string(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _json_type(f.type)) for f in schema])


def unify(schemas: list[pa.Schema], nested_as_string: bool = False) -> pa.Schema:
    """Union of columns in first-seen order; numeric types widen, other scalar conflicts become
    string (every JSON/CSV scalar has a faithful string form). Nested conflicts raise, or with
    ``nested_as_string`` become string too (the value's JSON text; for lines of one file)."""
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    merged: dict[str, pa.DataType] = {}
    for schema in schemas:
        for f in schema:
            if f.name not in merged:
                merged[f.name] = f.type
                continue
            old = merged[f.name]
            if old == f.type:
                continue
            try:
                merged[f.name] = (
                    pa.unify_schemas([pa.schema([pa.field("x", old)]), pa.schema([pa.field("x", f.type)])], promote_options="permissive")
                    .field("x")
                    .type
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                nested = any(pa.types.is_nested(t) for t in (old, f.type))
                if nested and not nested_as_string:
                    raise pa.ArrowInvalid(f"column {f.name!r} is {old} in one file and {f.type} in another")
                merged[f.name] = pa.string()
    return pa.schema([pa.field(n, t) for n, t in merged.items()])


def sample_schema(uri: str, fmt: str, compression: str | None, csv_delimiter: str = ",") -> pa.Schema:
    """Schema of one file from its footer (Parquet) or its first block (JSONL, CSV)."""
    try:
        if fmt == "parquet":
            fs, path = resolve(uri)
            with fs.open_input_file(path) as fh:
                return pq.read_schema(fh)
        try:
            with open_stream(uri, compression) as stream:
                head = stream.read(4 << 20)
        except OSError as exc:
            if not (compression and _is_truncation(exc)):
                raise
            head = _salvage(uri, compression, 0, 4 << 20)  # a cut file: its schema from what precedes the cut
        if fmt == "jsonl":
            cut = head.rfind(b"\n")
            head = head if cut < 0 else head[: cut + 1]
            good = [ln for ln in head.splitlines() if ln.strip() and _json_object_ok(ln)]
            if not good:
                return pa.schema([])
            try:
                table = pajson.read_json(io.BytesIO(b"\n".join(good)))
                return _null_to_string(table.schema)
            except pa.ArrowInvalid:  # lines disagree on a field's type: unify the lines' own schemas
                return _null_to_string(_unify_lines(good))
        table = pacsv.read_csv(
            io.BytesIO(csv_whole_records(head)),
            parse_options=pacsv.ParseOptions(delimiter=csv_delimiter, invalid_row_handler=lambda r: "skip", newlines_in_values=True),
        )
        # a column typed binary holds invalid UTF-8 in some row: it is text, and those rows are
        # quarantined by the reader (invalid_utf8), not the whole input refused
        return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_binary(f.type) else f for f in _null_to_string(table.schema)])
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read the schema of {uri}: {exc}") from None


def csv_whole_records(head: bytes) -> bytes:
    """The leading whole records of a CSV block: up to the last line break outside a quoted value
    (RFC 4180: a quoted value may hold line breaks, and ``""`` inside it keeps the quote count
    even), so a sample cut inside a multi-line value does not end in half a record."""
    data = np.frombuffer(head, dtype=np.uint8)
    if not len(data):
        return head
    outside = (np.cumsum(data == ord('"')) % 2) == 0
    ends = np.flatnonzero((data == ord("\n")) & outside)
    return head[: int(ends[-1]) + 1] if len(ends) else head


def _unify_lines(lines: list[bytes]) -> pa.Schema:
    """One schema for JSON lines whose fields change type from line to line: each line's own
    schema, unified (:func:`unify`; numbers widen, any other conflict becomes string)."""
    schemas = []
    for ln in lines:
        try:
            schemas.append(pajson.read_json(io.BytesIO(ln)).schema)
        except pa.ArrowInvalid:
            continue
    return unify(schemas, nested_as_string=True)


def _coerce(value, t: pa.DataType):
    """``value`` (parsed JSON) as a value of ``t``; ValueError when it cannot be one faithfully."""
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if isinstance(value, str):
            value.encode("utf-8")  # a lone surrogate escape (\\ud800) raises UnicodeEncodeError here
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if isinstance(value, (dict, list, bool)) else str(value)
    if pa.types.is_boolean(t):
        if isinstance(value, bool):
            return value
    elif pa.types.is_integer(t):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif pa.types.is_floating(t):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    else:
        return value  # nested: Arrow checks it when the row is built
    raise ValueError(f"{type(value).__name__} where the schema has {t}")


def _coerced_row(parsed: dict, schema: pa.Schema) -> pa.Table:
    """One parsed JSON object as a one-row table of ``schema``, scalars converted where faithful."""
    row = {}
    for f in schema:
        try:
            row[f.name] = _coerce(parsed.get(f.name), f.type)
        except UnicodeEncodeError:
            raise
        except ValueError as exc:
            raise ValueError(f"field {f.name!r}: {exc}") from None
    return pa.Table.from_pylist([row], schema=schema)


def _json_object_ok(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


# ---------------------------------------------------------------- helpers for batches


def _conform(table: pa.Table, schema: pa.Schema, constants: dict[str, str]) -> pa.Table:
    """Select/cast ``table`` into ``schema``; missing columns become null, partition keys constant."""
    columns = []
    n = table.num_rows
    for field in schema:
        if field.name in constants and field.name not in table.column_names:
            columns.append(pa.array([constants[field.name]] * n, type=field.type))
        elif field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type, safe=False))
        else:
            columns.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _with_provenance(table: pa.Table, uri: str, lines, error=None, raw=None) -> pa.Table:
    n = table.num_rows
    prov = [
        pa.repeat(pa.scalar(uri, pa.string()), n),
        pa.array(lines, pa.int64()),
        pa.array(error, pa.string()) if error is not None else pa.nulls(n, pa.string()),
        pa.array(raw, pa.string()) if raw is not None else pa.nulls(n, pa.string()),
    ]
    for field, arr in zip(PROVENANCE, prov):
        table = table.append_column(field, arr)
    return table


def quarantine_rows(schema: pa.Schema, uri: str, lines: list, errors: list[str], raws: list) -> pa.Table:
    empty = pa.Table.from_arrays([pa.nulls(len(lines), f.type) for f in schema], schema=schema)
    return _with_provenance(empty, uri, lines, errors, raws)


def _preview(raw: bytes) -> str:
    return raw[:RAW_PREVIEW].decode("utf-8", errors="replace")


# ---------------------------------------------------------------- JSONL


_WHITESPACE = np.zeros(256, np.bool_)
_WHITESPACE[list(b" \t\r\n")] = True


def _line_bounds(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start/end offsets of each line in ``block`` and whether it holds non-whitespace (vectorized:
    a line's first byte decides, and only lines that open with whitespace are looked through)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = np.append(newlines, len(buf)) if (len(buf) and buf[-1] != 10) else newlines
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.array([], dtype=np.int64)
    nonempty = ends > starts
    has_content = nonempty.copy()
    has_content[nonempty] = ~_WHITESPACE[buf[starts[nonempty]]]
    for i in np.flatnonzero(nonempty & ~has_content):
        has_content[i] = bool(block[starts[i] : ends[i]].strip(b" \t\r\n"))
    return starts, ends, has_content


def _parse_lines_one_by_one(block, starts, ends, keep, schema, opts, uri, first_line):
    """Slow path for a block that failed as a whole: isolate the bad lines."""
    good_tables, good_lines, bad_lines, bad_errors, bad_raw = [], [], [], [], []
    for idx in np.flatnonzero(keep):
        line = block[starts[idx] : ends[idx]]
        lineno = first_line + int(idx)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines.append(lineno)
            bad_errors.append(f"invalid_utf8: at byte {exc.start} of the line")
            bad_raw.append(_preview(line))
            continue
        try:
            parsed = json.loads(line)
            if not isinstance(parsed, dict):
                raise ValueError(f"expected a JSON object, got {type(parsed).__name__}")
            try:
                table = pajson.read_json(io.BytesIO(line), parse_options=opts)
            except pa.ArrowInvalid as exc:  # a field's type differs from the schema's: convert where faithful
                try:
                    table = _coerced_row(parsed, schema)
                except UnicodeEncodeError:
                    bad_lines.append(lineno)
                    bad_errors.append("invalid_unicode: a string holds an unpaired surrogate escape (\\ud800-\\udfff)")
                    bad_raw.append(_preview(line))
                    continue
                except (ValueError, pa.ArrowInvalid, pa.ArrowTypeError) as inner:
                    bad_lines.append(lineno)
                    bad_errors.append(f"type_mismatch: {str(inner).splitlines()[0][:200]} ({str(exc).splitlines()[0][:120]})")
                    bad_raw.append(_preview(line))
                    continue
        except RecursionError:  # nesting deeper than Python's parser goes: its own reason, never a traceback
            bad_lines.append(lineno)
            bad_errors.append(f"too_deep: JSON nested deeper than {sys.getrecursionlimit()} levels")
            bad_raw.append(_preview(line))
            continue
        except (ValueError, pa.ArrowInvalid) as exc:
            bad_lines.append(lineno)
            bad_errors.append(f"malformed_json: {str(exc).splitlines()[0][:200]}")
            bad_raw.append(_preview(line))
            continue
        good_tables.append(table)
        good_lines.append(lineno)
    return good_tables, good_lines, (bad_lines, bad_errors, bad_raw)


SALVAGE_BYTES = 64 << 10


def _is_truncation(exc: OSError) -> bool:
    """Arrow's message for a compressed stream cut off before its end marker."""
    return "truncated" in str(exc).lower()


def _salvage(uri: str, compression: str | None, skip: int, limit: int | None = None) -> bytes:
    """The decompressed bytes after the first ``skip`` (at most ``limit`` of them) that a truncated
    stream still yields, read in small pieces so that only the last piece before the cut is lost."""
    out, seen, kept = [], 0, 0
    with open_stream(uri, compression) as stream:
        while True:
            try:
                piece = stream.read(SALVAGE_BYTES)
            except OSError:
                break
            if not piece:
                break
            if seen + len(piece) > skip:
                out.append(piece[max(0, skip - seen) :])
                kept += len(out[-1])
            seen += len(piece)
            if limit is not None and kept >= limit:
                break
    return b"".join(out)[:limit]


def read_jsonl(uri: str, compression: str | None, schema: pa.Schema, constants: dict, max_line_bytes: int) -> Iterator[pa.Table]:
    """Records of one JSONL file, bad lines quarantined. A compressed file cut off before its end
    (an interrupted upload) keeps every record decoded before the cut; the cut itself is one
    quarantine row ``truncated`` at the first line lost, so the loss is on record."""
    opts = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    line_no = 1  # line number of the first line of the current block
    carry = b""
    consumed = 0  # decompressed bytes read so far
    truncated = False
    with open_stream(uri, compression) as stream:
        while True:
            if truncated:
                chunk = b""
            else:
                try:
                    chunk = stream.read(BLOCK_BYTES)
                except OSError as exc:
                    if not (compression and _is_truncation(exc)):
                        raise
                    chunk, truncated = _salvage(uri, compression, consumed), True
            consumed += len(chunk)
            data = carry + chunk
            if not data:
                break
            if chunk:
                cut = data.rfind(b"\n")
                if cut < 0:
                    if len(data) > max_line_bytes:  # one enormous line: quarantine it, skip to its end
                        yield quarantine_rows(schema, uri, [line_no], [f"line_too_large: longer than {max_line_bytes} bytes"], [_preview(data)])
                        carry = b""
                        while True:
                            more = stream.read(BLOCK_BYTES)
                            if not more:
                                break
                            pos = more.find(b"\n")
                            if pos >= 0:
                                carry = more[pos + 1 :]
                                break
                        line_no += 1
                        continue
                    carry = data
                    continue
                block, carry = data[: cut + 1], data[cut + 1 :]
            elif truncated:  # the partial line at the cut is part of what was lost
                block, carry = b"", b""
            else:
                block, carry = data, b""
            if block:
                starts, ends, keep = _line_bounds(block)
                yield from _parse_block(block, starts, ends, keep, schema, opts, uri, line_no, constants, max_line_bytes)
                line_no += len(starts)
            if not chunk:
                break
    if truncated:
        yield quarantine_rows(
            schema, uri, [line_no], [f"truncated: the {compression} stream ends before its end marker; lines from {line_no} on are lost"], [None]
        )


def _read_json_block(block: bytes, rows: int, opts) -> pa.Table:
    """``block`` parsed in one go; ArrowInvalid unless it is valid UTF-8 and gives ``rows`` rows."""
    # pyarrow's JSON reader passes invalid UTF-8 inside strings through: check the block first
    pa.array([block], pa.binary()).cast(pa.string())
    table = pajson.read_json(io.BytesIO(block), read_options=pajson.ReadOptions(block_size=max(len(block), 1 << 20)), parse_options=opts)
    if table.num_rows != rows:
        raise pa.ArrowInvalid("row count differs from non-blank line count")
    return table


ONE_BY_ONE_LINES = 16  # a failing span of at most this many lines is parsed line by line


def _parse_failed_block(block, starts, ends, keep, schema, opts, uri, first_line):
    """(good tables, their line numbers, (bad lines, errors, previews)) of a block that failed as a
    whole: its kept lines are halved until a half parses in one go, and spans of at most
    :data:`ONE_BY_ONE_LINES` lines that still fail are parsed line by line, so a few bad lines
    cost a few small parses, not one parse per line of the block. Good rows stay in line order."""
    kept = np.flatnonzero(keep)
    good_tables, good_lines = [], []
    bad_lines, bad_errors, bad_raw = [], [], []
    spans = [(0, len(kept))]
    while spans:  # a stack taken lowest span first, so every list comes out in line order
        lo, hi = spans.pop()
        idx = kept[lo:hi]
        try:
            good_tables.append(_read_json_block(b"\n".join(block[starts[i] : ends[i]] for i in idx), len(idx), opts))
            good_lines += (first_line + idx).tolist()
            continue
        except pa.ArrowInvalid:
            pass
        if hi - lo > ONE_BY_ONE_LINES:
            mid = (lo + hi) // 2
            spans += [(mid, hi), (lo, mid)]
            continue
        one = np.zeros(len(keep), np.bool_)
        one[idx] = True
        tables, lines, (bl, be, br) = _parse_lines_one_by_one(block, starts, ends, one, schema, opts, uri, first_line)
        good_tables += tables
        good_lines += lines
        bad_lines += bl
        bad_errors += be
        bad_raw += br
    return good_tables, good_lines, (bad_lines, bad_errors, bad_raw)


def _parse_block(block, starts, ends, keep, schema, opts, uri, first_line, constants, max_line_bytes):
    lines = (first_line + np.flatnonzero(keep)).tolist()
    too_long = keep & ((ends - starts) > max_line_bytes)
    if too_long.any():
        idx = np.flatnonzero(too_long)
        yield quarantine_rows(
            schema,
            uri,
            (first_line + idx).tolist(),
            [f"line_too_large: longer than {max_line_bytes} bytes"] * len(idx),
            [_preview(block[starts[i] : starts[i] + RAW_PREVIEW]) for i in idx],
        )
        keep = keep & ~too_long
        lines = (first_line + np.flatnonzero(keep)).tolist()
    if not keep.any():
        return
    if not too_long.any():
        try:
            table = _read_json_block(block, len(lines), opts)
            yield _with_provenance(_conform(table, schema, constants), uri, lines)
            return
        except pa.ArrowInvalid:
            pass
    good_tables, good_lines, (bad_lines, bad_errors, bad_raw) = _parse_failed_block(block, starts, ends, keep, schema, opts, uri, first_line)
    if good_tables:
        table = pa.concat_tables([_conform(t, schema, constants) for t in good_tables])
        yield _with_provenance(table, uri, good_lines)
    if bad_lines:
        yield quarantine_rows(schema, uri, bad_lines, bad_errors, bad_raw)


# ---------------------------------------------------------------- Parquet and CSV


def parquet_metadata(uri: str) -> pq.FileMetaData:
    """A Parquet file's footer (nothing else is read)."""
    fs, path = resolve(uri)
    with fs.open_input_file(path) as fh:
        return pq.ParquetFile(fh).metadata


def parquet_row_groups(uri: str) -> list[int]:
    """Rows of each row group of a Parquet file (its footer only)."""
    meta = parquet_metadata(uri)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def parquet_splits(group_rows: list[int], target_rows: int, max_pieces_per_group: int) -> list[tuple[int, int]]:
    """[start, end) row ranges covering a file: consecutive row groups packed up to
    ``target_rows``; a row group much larger than that cut into at most ``max_pieces_per_group``
    ranges (each task decodes the whole group but converts only its range, so cuts are capped)."""
    splits: list[tuple[int, int]] = []
    start = pos = 0
    for rows in group_rows:
        if rows >= 2 * target_rows and max_pieces_per_group > 1:
            if pos > start:
                splits.append((start, pos))
            pieces = min(max_pieces_per_group, -(-rows // target_rows))
            cuts = [pos + rows * k // pieces for k in range(pieces + 1)]
            splits.extend(zip(cuts[:-1], cuts[1:]))
            pos += rows
            start = pos
            continue
        if pos > start and pos - start + rows > target_rows:
            splits.append((start, pos))
            start = pos
        pos += rows
    if pos > start or not splits:
        splits.append((start, pos))
    return splits


def read_parquet(
    uri: str, schema: pa.Schema, constants: dict, batch_rows: int = 8192, row_start: int = 0, row_end: int | None = None
) -> Iterator[pa.Table]:
    """Rows ``[row_start, row_end)`` of a Parquet file (all by default); row groups outside the
    range are not read."""
    fs, path = resolve(uri)
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        columns = [n for n in schema.names if n in pf.schema_arrow.names]
        end = pf.metadata.num_rows if row_end is None else row_end
        group_start = 0
        for g in range(pf.metadata.num_row_groups):
            group_end = group_start + pf.metadata.row_group(g).num_rows
            if group_end <= row_start or group_start >= end:
                group_start = group_end
                continue
            row = group_start
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns, row_groups=[g]):
                lo, hi = max(row, row_start), min(row + batch.num_rows, end)
                if hi > lo:
                    table = _conform(pa.Table.from_batches([batch.slice(lo - row, hi - lo)]), schema, constants)
                    yield _with_provenance(table, uri, np.arange(lo + 1, hi + 1))
                row += batch.num_rows
                if row >= end:
                    break
            group_start = group_end


def _utf8_columns(table: pa.Table, columns: list[str]) -> tuple[pa.Table, np.ndarray | None]:
    """``table`` with its binary ``columns`` as strings; rows with invalid UTF-8 in any of them are
    dropped and flagged (a mask over the input rows, None when every row is valid)."""
    try:
        return _cast_columns(table, columns), None
    except pa.ArrowInvalid:
        pass
    invalid = np.zeros(table.num_rows, dtype=bool)
    for name in (c for c in columns if c in table.column_names):  # the rare failing batch: find the rows
        for i, value in enumerate(table.column(name).to_pylist()):
            if value is not None and not invalid[i]:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    invalid[i] = True
    return _cast_columns(table.filter(pa.array(~invalid)), columns), invalid


def _cast_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    for name in (c for c in columns if c in table.column_names):
        table = table.set_column(table.column_names.index(name), name, table.column(name).cast(pa.string()))
    return table


def read_csv(uri: str, compression: str | None, schema: pa.Schema, constants: dict, delimiter: str) -> Iterator[pa.Table]:
    """Rows of one CSV file; ``_line`` is the data-row number (the header is row 0; a row whose
    values hold newlines is one row). Arrow's reader parses the file; when it refuses a row (the
    wrong number of fields), it cannot say which row that was, so the rest of the file from the
    first block with a refused row is read by :func:`_csv_rows_from`, which numbers every row."""
    refused: list[int] = []
    bad: list[tuple[int, str, str]] = []

    def on_invalid(_row):
        refused.append(1)
        return "skip"

    # string columns are read as bytes and checked for UTF-8 per batch, so one row of invalid
    # UTF-8 costs only itself (pyarrow would otherwise fail the whole file)
    text_columns = [f.name for f in schema if f.name not in constants and pa.types.is_string(f.type)]
    types = {f.name: (pa.binary() if f.name in text_columns else f.type) for f in schema if f.name not in constants}
    convert = pacsv.ConvertOptions(column_types=types)
    row = 1
    with open_stream(uri, compression) as stream:
        reader = pacsv.open_csv(
            stream,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=convert,
        )
        for batch in reader:
            if refused:  # a block's rows are refused while it is parsed, before its batch comes: every batch before was whole
                break
            yield _csv_table(pa.Table.from_batches([batch]), np.arange(row, row + batch.num_rows), uri, schema, constants, text_columns, bad)
            row += batch.num_rows
    if refused:
        for table, lines in _csv_rows_from(uri, compression, delimiter, convert, first_row=row, bad=bad):
            yield _csv_table(table, lines, uri, schema, constants, text_columns, bad)
    if bad:
        yield quarantine_rows(schema, uri, [b[0] for b in bad], [b[1] for b in bad], [b[2] for b in bad])


def _csv_table(table: pa.Table, lines: np.ndarray, uri: str, schema: pa.Schema, constants: dict, text_columns: list[str], bad: list) -> pa.Table:
    """One parsed CSV batch in the target schema; rows with invalid UTF-8 go to ``bad``."""
    checked, invalid = _utf8_columns(table, text_columns)
    if invalid is not None:
        bad_rows = table.filter(pa.array(invalid))
        raws = [" | ".join(_preview(v or b"") for v in r.values()) for r in bad_rows.select(text_columns).to_pylist()]
        bad.extend((int(n), "invalid_utf8: a value is not valid UTF-8", raw) for n, raw in zip(lines[invalid], raws))
        lines = lines[~invalid]
    return _with_provenance(_conform(checked, schema, constants), uri, lines.tolist())


def _csv_rows_from(
    uri: str, compression: str | None, delimiter: str, convert, first_row: int, bad: list, chunk: int = 10_000
) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The slow path for a file with rows of the wrong width, from data row ``first_row`` on:
    Python's csv module splits the rows (and numbers them, with the file line each starts on);
    rows of the header's width are written back as CSV and parsed by Arrow with the same
    conversion in chunks, so the values are typed exactly as on the fast path; the others go to
    ``bad``. Per-row Python, but only for files that have such a row, and only after the first."""
    import csv

    csv.field_size_limit(sys.maxsize)
    with open_stream(uri, compression) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, [])
        row, file_line = 0, reader.line_num
        good: list[list[str]] = []
        lines: list[int] = []

        def flush() -> tuple[pa.Table, np.ndarray]:
            out = io.StringIO(newline="")
            csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows([header, *good])
            data = out.getvalue().encode("utf-8", errors="surrogateescape")
            table = pacsv.read_csv(
                io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True), convert_options=convert
            )
            result = (table, np.asarray(lines, np.int64))
            good.clear()
            lines.clear()
            return result

        while True:
            start_line = file_line + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a NUL byte: this row only
                row += 1
                file_line = reader.line_num
                if row >= first_row:
                    bad.append((row, f"bad_csv_row: {exc} (file line {start_line})", ""))
                continue
            file_line = reader.line_num
            if not fields:  # a blank line is not a row (as in Arrow)
                continue
            row += 1
            if row < first_row:
                continue
            if len(fields) != len(header):
                raw = delimiter.join(fields)[:RAW_PREVIEW].encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
                bad.append((row, f"bad_csv_row: {len(fields)} fields, header has {len(header)} (file line {start_line})", raw))
                continue
            good.append(fields)
            lines.append(row)
            if len(good) >= chunk:
                yield flush()
        if good:
            yield flush()


def read_file(
    uri: str,
    fmt: str,
    compression: str | None,
    schema: pa.Schema,
    constants: dict,
    max_line_bytes: int,
    csv_delimiter: str = ",",
    rows: tuple[int, int] | None = None,
) -> Iterator[pa.Table]:
    """Yield tables (target schema + provenance) for one file (Parquet: only ``rows`` = [start,
    end) when given); an unreadable file yields one quarantine row naming the error instead of
    failing the job."""
    try:
        if fmt == "jsonl":
            yield from read_jsonl(uri, compression, schema, constants, max_line_bytes)
        elif fmt == "parquet":
            yield from read_parquet(uri, schema, constants, row_start=rows[0] if rows else 0, row_end=rows[1] if rows else None)
        elif fmt == "csv":
            yield from read_csv(uri, compression, schema, constants, csv_delimiter)
        else:
            raise InputError(f"unknown format {fmt!r} for {uri}")
    except (OSError, pa.ArrowInvalid, EOFError) as exc:
        msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        yield quarantine_rows(schema, uri, [None], [f"unreadable_file: {msg}"], [None])
