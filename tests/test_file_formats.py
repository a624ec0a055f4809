"""Per-file readers (no Spark): every record comes out as a row or a quarantine row with its line."""

import gzip
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest
import zstandard

from connectors import file_formats as ff
from connectors.filesystem import InputError, list_files


def _read_all(path, fmt, comp, schema, constants=None, max_line=1 << 20):
    tables = list(ff.read_file(str(path), fmt, comp, schema, constants or {}, max_line))
    return pa.concat_tables(tables) if tables else None


SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string())])


@pytest.mark.parametrize("name,suffix", [("plain", ".jsonl"), ("gz", ".jsonl.gz"), ("zst", ".jsonl.zst"), ("bz2", ".jsonl.bz2")])
def test_jsonl_compressions_read_the_same(tmp_path, name, suffix):
    body = b"".join(json.dumps({"id": str(i), "text": f"doc {i}"}).encode() + b"\n" for i in range(50))
    import bz2

    data = {"plain": body, "gz": gzip.compress(body), "zst": zstandard.ZstdCompressor().compress(body), "bz2": bz2.compress(body)}[name]
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    fmt, comp = ff.split_suffix(path.name)
    assert fmt == "jsonl"
    table = _read_all(path, fmt, comp, SCHEMA)
    assert table.num_rows == 50
    assert table.column("_error").null_count == 50
    assert table.column("_line").to_pylist() == list(range(1, 51))
    assert ff.sample_schema(str(path), fmt, comp).names == ["id", "text"]


def test_bad_lines_are_quarantined_with_their_line_numbers(tmp_path):
    lines = [
        b'{"id": "a", "text": "fine"}',
        b"",
        b'{"id": "b", "text": "unterminated',
        b'{"id": "c", "text": "bad \xff byte"}',
        b"[1, 2]",
        b'{"id": "d", "text": "also fine"}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    table = _read_all(path, "jsonl", None, SCHEMA)
    rows = table.to_pylist()
    good = [r for r in rows if r["_error"] is None]
    bad = {r["_line"]: r["_error"] for r in rows if r["_error"] is not None}
    assert [(r["id"], r["_line"]) for r in good] == [("a", 1), ("d", 6)]
    assert set(bad) == {3, 4, 5}
    assert bad[3].startswith("malformed_json")
    assert bad[4].startswith("invalid_utf8")
    assert bad[5].startswith("malformed_json")


def test_invalid_utf8_in_an_otherwise_valid_file_is_quarantined(tmp_path):
    # pyarrow's JSON reader accepts this block whole; the bad line must still come out quarantined
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "bad \xff utf8"}\n{"id": "c", "text": "ok"}\n')
    rows = _read_all(path, "jsonl", None, SCHEMA).to_pylist()
    assert [(r["id"], r["_line"]) for r in rows if r["_error"] is None] == [("a", 1), ("c", 3)]
    assert [(r["_line"], r["_error"].split(":")[0]) for r in rows if r["_error"]] == [(2, "invalid_utf8")]


def test_blank_lines_keep_line_numbers_exact(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"id": "a", "text": "x"}\n   \n\n{"id": "b", "text": "y"}\n')
    table = _read_all(path, "jsonl", None, SCHEMA)
    assert table.column("_line").to_pylist() == [2, 5]


def test_line_too_large_is_quarantined_not_parsed(tmp_path):
    path = tmp_path / "huge.jsonl"
    big = json.dumps({"id": "big", "text": "w " * 5000})
    path.write_text('{"id": "a", "text": "x"}\n' + big + '\n{"id": "c", "text": "z"}\n')
    table = _read_all(path, "jsonl", None, SCHEMA, max_line=2048)
    rows = table.to_pylist()
    assert [r["id"] for r in rows if r["_error"] is None] == ["a", "c"]
    assert [r["_line"] for r in rows if r["_error"]] == [2]
    assert [r["_error"].split(":")[0] for r in rows if r["_error"]] == ["line_too_large"]


def test_block_boundaries_do_not_lose_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(ff, "BLOCK_BYTES", 100)  # many blocks, lines cut across block edges
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": "t" * (i % 37)}) + "\n" for i in range(300)))
    table = _read_all(path, "jsonl", None, SCHEMA)
    assert table.column("id").to_pylist() == [str(i) for i in range(300)]
    assert table.column("_line").to_pylist() == list(range(1, 301))


