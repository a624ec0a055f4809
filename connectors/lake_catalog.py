"""Lake catalog: find the tables under a lake root and describe them from metadata alone.

Recognised tables (local or ``s3://``):

* a Delta table — a folder with ``_delta_log/``: the active files are the ``add`` actions of the
  log replayed in order (``remove`` drops them; checkpoints are not read, so a table whose log was
  truncated after a checkpoint is reported as unsupported rather than misread); row counts and
  per-column min/max/null counts come from each add's ``stats`` JSON;
* a Parquet dataset — a folder of writer-named parts (``part-00000….parquet``, ``data-….parquet``,
  ``0.parquet``) or of Hive ``key=value`` sub-folders: schema, rows and per-column min/max/null
  counts from the files' footers (other Parquet files in a folder are tables of their own);
* a Parquet file on its own; a CSV file (no statistics in the format: scanned once with pyarrow).

Statistics are combined per table (min of mins, max of maxes, sum of null counts); a column
without statistics in any file has none (``None``), and later stages never prune on it.
The catalog is cached in ``OUTPUT/catalog.json`` keyed by each file's path, size and mtime: a re-scan
of an unchanged lake reads no footer and no CSV.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.file_formats import hive_partitions
from connectors.filesystem import InputError, list_files, resolve

CATALOG_VERSION = 1


@dataclass
class ColumnStats:
    type: str
    min: object = None
    max: object = None
    nulls: int | None = None
    has_stats: bool = False


@dataclass
class TableInfo:
    path: str  # relative to the lake root, "/" separators
    format: str  # parquet | parquet_dataset | csv | delta
    files: list[list]  # [uri, size, mtime_ns]
    rows: int
    bytes: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    error: str | None = None

    def fingerprint(self) -> list:
        return sorted(self.files)


def _plain(value):
    """A JSON-safe, comparable form of a statistic (dates/timestamps as ISO strings)."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item"):
        return value.item()
    return value


def _merge(cols: dict[str, ColumnStats], name: str, typ: str, mn, mx, nulls, has: bool) -> None:
    cur = cols.get(name)
    if cur is None:
        cols[name] = ColumnStats(typ, _plain(mn) if has else None, _plain(mx) if has else None, nulls if has else None, has)
        return
    if not (cur.has_stats and has):  # one file without statistics makes the column unknown
        cols[name] = ColumnStats(typ, None, None, None, False)
        return
    try:
        cur.min = min(cur.min, _plain(mn)) if cur.min is not None and mn is not None else (cur.min if mn is None else _plain(mn))
        cur.max = max(cur.max, _plain(mx)) if cur.max is not None and mx is not None else (cur.max if mx is None else _plain(mx))
    except TypeError:
        cols[name] = ColumnStats(typ, None, None, None, False)
        return
    cur.nulls = (cur.nulls or 0) + (nulls or 0)


def _parquet_stats(uri: str, cols: dict[str, ColumnStats]) -> tuple[int, pa.Schema]:
    fs, path = resolve(uri)
    with fs.open_input_file(path) as fh:
        meta = pq.ParquetFile(fh).metadata
    schema = meta.schema.to_arrow_schema()
    for ci, fld in enumerate(schema):
        typ = str(fld.type)
        if meta.num_row_groups == 0:
            _merge(cols, fld.name, typ, None, None, 0, True)
        for rg in range(meta.num_row_groups):
            col = meta.row_group(rg).column(ci) if ci < meta.row_group(rg).num_columns else None
            st = col.statistics if col is not None else None
            has = bool(st is not None and st.has_min_max and st.has_null_count)
            if st is not None and not st.has_min_max and st.has_null_count and st.null_count == meta.row_group(rg).num_rows:
                has = True  # an all-null column chunk: no min/max, but its nulls are known
                _merge(cols, fld.name, typ, None, None, st.null_count, True)
                continue
            if st is None or not has:
                _merge(cols, fld.name, typ, None, None, None, False)
            else:
                _merge(cols, fld.name, typ, st.min, st.max, st.null_count, True)
    return meta.num_rows, schema


# RFC 4180: a quoted value may hold line breaks (pyarrow splits blocks at line breaks unless told)
CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)


def _csv_stats(uri: str, cols: dict[str, ColumnStats]) -> int:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        table = pacsv.read_csv(fh, parse_options=CSV_PARSE)
    for name in table.column_names:
        col = table.column(name)
        typ = str(col.type)
        nulls = col.null_count
        try:
            mm = pc.min_max(col) if len(col) and nulls < len(col) else None
            mn, mx = (mm["min"].as_py(), mm["max"].as_py()) if mm is not None else (None, None)
            cols[name] = ColumnStats(typ, _plain(mn), _plain(mx), nulls, True)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            cols[name] = ColumnStats(typ, None, None, nulls, False)
    return table.num_rows


