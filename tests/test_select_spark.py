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
    targets.write_text("".join(json.dumps({"question": " ".join(rng.choice(WORDS["math"], 30)), "answer": "42"}) + "\n" for _ in range(40)))
    plain, aligned = tmp_path / "plain", tmp_path / "aligned"
    assert main(["--quiet", "select", str(run), str(plain), "--budget", "20000"]) == 0
    assert main(["--quiet", "select", str(run), str(aligned), "--budget", "20000", "--alignment-weight", "0.3", "--targets", str(targets)]) == 0

    def share(out):
        pools = json.loads((out / "selection" / "mix.json").read_text())["pools"]
        return sum(p["share"] for p in pools if p["pool"].startswith("mathsite"))

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


def _laws_file(tmp_path, pools_b):
    """A laws.json as `tierlake probe` writes it (no projektor), with planted per-pool laws."""
    laws = {
        "unit": "bytes",
        "recipe": "tiny",
        "benchmarks": ["bench"],
        "pools": list(pools_b),
        "pool_bytes": {},
        "qqt_heldout": {},
        "projektor": None,
        "qqt": {name: {"a": 0.2, "b": b, "tau": 2.0, "d": d, "sse": 0.0, "points": 12, "r2_in_sample": 1.0} for name, (b, d) in pools_b.items()},
        "qqt_points": {name: {"unique": [1e4, 1e4], "seen": [1e4, 2e4], "measured": [3.0, 2.9], "predicted": [3.0, 2.9]} for name in pools_b},
    }
    path = tmp_path / "laws.json"
    path.write_text(json.dumps(laws))
    return path


def test_select_from_fitted_laws_avoids_a_useless_pool_and_says_so(spark, tmp_path, capsys):
    run = _tiered_run(tmp_path / "run", seed=2)
    laws = _laws_file(
        tmp_path, {"mathsite/L2": (-0.30, 1.2), "mathsite/L3": (-0.35, 1.1), "fiction/L2": (-0.002, 2.5)}
    )  # no law for fiction/L3: not selected
    out = tmp_path / "sel"
    assert main(["select", str(run), str(out), "--budget", "20000", "--laws", str(laws)]) == 0
    printed = capsys.readouterr().out
    assert "from fitted laws: predicted target loss" in printed
    mix = json.loads((out / "selection" / "mix.json").read_text())
    assert mix["basis"] == "fitted laws" and mix["predicted_loss"] > 0 and mix["predicted_accuracy"] is None
    shares = {p["pool"]: p for p in mix["pools"]}
    assert shares["fiction/L2"]["share"] < 0.02 and shares["fiction/L3"]["share"] == 0
    assert shares["fiction/L3"]["law"] == "no fitted law: not selected"
    assert shares["mathsite/L2"]["share"] + shares["mathsite/L3"]["share"] > 0.98
    assert mix["parameters"]["evidence"]["laws"]["fiction/L2"]["b"] == -0.002
    # without laws the mix says it follows priors
    plain = tmp_path / "plain"
    assert main(["select", str(run), str(plain), "--budget", "20000"]) == 0
    assert "mix follows priors" in capsys.readouterr().out
    assert json.loads((plain / "selection" / "mix.json").read_text())["basis"] == "priors"
    # a laws file for other pools is a one-line user error
    other = _laws_file(tmp_path, {"news/L2": (-0.3, 1.0)})
    assert main(["select", str(run), str(tmp_path / "o"), "--budget", "20000", "--laws", str(other)]) == 2
    assert "lacks" in capsys.readouterr().err


def test_betr_scores_order_the_partial_pass_and_keep_top(spark, tmp_path):
    run = _tiered_run(tmp_path / "run", seed=3)
    docs = pl.read_parquet(str(run / "documents" / "*" / "*.parquet"), hive_partitioning=True)
    # a BETR score per document, as a curate run writes it under scores/scores/
    scores = docs.select("id").with_columns(betr_score=pl.Series(np.random.default_rng(0).random(docs.height)))
    os.makedirs(run / "scores" / "scores")
    scores.write_parquet(run / "scores" / "scores" / "part-00000.parquet")
    out = tmp_path / "sel"
    assert main(["--quiet", "select", str(run), str(out), "--budget", "2000"]) == 0
    mix = json.loads((out / "selection" / "mix.json").read_text())
    assert mix["parameters"]["order"] == "betr_score"
    rows = _read(out)
    ranked = scores.join(docs.select("id", "source", "tier", "token_count"), on="id")
    for p in mix["pools"]:
        if 0 < p["epochs"] < 1:  # a partial pass: exactly the best-scored documents, in order
            source, tier = p["pool"].split("/")
            pool = ranked.filter((pl.col("source") == source) & (pl.col("tier") == tier)).sort(["betr_score", "id"], descending=[True, False])
            picked = set(rows.filter(pl.col("pool") == p["pool"])["id"])
            assert picked and picked == set(pool["id"][: len(picked)])
    # keep the top 50% of every pool's tokens by score: nothing below it is ever selected
    top = tmp_path / "top"
    assert main(["--quiet", "select", str(run), str(top), "--budget", "2000", "--keep-top", "0.5"]) == 0
    stats = json.loads((top / "stats.json").read_text())["stages"][0]
    assert stats["removed"]["below_keep_top"] > 0
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    worst = set()
    for (source, tier), pool in ranked.filter(pl.col("tier") != "L0").group_by(["source", "tier"]):
        pool = pool.sort(["betr_score", "id"], descending=[True, False])
        before = pool["token_count"].cum_sum() - pool["token_count"]
        worst |= set(pool.filter(before >= 0.5 * pool["token_count"].sum())["id"])
    assert not (set(_read(top)["id"]) & worst)