def test_csv_rows_of_wrong_width_are_quarantined(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,text\n1,"hello, world"\n2,a,b\n3,"multi\nline"\n')
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    table = _read_all(path, "csv", None, schema)
    rows = table.to_pylist()
    assert [r["text"] for r in rows if not r["_error"]] == ["hello, world", "multi\nline"]
    assert [r["_error"].split(":")[0] for r in rows if r["_error"]] == ["bad_csv_row"]
    # data-row numbers (header = 0), the refused row's own included; its file line in the reason
    assert [(r["id"], r["_line"]) for r in rows if not r["_error"]] == [(1, 1), (3, 3)]
    assert [(r["_line"], r["_error"]) for r in rows if r["_error"]] == [(2, "bad_csv_row: 3 fields, header has 2 (file line 3)")]


def test_csv_row_numbers_stay_exact_after_refused_rows_across_blocks(tmp_path):
    """Arrow cannot number a row it refuses when values may hold newlines, and skipping it shifts
    the rows after it; from the first block with such a row the slow path numbers every row.
    ~3 MB: several of Arrow's 1 MB blocks, the refused rows only in later ones."""
    rng = random.Random(0)
    lines, refused = ["id,text,n"], set()
    for i in range(1, 60_001):
        r = rng.random()
        if i > 40_000 and r < 0.001:
            lines.append(f"{i},x,1,one too many")
            refused.add(i)
        elif r < 0.01:
            lines.append(f'{i},"a value\nover two lines, {i}",{i}')
        else:
            lines.append(f"{i},plain text {i} {'w' * rng.randint(0, 40)},{i}")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("n", pa.int64())])
    rows = _read_all(path, "csv", None, schema).to_pylist()
    good = [r for r in rows if not r["_error"]]
    assert refused and sorted(r["_line"] for r in rows if r["_error"]) == sorted(refused)
    assert len(good) == 60_000 - len(refused)
    assert all(int(r["id"]) == r["_line"] == r["n"] for r in good)  # typed as on the fast path


def test_csv_schema_is_sampled_from_whole_records_when_values_hold_line_breaks(tmp_path):
    """The schema sample is the file's first 4 MiB: with multi-line quoted values in several of
    Arrow's 1 MB blocks, and the 4 MiB cut inside a value, the sample still parses (it failed with
    "CSV parser got out of sync with chunker" on the demo lake at 1M documents)."""
    import pyarrow.csv as pacsv

    rng = random.Random(3)
    lessons = [f'Question: {"w" * rng.randint(60, 160)} "{i}"?\nSolution: {"s" * rng.randint(60, 200)}, so {i}.' for i in range(30_000)]
    path = tmp_path / "lessons.csv"  # as Arrow writes it (rows end in CRLF, values keep their LF)
    pacsv.write_csv(pa.table({"id": [str(i) for i in range(30_000)], "lesson": lessons, "score": [i / 7 for i in range(30_000)]}), path)
    assert path.stat().st_size > 5 << 20
    schema = ff.sample_schema(str(path), "csv", None)
    assert schema.field("lesson").type == pa.string() and schema.field("score").type == pa.float64()
    rows = _read_all(path, "csv", None, schema)
    assert rows.num_rows == 30_000 and not any(rows.column("_error").to_pylist())


@pytest.mark.parametrize(
    "head,whole",
    [
        (b'a,b\n1,"x\ny"\n2,"p\nq', b'a,b\n1,"x\ny"\n'),  # cut inside a quoted value: up to the record before it
        (b'a,b\n1,"say ""hi""\nthere"\n2,z', b'a,b\n1,"say ""hi""\nthere"\n'),  # escaped quotes keep the count even
        (b"a,b\n1,2\n", b"a,b\n1,2\n"),
        (b"a,b", b"a,b"),  # no line break: as it is
    ],
)
def test_csv_whole_records(head, whole):
    assert ff.csv_whole_records(head) == whole


def test_parquet_hive_partition_columns(tmp_path):
    d = tmp_path / "ds" / "lang=en"
    d.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["1", "2"], "text": ["a", "b"]}), d / "p.parquet")
    schema = SCHEMA.append(pa.field("lang", pa.string()))
    table = _read_all(d / "p.parquet", "parquet", None, schema, constants=ff.hive_partitions("lang=en/p.parquet"))
    assert table.column("lang").to_pylist() == ["en", "en"]


