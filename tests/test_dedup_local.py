"""`tierlake dedup --engine local` gives the Spark engine's results: same kept rows, same removed
rows (duplicate_of, kind, cluster_size, reason), same quarantine, same stage counts — on messy
input (bad lines, missing text, empty text, repeated ids, non-ASCII text) and with each keep rule."""

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.cli import main

VOCAB = [f"{a}{b}{c}" for a in "bcdfgklmnp" for b in "aeiou" for c in "rstnl"]
GREEK = [f"{a}{b}" for a in "αβγδεζηθ" for b in "ικλμνξοπ"]


def _doc(rng, vocab=VOCAB, n=80):
    return " ".join(rng.choice(vocab) for _ in range(n))


def _edit(rng, text, k):
    toks = text.split()
    for _ in range(k):
        toks[rng.randrange(len(toks))] = rng.choice(VOCAB)
    return " ".join(toks)


def _messy_corpus(folder, rng):
    base = [_doc(rng) for _ in range(60)] + [_doc(rng, GREEK) for _ in range(10)]
    rows = []
    for i, t in enumerate(base):
        rows.append({"text": t, "score": rng.random(), "source": "crawl"})  # a reserved column name, passed through
    for i in range(25):  # near copies, some of them chained, some below the threshold
        rows.append({"text": _edit(rng, base[i], rng.choice([1, 2, 4, 12])), "score": rng.random()})
    rows += [
        {"text": base[3].upper(), "score": 0.5},
        {"text": "  " + base[4].replace(" ", "\n  "), "score": None},
        {"text": base[5], "score": 0.1},
        {"text": base[5], "score": 0.9},  # identical text: derived id gets -1
        {"text": base[62] + " ω"},
        {"text": "", "score": 1.0},
        {"text": " \t\n"},
        {"text": "!!! ... ?"},
        {"text": "?? !!! .."},
        {"score": 3.0},
    ]  # the last has no text: quarantined
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(17, '{"text": "broken')  # malformed JSON
    lines.insert(40, '["not", "an", "object"]')
    folder.mkdir(parents=True)
    half = len(lines) // 2
    (folder / "a.jsonl").write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    (folder / "b.jsonl").write_bytes(("\n".join(lines[half:]) + "\n").encode() + b'{"text": "bad \xff utf8"}\n')


def _read(path, sort):
    table = pq.read_table(path)
    return table.sort_by([(c, "ascending") for c in sort]).to_pylist()


def _stages(out):
    stats = json.loads((out / "stats.json").read_text())
    for s in stats["stages"]:
        s.pop("seconds")
        s["details"].pop("spark", None)  # what Spark ran: the Spark engine only
    return stats


@pytest.mark.parametrize(
    "options", [["--keep", "smallest-id"], ["--keep", "longest"], ["--keep", "score:score"], ["--unit", "char", "--ngram", "7", "--no-verify"]]
)
def test_local_engine_equals_spark_engine(spark, tmp_path, options):
    _messy_corpus(tmp_path / "in", random.Random(5))
    outs = {}
    for engine in ("spark", "local"):
        outs[engine] = tmp_path / engine
        assert (
            main(
                [
                    "--quiet",
                    "dedup",
                    str(tmp_path / "in"),
                    str(outs[engine]),
                    *options,
                    "--engine",
                    engine,
                    *(["--threads", "2"] if engine == "local" else []),
                ]
            )
            == 0
        )
    s, loc = (_stages(outs[e]) for e in ("spark", "local"))
    assert loc["engine"] == "local" and s["engine"] == "spark"
    assert loc["stages"] == s["stages"]
    assert (loc["documents_in"], loc["kept"], loc["removed"], loc["quarantined"]) == (s["documents_in"], s["kept"], s["removed"], s["quarantined"])
    assert s["quarantined"] == {"invalid_utf8": 1, "malformed_json": 2, "missing_text": 1}
    assert s["removed"]["empty_text"] == 2 and s["removed"]["near_duplicate"] > 5 and s["removed"]["exact_duplicate"] >= 3
    assert _read(outs["local"] / "kept", ["id"]) == _read(outs["spark"] / "kept", ["id"])
    assert _read(outs["local"] / "removed", ["id"]) == _read(outs["spark"] / "removed", ["id"])
    assert _read(outs["local"] / "quarantine", ["source_file", "source_line"]) == _read(outs["spark"] / "quarantine", ["source_file", "source_line"])
    kept_cols = pq.read_schema(outs["local"] / "kept" / "part-00000.parquet").names
    assert set(kept_cols) == {"id", "text", "score", "source"}  # the input's own `source` column is back under its name


def test_local_engine_quarantines_repeated_given_ids_like_spark(spark, tmp_path):
    rng = random.Random(2)
    texts = [_doc(rng) for _ in range(20)]
    ids = [f"d{i:02d}" for i in range(20)]
    ids[7] = ids[3]  # a repeated id: the later record is quarantined
    pq.write_table(pa.table({"doc": ids, "body": texts, "n": list(range(20))}), tmp_path / "in.parquet")
    for engine in ("spark", "local"):
        assert (
            main(
                [
                    "--quiet",
                    "dedup",
                    str(tmp_path / "in.parquet"),
                    str(tmp_path / engine),
                    "--id-column",
                    "doc",
                    "--text-column",
                    "body",
                    "--engine",
                    engine,
                ]
            )
            == 0
        )
    s, loc = (_stages(tmp_path / e) for e in ("spark", "local"))
    assert loc["stages"] == s["stages"] and s["quarantined"] == {"duplicate_id": 1}
    assert _read(tmp_path / "local" / "quarantine", ["source_line"]) == _read(tmp_path / "spark" / "quarantine", ["source_line"])
    assert _read(tmp_path / "local" / "kept", ["doc"]) == _read(tmp_path / "spark" / "kept", ["doc"])


def test_local_engine_output_is_deterministic(tmp_path):
    _messy_corpus(tmp_path / "in", random.Random(8))
    digests = []
    for run in ("a", "b"):
        assert main(["--quiet", "dedup", str(tmp_path / "in"), str(tmp_path / run), "--engine", "local", "--threads", "2"]) == 0
        outputs = json.loads((tmp_path / run / "stats.json").read_text())["outputs"]
        digests.append({k: [s["sha256"] for s in v["shards"]] for k, v in outputs.items()})
    assert digests[0] == digests[1]


def test_local_engine_refuses_an_input_larger_than_memory(tmp_path, monkeypatch, capsys):
    import connectors.local_ingest as li

    _messy_corpus(tmp_path / "in", random.Random(1))
    monkeypatch.setattr(li, "available_memory", lambda: 1024)
    assert main(["dedup", str(tmp_path / "in"), str(tmp_path / "out"), "--engine", "local"]) == 2
    err = capsys.readouterr().err
    assert "the local engine needs about" in err and "--engine spark" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    sizes = li.uncompressed_bytes(li.SourceSpec(name="in", path=str(tmp_path / "in")))
    assert sizes == sum(p.stat().st_size for p in (tmp_path / "in").iterdir())  # plain JSONL: the file sizes


def test_a_missing_keep_score_column_is_a_user_error_in_both_engines(spark, tmp_path, capsys):
    _messy_corpus(tmp_path / "in", random.Random(3))
    for engine in ("local", "spark"):
        assert main(["dedup", str(tmp_path / "in"), str(tmp_path / engine), "--keep", "score:nope", "--engine", engine]) == 2
        err = capsys.readouterr().err
        assert "keep score column 'nope' is not a column of the input" in err and "Traceback" not in err
