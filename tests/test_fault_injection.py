"""Fault injection: malformed inputs generated here — JSONL (plain, gzip, zstd), Parquet and CSV —
through `tierlake dedup` on both engines (issue 20).

Each case writes good records (distinct ids and texts) plus one kind of damage. A usable input
must exit 0 with every good record kept or removed (never lost), the damage quarantined with its
reason, and the rows on disk adding up: kept + removed + quarantined = documents in. An unusable
input must exit 2 with one line on stderr and no traceback. A property test (hypothesis) mutates
valid files — truncation, byte flips, inserted garbage lines — and checks the same invariants.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.cli import main

WORDS = "river valley weather report rain wind harbour mountain forest village market bridge lantern".split()


def good_records(n: int, prefix: str = "g", seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"{prefix}{i:03d}", "text": " ".join(rng.choice(WORDS) for _ in range(40)) + f" number {prefix}{i}", "lang": "en"} for i in range(n)
    ]


def _lines(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _compress(data: bytes, compression: str) -> bytes:
    if compression == "gz":
        return gzip.compress(data, mtime=0)
    if compression == "zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


@dataclass
class Case:
    name: str
    files: dict[str, bytes]  # relative path -> bytes
    good: list[str]  # ids that must be kept or removed
    reasons: set[str] = field(default_factory=set)  # quarantine reasons that must appear
    unusable: str | None = None  # a usable input: None; else a phrase of the one-line error


def jsonl_cases(compression: str, tag: str = "") -> list[Case]:
    """``tag``: a prefix for every id, so cases can share one run (`tierlake run` below)."""
    t = tag.encode()
    ext = {"": "jsonl", "gz": "jsonl.gz", "zst": "jsonl.zst"}[compression]
    recs = good_records(6, f"{tag}g")
    ids = [r["id"] for r in recs]

    def one(name: str, bad: bytes, reasons: set[str], extra_good: list[dict] | None = None) -> Case:
        body = _lines(recs[:3]) + bad + _lines(recs[3:] + (extra_good or []))
        return Case(f"jsonl{compression}-{name}", {f"part-0.{ext}": _compress(body, compression)}, ids + [r["id"] for r in extra_good or []], reasons)

    cases = [
        one("malformed-line", b'{"id": "' + t + b'b1", "text": "broken\n', {"malformed_json"}),
        one("invalid-utf8", b'{"id": "' + t + b'b1", "text": "caf\xe9 \xff"}\n', {"invalid_utf8"}),
        one("null-text", b'{"id": "' + t + b'b1", "text": null}\n', {"missing_text"}),
        one("missing-text-key", b'{"id": "' + t + b'b1", "body": "no text field"}\n', {"missing_text"}),
        one("non-object-line", b"[1, 2, 3]\n", {"malformed_json"}),
        one("binary-garbage-line", bytes(range(1, 9)) + b"\x00\x01garbage\n", {"malformed_json"}),
        one("unpaired-surrogate", b'{"id": "' + t + b'b1", "text": "half \\ud800 a pair"}\n', {"invalid_unicode"}),
        one("nested-too-deep", b'{"id": "' + t + b'b1", "text": "deep", "meta": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", set()),
        one("duplicate-id", json.dumps({"id": recs[0]["id"], "text": "another text with the same id"}).encode() + b"\n", {"duplicate_id"}),
        one("numeric-text", b'{"id": "' + t + b'b1", "text": 12345}\n', set(), extra_good=None),
        one("blank-lines-and-crlf", b"\r\n\n   \n", set()),
        one("numeric-ids", b"", set(), extra_good=[{"id": 777 if not tag else f"{tag}777", "text": "a record whose id is a number " * 3}]),
        one(
            "metadata-types-disagree",
            b"",
            set(),
            extra_good=[
                {"id": f"{tag}m1", "text": "metadata is a string here " * 3, "lang": 3.5},
                {"id": f"{tag}m2", "text": "metadata is null here " * 3, "lang": None},
            ],
        ),
    ]
    # the deep line's text is read (its metadata is not a column), so it is kept; the numeric-text
    # line is kept with its text as the JSON number's text (a faithful conversion)
    cases[7].good = ids + [f"{tag}b1"]
    cases[9].good = ids + [f"{tag}b1"]
    cases[11].good = ids + [f"{tag}777"]
    if compression:
        full = _compress(_lines(recs), compression)
        cut = full[: len(full) * 2 // 3]
        cases.append(
            Case(
                f"jsonl{compression}-truncated-stream",
                {f"part-0.{ext}": _compress(_lines(recs[:3]), compression), f"part-1.{ext}": cut},
                ids[:3],
                {"truncated"},
            )
        )
        cases.append(
            Case(
                f"jsonl{compression}-not-compressed-data",
                {f"part-0.{ext}": _compress(_lines(recs), compression), f"part-1.{ext}": os.urandom(64)},
                ids,
                {"unreadable_file"},
            )
        )
    else:
        cases.append(
            Case("jsonl-truncated-last-line", {"part-0.jsonl": _lines(recs) + b'{"id": "' + t + b'b1", "text": "cut off'}, ids, {"malformed_json"})
        )
        cases.append(Case("jsonl-empty-file-among-good", {"part-0.jsonl": _lines(recs), "part-1.jsonl": b""}, ids))
        cases.append(
            Case(
                "jsonl-random-bytes-file-among-good",
                {"part-0.jsonl": _lines(recs), "part-1.jsonl": random.Random(1).randbytes(300)},
                ids,
                {"invalid_utf8"},
            )
        )
    return cases


def _parquet(records: list[dict], schema: pa.Schema | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), sink)
    return sink.getvalue()


def parquet_cases(tag: str = "") -> list[Case]:
    recs = good_records(6, f"{tag}p")
    ids = [r["id"] for r in recs]
    good = _parquet(recs)
    return [
        Case("parquet-corrupt-file-among-good", {"a.parquet": good, "b.parquet": b"PAR1" + os.urandom(200) + b"PAR1"}, ids, {"unreadable_file"}),
        Case(
            "parquet-truncated-file-among-good",
            {"a.parquet": good, "b.parquet": _parquet(good_records(4, f"{tag}q"))[:-40]},
            ids,
            {"unreadable_file"},
        ),
        Case("parquet-null-texts", {"a.parquet": _parquet(recs + [{"id": f"{tag}p-null", "text": None, "lang": "en"}])}, ids, {"missing_text"}),
        Case(
            "parquet-zero-row-file-among-good",
            {"a.parquet": good, "b.parquet": _parquet([], pa.schema([("id", pa.string()), ("text", pa.string()), ("lang", pa.string())]))},
            ids,
        ),
        Case("parquet-duplicate-ids-across-files", {"a.parquet": good, "b.parquet": _parquet([{**recs[0], "text": "other"}])}, ids, {"duplicate_id"}),
    ]


def csv_cases(tag: str = "") -> list[Case]:
    recs = good_records(6, f"{tag}c")
    ids = [r["id"] for r in recs]
    rows = "".join(f'{r["id"]},"{r["text"]}",en\n' for r in recs)
    header = "id,text,lang\n"
    return [
        Case("csv-wrong-width-row", {"a.csv": (header + rows + "c-bad,too,many,fields,here\n").encode()}, ids, {"bad_csv_row"}),
        # an empty CSV cell is an empty text, not a missing one: dedup removes it as empty_text
        Case("csv-empty-text-cell", {"a.csv": (header + rows + f"{tag}c-empty,,en\n").encode()}, ids + [f"{tag}c-empty"]),
        Case("csv-crlf-line-ends", {"a.csv": (header + rows).replace("\n", "\r\n").encode()}, ids),
        Case("csv-invalid-utf8-row", {"a.csv": (header + rows).encode() + b'c-bin,"caf\xe9 \xff",en\n'}, ids, {"invalid_utf8"}),
        Case("csv-unclosed-quote-at-end", {"a.csv": (header + rows + 'c-open,"never closed,en\n').encode()}, ids, {"bad_csv_row"}),
    ]


def unusable_cases() -> list[Case]:
    return [
        Case("unusable-only-an-empty-file", {"a.jsonl": b""}, [], unusable="no records"),
        Case("unusable-only-random-bytes", {"a.jsonl": random.Random(2).randbytes(500)}, [], unusable="not JSON"),
        Case("unusable-no-text-column", {"a.jsonl": _lines([{"id": "x", "body": "no text here"}])}, [], unusable="text column 'text' not found"),
        Case("unusable-only-a-corrupt-parquet", {"a.parquet": b"PAR1" + os.urandom(100) + b"PAR1"}, [], unusable="no file could be read"),
        Case("unusable-mixed-formats", {"a.jsonl": _lines(good_records(2)), "b.csv": b"id,text\nx,y\n"}, [], unusable="mixed formats"),
    ]


ALL = [*jsonl_cases(""), *jsonl_cases("gz"), *jsonl_cases("zst"), *parquet_cases(), *csv_cases(), *unusable_cases()]
SPARK = [c for c in ALL if not c.name.startswith(("jsonlgz-", "jsonlzst-"))]  # the readers are shared; compression once per engine below
SPARK += [c for c in ALL if c.name in ("jsonlgz-truncated-stream", "jsonlzst-truncated-stream", "jsonlgz-not-compressed-data")]


def _materialize(case: Case, root) -> str:
    folder = root / "in"
    folder.mkdir()
    for rel, data in case.files.items():
        (folder / rel).write_bytes(data)
    return str(folder)


def _rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist() if os.path.isdir(path) else []


def check(case: Case, tmp_path, engine: list[str], capsys) -> None:
    source = _materialize(case, tmp_path)
    out = tmp_path / "out"
    code = main(["--quiet", "dedup", source, str(out), *engine])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if case.unusable:
        assert code == 2, (code, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("tierlake:") and case.unusable in lines[0], err
        assert not (out / "stats.json").exists()
        return
    assert code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    kept, removed, quarantine = _rows(out / "kept"), _rows(out / "removed"), _rows(out / "quarantine")
    assert len(kept) + len(removed) + len(quarantine) == stats["documents_in"]
    assert stats["kept"] == len(kept) and sum(stats["quarantined"].values()) == len(quarantine)
    survived = {str(r["id"]) for r in kept} | {str(r["id"]) for r in removed}
    assert set(case.good) <= survived, set(case.good) - survived
    reasons = {q["reason"] for q in quarantine}
    assert case.reasons <= reasons, (case.reasons, reasons)
    for q in quarantine:  # every quarantine row says where
        assert q["source_file"] and q["reason"], q


def test_the_suite_has_at_least_40_cases():
    assert len(ALL) >= 40 and len({c.name for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.name)
def test_fault_local_engine(case, tmp_path, capsys):
    check(case, tmp_path, ["--engine", "local"], capsys)


@pytest.mark.parametrize("case", SPARK, ids=lambda c: c.name)
def test_fault_spark_engine(case, tmp_path, capsys, spark):
    check(case, tmp_path, [], capsys)


def run_cases() -> list[Case]:
    """The Spark cases that leave a usable input, each with ids of its own, for one `tierlake run`
    with a source per case."""
    families = [lambda t: jsonl_cases("", t), lambda t: jsonl_cases("gz", t), lambda t: jsonl_cases("zst", t), parquet_cases, csv_cases]
    wanted = {c.name for c in SPARK if not c.unusable}
    out: list[Case] = []
    for family in families:
        for name in [c.name for c in family("")]:
            if name in wanted:
                out.append(next(c for c in family(f"r{len(out)}-") if c.name == name))
    return out


def test_fault_cases_through_tierlake_run(tmp_path, capsys, spark, prefect_harness):
    """The usable cases again, as the sources of one recipe through the curate flow: the run
    completes, every good record of every source is kept or removed, each source's damage is
    quarantined with its reason, and the manifest's totals add up to the rows on disk."""
    import yaml

    cases = run_cases()
    sources = []
    for case in cases:
        folder = tmp_path / "lake" / case.name
        folder.mkdir(parents=True)
        for rel, data in case.files.items():
            (folder / rel).write_bytes(data)
        sources.append({"name": case.name, "path": str(folder)})
    out = tmp_path / "out"
    recipe = tmp_path / "faults.yaml"
    recipe.write_text(yaml.safe_dump({"name": "faults", "sources": sources, "output": {"path": str(out)}}))
    assert main(["--quiet", "run", str(recipe)]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    kept, removed, quarantine = _rows(out / "documents"), _rows(out / "removed"), _rows(out / "quarantine")
    t = manifest["totals"]
    assert (len(kept), len(removed), len(quarantine)) == (t["docs_out"], t["removed"], t["quarantined"])
    assert t["docs_in"] == t["docs_out"] + t["removed"] + t["quarantined"]
    survived = {str(r["id"]) for r in kept} | {str(r["id"]) for r in removed}
    for case in cases:
        assert set(case.good) <= survived, (case.name, set(case.good) - survived)
        reasons = {q["reason"] for q in quarantine if q["source"] == case.name}
        assert case.reasons <= reasons, (case.name, case.reasons, reasons)
    assert len(cases) >= 25


@pytest.mark.parametrize("case", [c for c in ALL if c.unusable], ids=lambda c: c.name)
def test_unusable_input_through_tierlake_run_is_one_line(case, tmp_path, capsys):
    """`tierlake run` settles every source's schema before Prefect or Spark start: an unusable
    source is exit 2 and one line, with no flow-run traceback."""
    import yaml

    source = _materialize(case, tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "u", "sources": [{"name": "s", "path": source}], "output": {"path": str(tmp_path / "out")}}))
    assert main(["--quiet", "run", str(recipe)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and case.unusable in lines[0] and "Traceback" not in err, err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), compression=st.sampled_from(["", "gz"]))