def test_unreadable_file_becomes_one_quarantine_row(tmp_path):
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(b"this is not gzip")
    table = _read_all(path, "jsonl", "gzip", SCHEMA)
    assert table.num_rows == 1
    assert table.column("_error")[0].as_py().startswith("unreadable_file")


@pytest.mark.parametrize("compression,ext", [("gzip", "gz"), ("zstd", "zst"), ("bz2", "bz2")])
def test_truncated_compressed_file_keeps_what_was_read_and_says_so(tmp_path, compression, ext):
    """An interrupted upload: the records before the cut are kept, the cut is one quarantine row
    `truncated` at the first line lost — never a silent partial read."""
    import json

    lines = [json.dumps({"id": str(i), "text": f"document {i} " + "x" * 200}).encode() + b"\n" for i in range(5000)]
    sink = pa.BufferOutputStream()
    stream = pa.CompressedOutputStream(sink, compression)
    stream.write(b"".join(lines))
    stream.close()
    whole = sink.getvalue().to_pybytes()
    path = tmp_path / f"cut.jsonl.{ext}"
    path.write_bytes(whole[: len(whole) // 2])
    table = _read_all(path, "jsonl", compression, SCHEMA)
    errors = [(line, e) for line, e in zip(table.column("_line").to_pylist(), table.column("_error").to_pylist()) if e]
    kept = table.filter(pa.compute.is_null(table.column("_error")))
    assert len(errors) == 1 and errors[0][1].startswith("truncated: ")
    assert errors[0][0] == kept.num_rows + 1  # the first line lost
    assert kept.column("id").to_pylist() == [str(i) for i in range(kept.num_rows)]  # in order, none skipped
    if compression != "bz2":  # bz2 decodes in ~900 kB blocks: a cut can cost everything before it
        assert kept.num_rows > 1000  # half the compressed bytes hold ~2,250 lines; the decoder's block size costs some


def test_unify_widens_numbers_and_stringifies_scalar_conflicts():
    a = pa.schema([("n", pa.int32()), ("d", pa.string())])
    b = pa.schema([("n", pa.int64()), ("d", pa.timestamp("s")), ("extra", pa.bool_())])
    merged = ff.unify([a, b])
    assert merged.field("n").type == pa.int64()
    assert merged.field("d").type == pa.string()
    assert merged.names == ["n", "d", "extra"]


def test_list_files_skips_markers_and_names_missing_input(tmp_path):
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".a.jsonl.crc").write_text("")
    assert [f.uri.rsplit("/", 1)[1] for f in list_files(str(tmp_path))] == ["a.jsonl"]
    with pytest.raises(InputError, match="input not found"):
        list_files(str(tmp_path / "nope"))


def test_parquet_row_ranges_cover_the_file_once_with_true_row_numbers(tmp_path):
    n = 1000
    table = pa.table({"id": [str(i) for i in range(n)], "text": [f"doc {i}" for i in range(n)]})
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=300)  # groups of 300, 300, 300, 100
    groups = ff.parquet_row_groups(str(path))
    assert groups == [300, 300, 300, 100]
    whole = _read_all(path, "parquet", None, SCHEMA)
    for target, pieces in [(250, 2), (500, 4), (2000, 2), (100, 3)]:
        splits = ff.parquet_splits(groups, target, pieces)
        assert splits[0][0] == 0 and splits[-1][1] == n and all(a[1] == b[0] for a, b in zip(splits, splits[1:]))
        parts = [pa.concat_tables(list(ff.read_file(str(path), "parquet", None, SCHEMA, {}, 1 << 20, rows=s))) for s in splits]
        joined = pa.concat_tables(parts)
        assert joined.column("id").to_pylist() == whole.column("id").to_pylist()
        assert joined.column("_line").to_pylist() == list(range(1, n + 1))
    # one huge row group is cut into at most `pieces` ranges
    assert ff.parquet_splits([1000], 100, 3) == [(0, 333), (333, 666), (666, 1000)]


