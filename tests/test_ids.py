"""A user's own ids: an input column named ``id`` is the document id by default (datatrove's
``id_key="id"``), in JSONL, Parquet and CSV, on both engines; ``id_column=None`` always hashes."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.filesystem import InputError
from connectors.local_ingest import ingest_local
from connectors.sources import IngestParams, SourceSpec

ROWS = [{"id": "doc-7", "text": "first document text", "lang": "en"}, {"id": "doc-3", "text": "second document text", "lang": "de"}]


def _write(tmp_path, fmt: str, rows=ROWS) -> str:
    path = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return str(path)


def _ingest(engine, spec):
    if engine == "local":
        docs, _q, _f, _s = ingest_local([spec], IngestParams(), 1)
        return docs.to_pylist()
    from connectors.sources import ingest

    docs, _q, _f, _s = ingest(engine, [spec], IngestParams())
    return [r.asDict() for r in docs.collect()]


@pytest.fixture(params=["local", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request):
    return "local" if request.param == "local" else request.getfixturevalue("spark")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_an_id_column_is_the_document_id_by_default(tmp_path, fmt, engine):
    docs = _ingest(engine, SourceSpec(name="s", path=_write(tmp_path, fmt)))
    assert sorted(d["id"] for d in docs) == ["doc-3", "doc-7"]
    assert all("input_id" not in d for d in docs) and sorted(d["lang"] for d in docs) == ["de", "en"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_without_an_id_column_ids_are_hashes_and_none_forces_them(tmp_path, fmt, engine):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in ROWS]
    docs = _ingest(engine, SourceSpec(name="s", path=_write(tmp_path, fmt, rows)))
    assert all(len(d["id"]) == 32 for d in docs)  # sha256 of source + text, first 32 hex digits
    forced = _ingest(engine, SourceSpec(name="s", path=_write(tmp_path, fmt), id_column=None))
    assert all(len(d["id"]) == 32 for d in forced)
    assert sorted(d["input_id"] for d in forced) == ["doc-3", "doc-7"]  # the user's id is kept beside


def test_a_named_id_column_that_is_missing_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="id column 'doc_id' not found"):
        ingest_local([SourceSpec(name="s", path=_write(tmp_path, "jsonl"), id_column="doc_id")], IngestParams(), 1)


def test_the_dedup_command_keeps_the_users_ids(tmp_path):
    from flows.cli import main

    src = _write(tmp_path, "jsonl", ROWS + [{"id": "doc-9", "text": "first document text", "lang": "en"}])
    assert main(["--quiet", "dedup", src, str(tmp_path / "out"), "--engine", "local"]) == 0
    kept = pq.read_table(tmp_path / "out" / "kept").to_pylist()
    assert sorted(r["id"] for r in kept) == ["doc-3", "doc-7"]  # doc-9 is an exact copy of doc-7
    removed = pq.read_table(tmp_path / "out" / "removed").to_pylist()
    assert [(r["id"], r["duplicate_of"]) for r in removed] == [("doc-9", "doc-7")]
    assert main(["--quiet", "dedup", src, str(tmp_path / "hashed"), "--engine", "local", "--id-column", "none"]) == 0
    assert all(len(r["id"]) == 32 for r in pq.read_table(tmp_path / "hashed" / "kept").to_pylist())