def test_mutated_files_never_lose_a_readable_record(tmp_path_factory, data, compression):
    """Truncation, byte flips and inserted garbage lines in a valid JSONL file: the run exits 0 with
    the rows on disk adding up, or 2 with one line (the whole input unusable); never a traceback."""
    recs = good_records(8, seed=data.draw(st.integers(0, 1000)))
    lines = [json.dumps(r).encode() for r in recs]
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, data.draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b" "))
    body = bytearray(_compress(b"\n".join(lines) + b"\n", compression))
    for _ in range(data.draw(st.integers(0, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        del body[data.draw(st.integers(1, len(body))) :]
    root = tmp_path_factory.mktemp("mutated")
    ext = "jsonl.gz" if compression else "jsonl"
    (root / f"in.{ext}").write_bytes(bytes(body))
    out = root / "out"
    err = io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(err):
        code = main(["--quiet", "dedup", str(root / f"in.{ext}"), str(out), "--engine", "local"])
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len([line for line in err.getvalue().splitlines() if line.strip()]) == 1
        return
    assert code == 0, err.getvalue()
    stats = json.loads((out / "stats.json").read_text())
    kept, removed, quarantine = _rows(out / "kept"), _rows(out / "removed"), _rows(out / "quarantine")
    assert len(kept) + len(removed) + len(quarantine) == stats["documents_in"]
    if not compression:  # every line that still parses as one of the records survives
        intact = {r["id"] for r, line in zip(recs, [json.dumps(r).encode() for r in recs]) if line in bytes(body).split(b"\n")}
        assert intact <= {r["id"] for r in kept} | {r["id"] for r in removed}
