"""Reading a run's documents: the row-group reader and stable sampling (no Spark), and
`tierlake inspect` on the demo run for each of its options."""

import json
import os

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.run_outputs import Dataset, hash_sample, stable_hash
from curation.heuristic_filters import HeuristicFilters

# --- kernels, no Spark ------------------------------------------------------------------------


def test_stable_hash_is_fixed_and_seeded():
    h = stable_hash(["a", "b", "", None], seed=0)
    assert h.dtype == np.uint64 and len(set(h.tolist())) == 3 and h[2] == h[3]  # null hashes as ""
    # golden values: the sample a run shows must not change with the machine or a library version
    assert stable_hash(["doc-1"], 0)[0] == stable_hash(pa.chunked_array([["x", "doc-1"]]).slice(1), 0)[0]
    assert int(stable_hash(["doc-1"], 0)[0]) == 13915453443274895425  # XXH3-64 of b"doc-1", seed 0
    assert stable_hash(["doc-1"], 1)[0] != stable_hash(["doc-1"], 0)[0]


def test_hash_sample_per_group_is_deterministic():
    df = pl.DataFrame({"id": [f"d{i}" for i in range(1000)], "g": ["a", "b"] * 500})
    one = hash_sample(df, ["g"], 5, seed=3)
    assert one.group_by("g").len().sort("g")["len"].to_list() == [5, 5]
    assert one.equals(hash_sample(df.reverse(), ["g"], 5, seed=3))  # input order does not matter
    assert not one.equals(hash_sample(df, ["g"], 5, seed=4))


def test_dataset_fetch_reads_the_right_rows_across_files_and_row_groups(tmp_path):
    root = tmp_path / "run"
    for part, tier in enumerate(["L1", "L2"]):
        folder = root / "docs" / f"tier={tier}"
        folder.mkdir(parents=True)
        ids = [f"{tier}-{i}" for i in range(250)]
        pq.write_table(pa.table({"id": ids, "text": [f"text of {i}" for i in ids]}), folder / "part-0.parquet", row_group_size=40)
    ds = Dataset.open(str(root), "docs")
    index = ds.scan(["id", "tier"])
    assert index.height == 500 and set(index["tier"]) == {"L1", "L2"}
    want = index.filter(pl.col("id").is_in(["L2-249", "L1-0", "L1-123", "L2-41"]))[[3, 0, 2, 1]]
    got = ds.fetch(want, ["id", "text", "tier"])
    assert got["id"].to_list() == want["id"].to_list()
    assert got["text"].to_list() == [f"text of {i}" for i in want["id"]] and got["tier"].to_list() == want["tier"].to_list()
    # a scan of one partition keeps the files' global positions: its rows fetch the same documents
    l2 = ds.scan(["id", "tier"], tier=["L2"])
    assert l2.height == 250 and set(l2["tier"]) == {"L2"}
    assert ds.fetch(l2.tail(3), ["id"])["id"].to_list() == l2.tail(3)["id"].to_list()


def test_filter_rules_compile_from_one_definition_and_explain_their_threshold():
    filters = HeuristicFilters()
    specs = filters.rule_specs()
    assert [n for n, _ in filters.rules()] == [s.name for s in specs]
    signals = pl.DataFrame({"n_non_symbol_words": [10, 80], "lang": ["en", "fr"], "lang_score": [0.9, 0.95]})
    short = next(s for s in specs if s.name == "gopher_short_doc")
    assert signals.select(short.fails())["n_non_symbol_words"].to_list() == [True, False]
    assert short.explain(10) == "n_non_symbol_words 10 < 50"
    lang = next(s for s in specs if s.name == "language")
    assert signals.select(lang.fails()).to_series().to_list() == [False, True]
    assert "lang fr" in lang.explain(0.95, "fr") and ">= 0.65" in lang.explain(0.95, "fr")


# --- `tierlake inspect` on the demo run --------------------------------------------------------


