"""Golden outputs of the dedup decisions, without Spark: which documents each keep rule removes,
which kept document each points to (``duplicate_of``), the kind, the cluster size and the reason,
on the messy corpus of tests/test_dedup_local.py. `test_local_engine_equals_spark_engine` there
holds the Spark engine to the same rows, so a change to either engine's decision logic fails here
or there; the incremental case (the corpus's second file against an index of its first) is held to
the Spark engine by tests/test_dedup_cli.py. After an intended change: ``TIERLAKE_UPDATE_GOLDEN=1 pytest tests/test_dedup_golden.py``,
then review the diff of tests/golden/."""

import json
import os
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from tests.test_dedup_local import _messy_corpus

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "smallest_id": ["--keep", "smallest-id"],
    "longest": ["--keep", "longest"],
    "score": ["--keep", "score:score"],
    "char_unverified": ["--unit", "char", "--ngram", "7", "--no-verify"],
}


def _decisions(out: Path) -> dict:
    removed = pq.read_table(out / "removed", columns=["id", "duplicate_of", "kind", "cluster_size", "reason"])
    stats = json.loads((out / "stats.json").read_text())
    return {
        "removed": sorted(removed.to_pylist(), key=lambda r: r["id"]),
        "kept": sorted(pq.read_table(out / "kept", columns=["id"]).column(0).to_pylist()),
        "stages": [{k: s[k] for k in ("name", "docs_in", "docs_out", "removed", "quarantined")} for s in stats["stages"]],
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_dedup_decisions_match_the_golden_rows(tmp_path, case):
    _messy_corpus(tmp_path / "in", random.Random(5))
    assert main(["--quiet", "dedup", str(tmp_path / "in"), str(tmp_path / "out"), *CASES[case], "--engine", "local", "--threads", "2"]) == 0
    got = _decisions(tmp_path / "out")
    path = GOLDEN / f"dedup_{case}.json"
    if os.environ.get("TIERLAKE_UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    assert got["stages"] == want["stages"]
    assert got["removed"] == want["removed"]
    assert got["kept"] == want["kept"]


def test_incremental_dedup_decisions_match_the_golden_rows(tmp_path):
    """Index semantics of the shared decisions: a new document whose key or component holds an indexed
    document is removed in favour of the smallest indexed id, with the indexed members counted."""
    _messy_corpus(tmp_path / "in", random.Random(5))
    for part in ("a", "b"):
        (tmp_path / part).mkdir()
        (tmp_path / part / f"{part}.jsonl").write_bytes((tmp_path / "in" / f"{part}.jsonl").read_bytes())
    idx = tmp_path / "index"
    for part in ("a", "b"):
        assert (
            main(
                ["--quiet", "dedup", str(tmp_path / part), str(tmp_path / f"out-{part}"), "--index", str(idx), "--engine", "local", "--threads", "2"]
            )
            == 0
        )
    got = _decisions(tmp_path / "out-b")
    path = GOLDEN / "dedup_incremental.json"
    if os.environ.get("TIERLAKE_UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    assert got == want
    indexed = set(_decisions(tmp_path / "out-a")["kept"])
    assert {r["kind"] for r in got["removed"] if r["duplicate_of"] in indexed} == {"exact", "near"}