def test_truncated_file_among_good_ones_costs_only_its_lost_lines_in_the_local_engine(tmp_path):
    """One cut .jsonl.gz among good files: the good files and the cut file's readable records are
    documents, the cut is a `truncated` quarantine row with file and line, and the stage accounts."""
    from connectors.local_ingest import ingest_local
    from connectors.sources import IngestParams, SourceSpec

    folder = tmp_path / "in"
    folder.mkdir()
    good = [json.dumps({"text": f"good document {i}"}) + "\n" for i in range(50)]
    (folder / "a.jsonl").write_text("".join(good))
    with gzip.open(folder / "b.jsonl.gz", "wt") as fh:
        fh.write("".join(good))
    lines = "".join(json.dumps({"text": f"cut document {i} " + "y" * 300}) + "\n" for i in range(3000)).encode()
    whole = gzip.compress(lines)
    (folder / "c.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    docs, quarantine, _, stats = ingest_local([SourceSpec(name="s", path=str(folder))], IngestParams(), threads=1)
    q = quarantine.to_pylist()
    assert [r["reason"] for r in q] == ["truncated"] and q[0]["source_file"].endswith("c.jsonl.gz")
    cut_kept = sum(1 for t in docs.column("text").to_pylist() if t.startswith("cut document"))
    assert cut_kept > 1000 and q[0]["source_line"] == cut_kept + 1
    assert docs.num_rows == 100 + cut_kept and stats.docs_in == docs.num_rows + quarantine.num_rows


def test_deeply_nested_line_is_no_traceback(tmp_path):
    """A record whose metadata nests thousands of levels deep: no RecursionError; schema inference
    skips it, the reader reads its text (or quarantines it as too_deep when it must parse it alone)."""
    lines = [json.dumps({"id": str(i), "text": f"document {i}"}) for i in range(10)]
    lines.insert(4, '{"id": "deep", "text": "deep text", "m": ' + "[" * 5000 + "]" * 5000 + "}")
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    schema = ff.sample_schema(str(path), "jsonl", None)
    assert set(schema.names) == {"id", "text"}
    table = _read_all(path, "jsonl", None, schema)
    assert table.num_rows == 11
    errors = [e for e in table.column("_error").to_pylist() if e]
    assert all(e.startswith("too_deep") for e in errors)
    # the one-by-one path (taken when a block fails) gives the line its own reason
    block = (lines[4] + "\n").encode()
    _, _, (bad, why, _) = ff._parse_lines_one_by_one(
        block, np.array([0]), np.array([len(block) - 1]), np.array([True]), SCHEMA, pajson.ParseOptions(explicit_schema=SCHEMA), "x", 5
    )
    assert bad == [5] and why[0].startswith("too_deep")


def test_lines_that_disagree_on_types_cost_only_themselves(tmp_path):
    """Ids that are numbers on some lines and strings on others, metadata null on one line and a
    float or a string on the next, a lone surrogate escape, nesting thousands deep: the schema is
    inferred anyway, scalars become the schema's type where faithful (numbers -> their text), and
    only the lines that cannot be read are quarantined, each with its own reason."""
    lines = []
    for i in range(30):
        lines.append(
            json.dumps(
                {"id": i if i % 2 else str(i), "text": f"document {i}", "meta": None if i % 3 else (1.5 if i % 2 else "high"), "flag": bool(i % 2)}
            )
        )
    lines.insert(5, '{"id": "u", "text": "bad \\ud800 escape"}')
    lines.insert(8, '{"id": "n", "text": "ok", "flag": "maybe"}')  # not a boolean
    lines.insert(12, '{"id": "deep", "text": "t", "meta": ' + "[" * 3000 + "]" * 3000 + "}")
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(lines) + "\n")
    schema = ff.sample_schema(str(path), "jsonl", None)
    assert schema.field("id").type == pa.string() and schema.field("meta").type == pa.string()
    table = _read_all(path, "jsonl", None, schema)
    errors = {line: e.split(":")[0] for line, e in zip(table.column("_line").to_pylist(), table.column("_error").to_pylist()) if e}
    assert errors == {6: "invalid_unicode", 13: "too_deep"}  # "maybe" made `flag` a string column
    good = table.filter(pa.compute.is_null(table.column("_error")))
    assert good.num_rows == 31
    ids = good.column("id").to_pylist()
    assert sorted(i for i in ids if i != "n") == sorted(str(i) for i in range(30))  # numeric ids as strings
    metas = dict(zip(ids, good.column("meta").to_pylist()))
    assert metas["0"] == "high" and metas["3"] == "1.5" and metas["1"] is None
    # a value the schema's type cannot hold faithfully (found past the sampled head) is that line's loss alone
    strict = schema.set(schema.get_field_index("flag"), pa.field("flag", pa.bool_()))
    table = _read_all(path, "jsonl", None, strict)
    errors = {line: e.split(":")[0] for line, e in zip(table.column("_line").to_pylist(), table.column("_error").to_pylist()) if e}
    assert errors == {6: "invalid_unicode", 9: "type_mismatch", 13: "too_deep"} and table.num_rows == 33