def _inspect(capsys, out, *args) -> list[dict]:
    from flows.cli import main

    capsys.readouterr()
    assert main(["inspect", out, "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.mark.spark
@pytest.mark.prefect
def test_inspect_each_option_on_the_demo_run(demo_run, capsys):
    from flows.cli import main
    from tiers.samples import reasons

    _, out = demo_run
    tiered = pl.read_parquet(os.path.join(out, "tiers", "documents", "**", "*.parquet"), hive_partitioning=True)
    scores = pl.read_parquet(os.path.join(out, "scores", "scores", "*.parquet"))
    # default: a seeded sample of 10, the same every time, different for another seed
    first = _inspect(capsys, out)
    assert len(first) == 10 and first == _inspect(capsys, out)
    assert [d["id"] for d in _inspect(capsys, out, "--seed", "99")] != [d["id"] for d in first]
    # --tier, --source, --n
    l2 = _inspect(capsys, out, "--tier", "L2", "--n", "4")
    assert len(l2) == 4 and all(d["tier"] == "L2" for d in l2)
    forum = _inspect(capsys, out, "--source", "forum", "--tier", "L3", "--n", "3")
    assert len(forum) == 3 and all(d["source"] == "forum" and d["tier"] == "L3" for d in forum)
    # the texts are the documents' own
    texts = dict(zip(tiered["id"], tiered["text"]))
    assert all(texts[d["id"]].startswith(d["text"]) for d in l2 + forum)
    # --reason: a filter rule, with its value against its threshold, and the value really fails it
    listed = reasons(out)
    rule = next(k.split(": ", 1)[1] for k in listed if k.startswith("L0: ") and k.split(": ", 1)[1].startswith("gopher_"))
    failed = _inspect(capsys, out, "--reason", rule, "--n", "3")
    assert failed and all(d["reason"] == rule and d["tier"] == "L0" for d in failed)
    for d in failed:
        column, value, op, threshold = d["decided"].split(": ", 1)[1].split(" ")
        assert (float(value) < float(threshold)) if op == "<" else (float(value) > float(threshold))
    # duplicates and quarantine reasons
    near = _inspect(capsys, out, "--reason", "near_duplicate", "--n", "2")
    assert near and all(d["decided"].startswith("near_duplicate of ") for d in near)
    quarantined = _inspect(capsys, out, "--reason", "malformed_json")
    assert len(quarantined) == 3 and all(d["reason"] == "malformed_json" and ".jsonl" in d["id"] for d in quarantined)
    # --sort (highest first), --ascending
    top = _inspect(capsys, out, "--sort", "betr_score", "--n", "5")
    best = scores.sort(["betr_score", "id"], descending=[True, False]).head(5)
    assert [d["id"] for d in top] == best["id"].to_list()
    low = _inspect(capsys, out, "--sort", "quality_score", "--ascending", "--n", "5")
    q = [d["quality_score"] for d in low]
    assert q == sorted(q) and q[0] == tiered["quality_score"].min()
    # --full keeps whole texts, --chars cuts them
    cut = _inspect(capsys, out, "--tier", "L3", "--n", "2", "--chars", "20")
    assert all(len(d["text"]) <= 20 for d in cut)
    whole = _inspect(capsys, out, "--tier", "L3", "--n", "2", "--full")
    assert [d["text"] for d in whole] == [texts[d["id"]] for d in whole]
    # --list-reasons: every document counted once
    assert sum(v for k, v in listed.items() if not k.startswith("quarantine")) == tiered.height
    capsys.readouterr()
    assert main(["inspect", out, "--list-reasons", "--no-pager"]) == 0
    assert f"L0: {rule}" in capsys.readouterr().out
    # the terminal view: header, deciding signals, wrapped text
    assert main(["inspect", out, "--reason", rule, "--n", "1", "--no-pager"]) == 0
    shown = capsys.readouterr().out
    assert "decided by: " + rule in shown and "[1] " in shown
    # user mistakes: one line, exit 2
    assert main(["inspect", out, "--tier", "L7"]) == 2
    assert main(["inspect", os.path.dirname(out), "--tier", "L2"]) == 2
    err = capsys.readouterr().err
    assert "tier must be one of" in err and "no manifest.json" in err and "Traceback" not in err
