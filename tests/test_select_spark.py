"""`tierlake select` on Spark: pools from tiers, the mix within repetition caps, deterministic
materialization with repeats, alignment toward the targets, clear errors."""
import json
import os

import numpy as np
import polars as pl
import pytest

from flows.cli import main

pytestmark = pytest.mark.spark

WORDS = {
    "math": "sum product equation integer fraction solve total divide multiply answer".split(),
    "story": "castle dragon forest knight journey river village queen sword night".split(),
}


def _tiered_run(root, seed=0):
    """A `tierlake tier`-shaped output: documents/tier=L*/part.parquet with source and token_count."""
    rng = np.random.default_rng(seed)
    for tier, n in (("L0", 40), ("L2", 120), ("L3", 60)):
        rows = []
        for source, topic in (("mathsite", "math"), ("fiction", "story")):
            for i in range(n):
                text = " ".join(rng.choice(WORDS[topic], size=int(rng.integers(40, 80))))
                rows.append({"id": f"{source}-{tier}-{i}", "text": text, "source": source, "token_count": len(text.split())})
        os.makedirs(root / "documents" / f"tier={tier}", exist_ok=True)
        pl.DataFrame(rows).write_parquet(root / "documents" / f"tier={tier}" / "part-00000.parquet")
    return root


def _read(out):
    return pl.read_parquet(str(out / "selection" / "documents" / "*.parquet"))


def test_select_mix_caps_repeats_and_determinism(spark, tmp_path, capsys):
    run = _tiered_run(tmp_path / "run")
    out = tmp_path / "sel"
    assert main(["select", str(run), str(out), "--budget", "30000", "--max-epochs", "3"]) == 0
    printed = capsys.readouterr().out
    assert "select: budget 30,000 tokens" in printed
    stats = json.loads((out / "stats.json").read_text())
    mix = json.loads((out / "selection" / "mix.json").read_text())
    rows = _read(out)
    assert not rows["id"].str.contains("-L0-").any()  # L0 is never eligible
    assert {p["pool"] for p in mix["pools"]} == {"mathsite/L2", "mathsite/L3", "fiction/L2", "fiction/L3"}
    assert sum(p["share"] for p in mix["pools"]) == pytest.approx(1)
    for p in mix["pools"]:
        assert p["epochs"] <= 3 + 1e-6
        got = rows.filter(pl.col("pool") == p["pool"])
        assert got.height == p["selected_rows"] and got["token_count"].sum() == p["selected_tokens"]
        if p["share"] > 0:
            assert got["repeat"].max() <= int(np.ceil(p["epochs"]))
            # every document of a pool appears floor(e) or floor(e)+1 times
            counts = got.group_by("id").len()["len"]
            assert counts.min() >= int(np.floor(p["epochs"])) or got["id"].n_unique() < p["pool_documents"]
            assert counts.max() <= int(np.floor(p["epochs"])) + 1
            assert p["selected_tokens"] == pytest.approx(p["tokens"], rel=0.25)  # hash-sampled fraction
    # higher tiers have the stronger prior utility: L3 gets more than its size share
    l3 = sum(p["share"] for p in mix["pools"] if p["pool"].endswith("/L3"))
    l3_size = sum(p["pool_tokens"] for p in mix["pools"] if p["pool"].endswith("/L3")) / sum(p["pool_tokens"] for p in mix["pools"])
    assert l3 > l3_size
    # the stage accounts for every tiered document
    st = stats["stages"][0]
    assert st["docs_in"] == 2 * (40 + 120 + 60) == st["docs_out"] + sum(st["removed"].values())
    assert st["removed"]["tier_not_eligible"] == 80
    # same input, same seed -> the same rows
    out2 = tmp_path / "sel2"
    assert main(["--quiet", "select", str(run), str(out2), "--budget", "30000", "--max-epochs", "3"]) == 0
    assert _read(out2).sort(["id", "repeat"]).equals(rows.sort(["id", "repeat"]))


def test_alignment_moves_the_mix_toward_the_targets(spark, tmp_path):
    run = _tiered_run(tmp_path / "run", seed=1)
    targets = tmp_path / "targets.jsonl"
    rng = np.random.default_rng(5)
    targets.write_text("".join(json.dumps({"question": " ".join(rng.choice(WORDS["math"], 30)), "answer": "42"}) + "\n"
                               for _ in range(40)))
    plain, aligned = tmp_path / "plain", tmp_path / "aligned"
    assert main(["--quiet", "select", str(run), str(plain), "--budget", "20000"]) == 0
    assert main(["--quiet", "select", str(run), str(aligned), "--budget", "20000", "--alignment-weight", "0.3",
                 "--targets", str(targets)]) == 0
    share = lambda out: sum(p["share"] for p in json.loads((out / "selection" / "mix.json").read_text())["pools"]  # noqa: E731
                            if p["pool"].startswith("mathsite"))
    mix = json.loads((aligned / "selection" / "mix.json").read_text())
    assert share(aligned) > share(plain) + 0.2
    assert mix["alignment_ot"] < mix["uniform_ot"]


def test_select_errors_are_user_errors(spark, tmp_path, capsys):
    run = _tiered_run(tmp_path / "run")
    assert main(["select", str(tmp_path), str(tmp_path / "o"), "--budget", "1000"]) == 2
    assert "no tiered documents" in capsys.readouterr().err
    assert main(["select", str(run), str(tmp_path / "o"), "--budget", "1e9"]) == 2
    assert "raise max_epochs or lower the budget" in capsys.readouterr().err
    assert main(["select", str(run), str(tmp_path / "o"), "--budget", "1000", "--tiers", "L0"]) == 2
    assert "L0 is never selected" in capsys.readouterr().err
    assert main(["select", str(run), str(tmp_path / "o"), "--budget", "1000", "--alignment-weight", "0.1"]) == 2
    assert "needs select.targets" in capsys.readouterr().err