@pytest.mark.parametrize(
    "content,message", [(b"", "no records: every file is empty"), (bytes(range(256)) * 8, "not JSON: no line of the first 4 MB is a JSON object")]
)
def test_unusable_input_says_what_is_wrong(tmp_path, content, message):
    from connectors.sources import SourceSpec, _plan_files, settle_schema

    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    spec = SourceSpec(name="s", path=str(path))
    with pytest.raises(InputError, match=message):
        settle_schema(spec, _plan_files(spec))


def test_one_broken_gzip_among_good_files_costs_only_itself(tmp_path):
    from connectors.local_ingest import ingest_local
    from connectors.sources import IngestParams, SourceSpec

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text("".join(json.dumps({"text": f"good {i}"}) + "\n" for i in range(30)))
    (folder / "b.jsonl.gz").write_bytes(b"this is not gzip at all")
    docs, quarantine, _, stats = ingest_local([SourceSpec(name="s", path=str(folder))], IngestParams(), threads=1)
    q = quarantine.to_pylist()
    assert docs.num_rows == 30 and [r["reason"] for r in q] == ["unreadable_file"] and q[0]["source_file"] == "b.jsonl.gz"
    assert stats.docs_in == 31
    (folder / "a.jsonl").unlink()  # nothing readable at all: one line saying so
    with pytest.raises(InputError, match="no file could be read"):
        ingest_local([SourceSpec(name="s", path=str(folder))], IngestParams(), threads=1)


def test_one_corrupt_parquet_among_good_ones_costs_only_itself(tmp_path):
    from connectors.local_ingest import ingest_local
    from connectors.sources import IngestParams, SourceSpec

    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"text": [f"good {i}" for i in range(10)]}), tmp_path / "in" / "a.parquet")
    (tmp_path / "in" / "b.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    docs, quarantine, _, stats = ingest_local([SourceSpec(name="s", path=str(tmp_path / "in"))], IngestParams(), threads=1)
    q = quarantine.to_pylist()
    assert docs.num_rows == 10 and [(r["source_file"], r["reason"]) for r in q] == [("b.parquet", "unreadable_file")]
    assert stats.docs_in == 11


def test_a_block_with_scattered_bad_lines_reads_as_line_by_line(tmp_path):
    """A block that fails as a whole is halved until its halves parse (connectors/file_formats.py):
    the rows, their line numbers and the quarantine rows are exactly those of parsing every line
    on its own, wherever the bad lines fall (first, last, neighbours, blank lines between)."""
    rng = random.Random(3)
    lines = [json.dumps({"id": str(i), "text": f"document {i} " * rng.randint(1, 9)}) for i in range(700)]
    bad = {0: "{not json", 1: "[1, 2]", 333: '{"id": "x", "text": ', 334: "17", 699: '{"id": "y", "text": "a"}{"id": "z"}'}
    for at, line in bad.items():
        lines[at] = line
    for at in (100, 101, 502):
        lines[at] = "  \t"  # blank: no row, no quarantine row
    body = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "scattered.jsonl"
    path.write_bytes(body)
    table = _read_all(path, "jsonl", None, SCHEMA)
    starts, ends, keep = ff._line_bounds(body)
    assert keep.sum() == 697
    opts = pajson.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
    good, good_lines, (bad_lines, _, _) = ff._parse_lines_one_by_one(body, starts, ends, keep, SCHEMA, opts, "x", 1)
    expected = pa.concat_tables(good)
    rows = table.filter(table.column("_error").is_null())
    assert rows.select(["id", "text"]).equals(expected)
    assert rows.column("_line").to_pylist() == good_lines
    quarantined = table.filter(table.column("_error").is_valid())
    assert quarantined.column("_line").to_pylist() == bad_lines == [at + 1 for at in sorted(bad)]