def _delta(root_uri: str, files_in_log: list) -> TableInfo:
    """Replay ``_delta_log/*.json`` (add/remove actions, metaData schema)."""
    fs, base = resolve(root_uri)
    active: dict[str, dict] = {}
    schema_fields: list[dict] = []
    for uri, _size, _m in sorted(files_in_log):
        if not uri.endswith(".json"):
            continue
        _, p = resolve(uri)
        with fs.open_input_stream(p) as fh:
            for raw in fh.read().splitlines():
                if not raw.strip():
                    continue
                action = json.loads(raw)
                if "add" in action:
                    active[action["add"]["path"]] = action["add"]
                elif "remove" in action:
                    active.pop(action["remove"]["path"], None)
                elif "metaData" in action:
                    schema_fields = json.loads(action["metaData"]["schemaString"])["fields"]
    cols: dict[str, ColumnStats] = {}
    rows = size = 0
    files = []
    for rel, add in sorted(active.items()):
        stats = json.loads(add.get("stats") or "{}")
        rows += int(stats.get("numRecords", 0))
        size += int(add.get("size", 0))
        files.append([root_uri.rstrip("/") + "/" + rel, int(add.get("size", 0)), int(add.get("modificationTime", 0))])
        for f in schema_fields:
            name = f["name"]
            mins, maxs, nulls = stats.get("minValues", {}), stats.get("maxValues", {}), stats.get("nullCount", {})
            has = name in nulls and (name in mins or nulls.get(name) == stats.get("numRecords"))
            _merge(cols, name, str(f["type"]), mins.get(name), maxs.get(name), nulls.get(name), has)
    return TableInfo(path="", format="delta", files=files, rows=rows, bytes=size, columns=cols)


def _relative(root: str, uri: str) -> str:
    return uri[len(root.rstrip("/")) + 1 :] if uri.startswith(("s3://", "s3a://")) else posixpath.relpath(uri, root)


def _dataset_folder(rel: str) -> tuple[str, bool]:
    """(folder a parquet file belongs to, whether it sits under Hive key=value folders)."""
    parts = rel.split("/")
    i = len(parts) - 1
    while i > 0 and "=" in parts[i - 1]:
        i -= 1
    return "/".join(parts[:i]), i < len(parts) - 1


def _group_tables(root: str, files) -> dict[str, tuple[str, list]]:
    """{table path relative to root: (format, [file infos])}: Delta folders, Parquet datasets
    (a folder with several Parquet files, or Hive partitions), single Parquet files, CSV files."""
    tables: dict[str, tuple[str, list]] = {}
    delta_roots = sorted({f.uri[: f.uri.index("/_delta_log/")] for f in files if "/_delta_log/" in f.uri})
    # a folder is one dataset when its Parquet files are writer-named parts (part-00000…,
    # data-…, 0.parquet) or Hive partitions; otherwise each file is a table of its own
    part_only: dict[str, bool] = {}
    for f in files:
        rel = _relative(root, f.uri)
        if rel.lower().endswith(".parquet"):
            folder, _ = _dataset_folder(rel)
            named_part = re.match(r"^(part[-_].*|data[-_].*|\d+)\.(snappy\.|zstd\.|gz\.)?parquet$", posixpath.basename(rel).lower())
            part_only[folder] = part_only.get(folder, True) and bool(named_part)
    for f in files:
        rel = _relative(root, f.uri)
        owner = next((d for d in delta_roots if f.uri.startswith(d + "/")), None)
        if owner:
            tables.setdefault(_relative(root, owner), ("delta", []))[1].append(f)
        elif rel.lower().endswith(".parquet"):
            folder, hive = _dataset_folder(rel)
            if folder and (hive or part_only[folder]):
                tables.setdefault(folder, ("parquet_dataset", []))[1].append(f)
            else:
                tables[rel] = ("parquet", [f])
        elif rel.lower().endswith(".csv"):
            tables[rel] = ("csv", [f])
    return tables


