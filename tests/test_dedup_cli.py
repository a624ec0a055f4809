"""`tierlake dedup`: outputs, input columns kept, incremental runs against a saved index."""

import json
import random

import pyarrow.parquet as pq
import pytest

from flows.cli import main

VOCAB = [f"{a}{b}{c}" for a in "bcdfgklmnp" for b in "aeiou" for c in "rstnl"]


def _doc(rng, n=120):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def _near(text):
    toks = text.split()
    toks[10] = "qqq"  # one substitution in 120 words: J = 111 / 121 ~ 0.92
    return " ".join(toks)


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("engines", [("spark", "spark"), ("local", "local"), ("spark", "local")])
def test_dedup_cli_incremental_against_index(spark, tmp_path, capsys, engines):
    rng = random.Random(9)
    base = [_doc(rng) for _ in range(30)]
    batch1 = [{"doc_id": f"a{i:02d}", "body": t, "lang": "xx"} for i, t in enumerate(base)]
    batch1.append({"doc_id": "a99", "body": _near(base[0]), "lang": "xx"})  # near dup inside batch 1
    _write(tmp_path / "b1" / "part.jsonl", batch1)
    idx = tmp_path / "index"
    assert (
        main(
            [
                "dedup",
                str(tmp_path / "b1"),
                str(tmp_path / "out1"),
                "--text-column",
                "body",
                "--id-column",
                "doc_id",
                "--bands",
                "14",
                "--rows",
                "8",
                "--index",
                str(idx),
                "--engine",
                engines[0],
            ]
        )
        == 0
    )
    s1 = json.loads((tmp_path / "out1" / "stats.json").read_text())
    assert s1["kept"] == 30 and s1["removed"] == {"near_duplicate": 1}
    kept1 = pq.read_table(tmp_path / "out1" / "kept")
    assert set(kept1.column_names) == {"doc_id", "body", "lang"}
    removed1 = pq.read_table(tmp_path / "out1" / "removed").to_pylist()
    assert removed1[0]["id"] == "a99" and removed1[0]["duplicate_of"] == "a00" and removed1[0]["kind"] == "near"

    batch2 = [
        {"doc_id": "b00", "body": base[3], "lang": "yy"},  # exact copy of a03
        {"doc_id": "b01", "body": _near(base[5]), "lang": "yy"},  # near copy of a05
        {"doc_id": "b02", "body": _doc(rng), "lang": "yy"},  # new
        {"doc_id": "b03", "body": base[7].upper(), "lang": "yy"},
    ]  # exact after normalization
    _write(tmp_path / "b2" / "part.jsonl", batch2)
    assert (
        main(
            [
                "dedup",
                str(tmp_path / "b2"),
                str(tmp_path / "out2"),
                "--text-column",
                "body",
                "--id-column",
                "doc_id",
                "--bands",
                "14",
                "--rows",
                "8",
                "--index",
                str(idx),
                "--engine",
                engines[1],
            ]
        )
        == 0
    )
    s2 = json.loads((tmp_path / "out2" / "stats.json").read_text())
    removed2 = {r["id"]: r for r in pq.read_table(tmp_path / "out2" / "removed").to_pylist()}
    assert {k: (v["duplicate_of"], v["kind"]) for k, v in removed2.items()} == {
        "b00": ("a03", "exact"),
        "b03": ("a07", "exact"),
        "b01": ("a05", "near"),
    }
    assert s2["kept"] == 1 and s2["index"]["runs_before"] == 1
    meta = json.loads((idx / "index.json").read_text())
    assert [r["documents"] for r in meta["runs"]] == [30, 1]

    capsys.readouterr()
    assert main(["dedup", str(tmp_path / "b2"), str(tmp_path / "out3"), "--text-column", "body", "--num-perm", "64", "--index", str(idx)]) == 2
    assert "built with other parameters" in capsys.readouterr().err


def test_dedup_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["dedup", str(tmp_path), str(tmp_path / "o"), "--bands", "20", "--rows", "8", "--num-perm", "112"]) == 2
    assert "exceeds num_perm" in capsys.readouterr().err
    assert main(["dedup", str(tmp_path), str(tmp_path / "o"), "--engine", "local", "--master", "local[2]"]) == 2
    assert "--master is a Spark option" in capsys.readouterr().err
    assert main(["dedup", str(tmp_path), str(tmp_path / "o"), "--threads", "2"]) == 2
    assert "--threads is for --engine local" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_reports_a_missing_input_before_spark_starts(tmp_path, capsys):
    for cmd in (["dedup", str(tmp_path / "nope"), str(tmp_path / "o")], ["containment", str(tmp_path / "nolake"), str(tmp_path / "o")]):
        assert main(cmd) == 2
        assert f"input not found: {cmd[1]}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_quiet_is_accepted_before_or_after_the_command():
    from flows.cli import parse

    assert parse(["dedup", "in", "out", "--quiet"])[1].quiet
    assert parse(["--quiet", "tier", "in", "out"])[1].quiet
    assert parse(["containment", "plan", "out", "--quiet"])[1].quiet
    assert not parse(["score", "in", "out", "--targets", "t.jsonl"])[1].quiet