def build_catalog(lake: str, cache_path: str | None = None) -> tuple[list[TableInfo], dict]:
    """(tables sorted by path, {"scanned": n, "cached": n}). Unreadable tables carry ``error``."""
    files = list_files(lake, keep_hidden=("_delta_log",))
    if not files:
        raise InputError(f"no files under {lake}")
    root = lake.rstrip("/") if lake.startswith("s3") else os.path.abspath(lake)
    cache: dict[str, dict] = {}
    if cache_path and os.path.exists(cache_path):
        try:
            with open(cache_path) as fh:
                doc = json.load(fh)
            if doc.get("version") == CATALOG_VERSION and doc.get("lake") == root:
                cache = {t["path"]: t for t in doc["tables"]}
        except (OSError, ValueError):
            cache = {}
    tables, counts = [], {"scanned": 0, "cached": 0}
    for rel, (fmt, group) in sorted(_group_tables(root, files).items()):
        finger = sorted([f.uri, f.size, f.mtime_ns] for f in group)
        hit = cache.get(rel)
        if hit and hit["format"] == fmt and hit.get("_fingerprint") == finger:
            info = TableInfo(
                **{k: v for k, v in hit.items() if k not in ("columns", "_fingerprint")},
                columns={c: ColumnStats(**s) for c, s in hit["columns"].items()},
            )
            counts["cached"] += 1
        else:
            info = _describe(root, rel, fmt, group)
            counts["scanned"] += 1
        info._fingerprint = finger  # type: ignore[attr-defined]
        tables.append(info)
    if cache_path:
        os.makedirs(os.path.dirname(cache_path) or ".", exist_ok=True)
        doc = {"version": CATALOG_VERSION, "lake": root, "tables": [{**asdict(t), "_fingerprint": t._fingerprint} for t in tables]}  # type: ignore[attr-defined]
        tmp = cache_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, default=str)
        os.replace(tmp, cache_path)
    return tables, counts


def _describe(root: str, rel: str, fmt: str, group) -> TableInfo:
    files = [[f.uri, f.size, f.mtime_ns] for f in group]
    try:
        if fmt == "delta":
            info = _delta(root.rstrip("/") + "/" + rel, files)
            info.path = rel
            return info
        cols: dict[str, ColumnStats] = {}
        rows = 0
        if fmt == "csv":
            rows = _csv_stats(group[0].uri, cols)
        else:
            for f in group:
                n, _ = _parquet_stats(f.uri, cols)
                rows += n
                # Hive partition values are columns of the table too (string-typed, never null)
                for key, value in hive_partitions(_relative(root, f.uri)[len(rel) + 1 :]).items():
                    _merge(cols, key, "string", value, value, 0, True)
        return TableInfo(path=rel, format=fmt, files=files, rows=rows, bytes=sum(f.size for f in group), columns=cols)
    except (OSError, pa.ArrowInvalid, ValueError, KeyError) as exc:
        return TableInfo(path=rel, format=fmt, files=files, rows=0, bytes=sum(f.size for f in group), error=f"{type(exc).__name__}: {exc}")


def read_table(info: TableInfo, columns: list[str] | None = None) -> pa.Table:
    """The table's rows as Arrow (Hive partition values included for Parquet datasets)."""
    import pyarrow.dataset as ds

    uris = [f[0] for f in info.files]
    if not uris:
        return pa.table({})
    fs, first = resolve(uris[0])
    paths = [resolve(u)[1] for u in uris]
    if info.format == "csv":
        with fs.open_input_stream(first) as fh:
            table = pacsv.read_csv(fh, parse_options=CSV_PARSE)
    elif info.format == "parquet_dataset":
        marker = "/" + info.path + "/"
        base = first[: first.index(marker) + len(marker) - 1] if marker in first else posixpath.dirname(first)
        table = ds.dataset(paths, filesystem=fs, format="parquet", partitioning="hive", partition_base_dir=base).to_table()
    else:
        table = ds.dataset(paths, filesystem=fs, format="parquet").to_table()
    return table.select(columns) if columns is not None else table


def write_delta_table(folder: str, table: pa.Table) -> None:
    """Write ``table`` as a one-file Delta table (protocol, metaData with schemaString, one add
    action with numRecords/min/max/null-count stats) — what tierlake's catalog reads back."""
    os.makedirs(os.path.join(folder, "_delta_log"), exist_ok=True)
    name = f"part-00000-{hashlib.md5(os.path.basename(folder).encode()).hexdigest()}.snappy.parquet"
    pq.write_table(table, os.path.join(folder, name))
    type_names = {pa.int64(): "long", pa.int32(): "integer", pa.float64(): "double", pa.string(): "string"}
    schema = {"type": "struct", "fields": [{"name": f.name, "type": type_names[f.type], "nullable": True, "metadata": {}} for f in table.schema]}
    mins, maxs, nulls = {}, {}, {}
    for f in table.schema:
        col = table.column(f.name)
        mm = pc.min_max(col)
        mins[f.name], maxs[f.name], nulls[f.name] = mm["min"].as_py(), mm["max"].as_py(), col.null_count
    actions = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {
            "metaData": {
                "id": "00000000-0000-0000-0000-000000000000",
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(schema),
                "partitionColumns": [],
                "configuration": {},
                "createdTime": 0,
            }
        },
        {
            "add": {
                "path": name,
                "partitionValues": {},
                "size": os.path.getsize(os.path.join(folder, name)),
                "modificationTime": 0,
                "dataChange": True,
                "stats": json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}),
            }
        },
    ]
    with open(os.path.join(folder, "_delta_log", "00000000000000000000.json"), "w") as fh:
        fh.write("\n".join(json.dumps(a) for a in actions) + "\n")
