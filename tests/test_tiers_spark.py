"""`tierlake tier` and `tierlake retier` on Spark against the demo lake's ground truth, and the
refiner against a real HTTP server on 127.0.0.1."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import polars as pl
import pytest

from flows.cli import main

pytestmark = pytest.mark.spark


def _policy_file(tmp_path, lake, **extra):
    lines = [
        "quality_training:",
        f"  positive: [{lake}/quality/positive.jsonl]",
        f"  negative: [{lake}/quality/negative.jsonl]",
        f"targets: [{lake}/targets/math_train.jsonl]",
        "source_filters:",
        "  lessons.csv: {gopher_quality: {min_alpha_words_ratio: 0.5}}",
    ] + [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / "policy.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _assert_same_rows(a, b, dataset: str, key: str) -> None:
    """The Parquet rows of ``dataset`` under two output folders are equal (sorted by ``key``)."""
    read = [pl.read_parquet(str(root / dataset / "*.parquet"), hive_partitioning=True).sort(key) for root in (a, b)]
    assert read[0].columns == read[1].columns and read[0].equals(read[1]), dataset


def test_tier_cli_every_document_once_and_l4_verified(spark, demo_lake, tmp_path, capsys):
    lake, _ = demo_lake
    out = tmp_path / "tiers"
    src = os.path.join(lake, "corpus", "mathcourse", "lessons.csv")
    assert main(["tier", src, str(out), "--recipe", _policy_file(tmp_path, lake), "--id-column", "lesson_id"]) == 0
    printed = capsys.readouterr().out
    assert "quality model: cross-validated AUC" in printed and "L4 units:" in printed
    stats = json.loads((out / "stats.json").read_text())
    docs = pl.read_parquet(str(out / "documents" / "**" / "*.parquet"), hive_partitioning=True)
    n_in = stats["documents_in"]
    assert docs.height == n_in == docs["id"].n_unique() == stats["documents_out"]
    assert sum(stats["tiers"].values()) == n_in and set(docs["tier"].unique()) <= {"L0", "L1", "L2", "L3", "L4"}
    assert docs["tier_reasons"].list.len().min() >= 1  # every document says why it stopped there
    truth = pl.read_parquet(os.path.join(lake, "ground_truth", "documents.parquet")).filter(pl.col("source") == "mathcourse")
    j = docs.join(truth, left_on="id", right_on="key")
    assert j.height == n_in
    l4 = j.filter(pl.col("tier") == "L4")
    assert l4.height > 0 and l4["arith_correct"].all()  # verification precision 1.0
    wrong = j.filter(~pl.col("arith_correct") & pl.col("tier").is_in(["L3", "L4"]))
    assert wrong.height > 0 and (wrong["tier"] == "L3").all()
    assert all(any("arithmetic_wrong" in r for r in rs) for rs in wrong["tier_reasons"].to_list())
    units = pl.read_parquet(str(out / "units" / "*.parquet"))
    texts = dict(zip(docs["id"].to_list(), docs["text"].to_list()))
    for u in units.iter_rows(named=True):
        span = texts[u["id"]][u["start"] : u["end"]]
        assert span.startswith("Question:") and span.rstrip().endswith(u["answer"])
    assert stats["l4_units_verified"] == units.height == l4.height
    tier_stage = next(s for s in stats["stages"] if s["name"] == "tier")
    steps = tier_stage["details"]["step_seconds"]  # where the stage's time went, one entry per materialized step
    assert list(steps) == ["signals and filters", "thresholds", "tiers L0-L3", "knowledge units (L4)", "documents with tiers (joins)", "counts"]
    assert all(v >= 0 for v in steps.values()) and sum(steps.values()) <= tier_stage["seconds"] + 0.01

    # the one-process engine: the same command, the same outputs
    local = tmp_path / "tiers-local"
    cmd = ["--quiet", "tier", src, str(local), "--recipe", _policy_file(tmp_path, lake), "--id-column", "lesson_id", "--engine", "local"]
    assert main(cmd + ["--threads", "2"]) == 0
    local_stats = json.loads((local / "stats.json").read_text())
    assert (stats["engine"], local_stats["engine"]) == ("spark", "local")
    for field in ("documents_in", "documents_out", "tiers", "thresholds", "filter_failures", "l4_units_verified", "by_tier_and_source"):
        assert local_stats[field] == stats[field], field
    for name, key in (("documents/**", "id"), ("signals", "id"), ("units", "unit_id"), ("units_rejected", "unit_id")):
        _assert_same_rows(out, local, name, key)

    # re-tier with a looser L3 bar from the stored signals: more L3/L4, signals unchanged
    looser = _policy_file(tmp_path, lake, l3="{quality: {threshold: 0.5}, alignment_column: target_similarity, alignment: {threshold: 0.0}}")
    out2 = tmp_path / "retier"
    assert main(["retier", str(out), str(out2), "--recipe", looser]) == 0
    docs2 = pl.read_parquet(str(out2 / "documents" / "**" / "*.parquet"), hive_partitioning=True)
    assert docs2.height == n_in
    high = lambda d: d.filter(pl.col("tier").is_in(["L3", "L4"])).height  # noqa: E731
    assert high(docs2) >= high(docs)
    s1 = pl.read_parquet(str(out / "signals" / "*.parquet")).sort("id").drop("tier", "tier_reasons")
    s2 = pl.read_parquet(str(out2 / "signals" / "*.parquet")).sort("id").drop("tier", "tier_reasons")
    s2 = s2.select(s1.columns)
    diff = [c for c in s1.columns if not s1[c].equals(s2[c])]
    assert not diff, diff


def test_tier_cli_without_model_stops_at_l1_and_dedups(spark, demo_lake, tmp_path):
    lake, summary = demo_lake
    out = tmp_path / "t"
    assert main(["tier", os.path.join(lake, "corpus", "webcrawl"), str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tiers"]["L2"] == stats["tiers"]["L3"] == stats["tiers"]["L4"] == 0
    docs = pl.read_parquet(str(out / "documents" / "**" / "*.parquet"), hive_partitioning=True)
    reasons = docs.filter(pl.col("tier") == "L1")["tier_reasons"].to_list()
    assert reasons and all(r == ["quality_score: no quality model configured"] for r in reasons)
    dups = docs.filter(pl.col("tier_reasons").list.first().str.contains("_duplicate of "))
    assert dups.height > 0 and (dups["tier"] == "L0").all()
    assert docs.height == stats["documents_in"]


class _FakeLLM(BaseHTTPRequestHandler):
    seen_auth: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeLLM.seen_auth.append(self.headers.get("Authorization"))
        text = body["messages"][0]["content"]
        if "FAIL" in text:
            self.send_response(500)
            self.end_headers()
            return
        reply = {"choices": [{"message": {"role": "assistant", "content": "REWRITE: " + text[-20:]}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_refiner_calls_openai_compatible_endpoint(spark, monkeypatch):
    from tiers.policy import RefinerSettings
    from tiers.refiner import refine

    server = HTTPServer(("127.0.0.1", 0), _FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TIERLAKE_TEST_KEY", "sk-secret-123")
        settings = RefinerSettings(enabled=True, endpoint=f"http://127.0.0.1:{server.server_port}/v1", api_key_env="TIERLAKE_TEST_KEY", concurrency=2)
        docs = spark.createDataFrame([("a", "first document text"), ("b", "please FAIL here")], "id string, text string")
        rows = {r["id"]: r for r in refine(docs, settings).collect()}
        assert rows["a"]["refined_text"].startswith("REWRITE: ") and rows["a"]["refined_text"].endswith("first document text")
        assert rows["a"]["error"] is None
        assert rows["b"]["refined_text"] is None and rows["b"]["error"] == "HTTP 500"
        assert _FakeLLM.seen_auth and all(a == "Bearer sk-secret-123" for a in _FakeLLM.seen_auth)
        assert all("sk-secret" not in str(v) for r in rows.values() for v in r.asDict().values())
        down = settings.model_copy(update={"endpoint": "http://127.0.0.1:9/v1", "timeout_seconds": 2})
        err = refine(docs.limit(1), down).collect()[0]
        assert err["refined_text"] is None and err["error"].startswith("unreachable")
    finally:
        server.shutdown()


def test_refiner_of_the_one_process_engine_gives_the_same_rows(monkeypatch):
    import pyarrow as pa

    from tiers.policy import RefinerSettings
    from tiers.refiner import refine_local

    server = HTTPServer(("127.0.0.1", 0), _FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _FakeLLM.seen_auth = []
        monkeypatch.setenv("TIERLAKE_TEST_KEY", "sk-secret-123")
        settings = RefinerSettings(enabled=True, endpoint=f"http://127.0.0.1:{server.server_port}/v1", api_key_env="TIERLAKE_TEST_KEY", concurrency=2)
        docs = pa.table({"id": ["a", "b"], "text": ["first document text", "please FAIL here"], "other": [1, 2]})
        rows = {r["id"]: r for r in refine_local(docs, settings).to_pylist()}
        assert rows["a"]["refined_text"].startswith("REWRITE: ") and rows["a"]["error"] is None
        assert rows["b"]["refined_text"] is None and rows["b"]["error"] == "HTTP 500"
        assert _FakeLLM.seen_auth and all(a == "Bearer sk-secret-123" for a in _FakeLLM.seen_auth)
    finally:
        server.shutdown()


def test_score_cli_every_document_scored_and_leaks_flagged(spark, demo_lake, tmp_path, capsys):
    lake, _ = demo_lake
    out = tmp_path / "score"
    src = os.path.join(lake, "corpus", "forum")
    assert (
        main(
            [
                "score",
                src,
                str(out),
                "--targets",
                os.path.join(lake, "targets", "math_train.jsonl"),
                os.path.join(lake, "targets", "qa_dev.jsonl"),
                "--decontaminate",
                os.path.join(lake, "targets", "math_test.jsonl"),
                "--sample",
                "200",
                "--id-column",
                "id",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "held-out sampled documents: ROC-AUC" in printed
    stats = json.loads((out / "stats.json").read_text())
    scores = pl.read_parquet(str(out / "scores" / "*.parquet"))
    assert scores.height == stats["scored"] == stats["documents_in"] - sum(stats["quarantined"].values())
    assert scores["betr_score"].null_count() == 0 and scores["betr_rank_pct"].is_between(0, 100).all()
    flagged = set(scores.filter(pl.col("contaminated"))["id"].to_list())
    assert flagged == {f"post-leak-{k}" for k in range(10)}  # exactly the planted test-question leaks
    sample = pl.read_parquet(str(out / "sample.parquet"))
    assert sample.height == 200 and sample["label"].sum() == 20
    # two target benchmarks (math, qa): the positives are taken round-robin, ten each
    assert stats["evaluation"]["target_benchmarks"] == ["math", "qa"] and stats["evaluation"]["positives_by_benchmark"] == {"math": 10, "qa": 10}
    assert "sample positives by benchmark (balanced): math 10, qa 10" in printed
    # each sampled document's score is its cross-fitted one, from a model that did not see its label
    assert "cross-fitted over all 200 sampled documents" in printed and sample["crossfit_score"].null_count() == 0
    both = sample.join(scores, on="id")
    assert both.height == 200 and (both["betr_score"] - both["crossfit_score"]).abs().max() < 1e-12
    # QA threads resemble the qa_dev targets more than list posts do
    truth = pl.read_parquet(os.path.join(lake, "ground_truth", "documents.parquet")).filter(pl.col("source") == "forum")
    j = scores.join(truth, left_on="id", right_on="key")
    means = dict(j.group_by("kind").agg(pl.col("betr_rank_pct").mean()).iter_rows())
    assert means["qa"] > means["list"]
    # the one-process engine: the same command, the same scores, sample and model
    local = tmp_path / "score-local"
    local_cmd = ["--quiet", "score", src, str(local), "--targets", os.path.join(lake, "targets", "math_train.jsonl")]
    local_cmd += [os.path.join(lake, "targets", "qa_dev.jsonl"), "--decontaminate", os.path.join(lake, "targets", "math_test.jsonl")]
    assert main(local_cmd + ["--sample", "200", "--id-column", "id", "--engine", "local"]) == 0
    local_stats = json.loads((local / "stats.json").read_text())
    assert (stats["engine"], local_stats["engine"]) == ("spark", "local") and local_stats["scored"] == stats["scored"]
    assert {k: v for k, v in local_stats["evaluation"].items() if not k.endswith(("_per_s", "_seconds"))} == {
        k: v for k, v in stats["evaluation"].items() if not k.endswith(("_per_s", "_seconds"))
    }
    _assert_same_rows(out, local, "scores", "id")
    assert pl.read_parquet(str(local / "sample.parquet")).equals(sample)
    assert (local / "model" / "model.json").read_text() == (out / "model" / "model.json").read_text()
    assert main(["score", src, str(tmp_path / "x"), "--targets", "t.jsonl", "--engine", "local", "--master", "local[2]"]) == 2
    assert "--master is a Spark option" in capsys.readouterr().err
    # the n-grams + kernel classifier through the same Spark pass (embeddings and kernel features computed in the workers)
    emb_out = tmp_path / "score-emb"
    assert (
        main(
            [
                "score",
                src,
                str(emb_out),
                "--targets",
                os.path.join(lake, "targets", "qa_dev.jsonl"),
                "--sample",
                "200",
                "--id-column",
                "id",
                "--classifier-features",
                "ngrams+kernel",
            ]
        )
        == 0
    )
    capsys.readouterr()
    emb_scores = pl.read_parquet(str(emb_out / "scores" / "*.parquet")).join(truth, left_on="id", right_on="key")
    assert emb_scores.height == scores.height and emb_scores["betr_score"].null_count() == 0
    emb_means = dict(emb_scores.group_by("kind").agg(pl.col("betr_rank_pct").mean()).iter_rows())
    assert emb_means["qa"] > emb_means["list"]
    model = json.loads((emb_out / "model" / "model.json").read_text())
    assert model["params"]["features"] == "ngrams+kernel" and model["params"]["max_chars"] == 2000
    assert (emb_out / "model" / "landmarks.npy").is_file()  # the kernel's landmarks: 200 sampled documents' embeddings
    # a test split is never accepted as a target
    assert main(["score", src, str(tmp_path / "bad"), "--targets", os.path.join(lake, "targets", "math_test.jsonl")]) == 2
    assert "test split" in capsys.readouterr().err


def test_decontamination_exempts_template_ngrams(spark, tmp_path):
    from curation.params import ScoreParams
    from flows.score_job import run_score

    template = "please remember that all orders placed after noon on friday will ship on the following monday morning"
    leak = "a train leaves the station at nine and travels east at sixty miles per hour for exactly three hours"
    rows = [{"id": f"t{i:02d}", "text": f"Store notice {i}. {template}. Thanks for shopping with us."} for i in range(30)]
    rows += [
        {"id": "leak", "text": f"My homework says: {leak}. How far did it go?"},
        {"id": "clean", "text": "The river flooded the lower fields twice this spring."},
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t_train.jsonl").write_text(json.dumps({"text": "How far does a train travel in three hours?"}) + "\n")
    (tmp_path / "b_test.jsonl").write_text(json.dumps({"text": template}) + "\n" + json.dumps({"text": leak}) + "\n")
    params = ScoreParams(
        targets=[str(tmp_path / "t_train.jsonl")], decontaminate=[str(tmp_path / "b_test.jsonl")], sample=20, max_ngram_doc_frequency=10
    )
    stats = run_score(str(tmp_path / "in"), str(tmp_path / "out"), params, id_column="id")
    scores = pl.read_parquet(str(tmp_path / "out" / "scores" / "*.parquet"))
    assert scores.filter(pl.col("contaminated"))["id"].to_list() == ["leak"]
    assert stats["evaluation"]["decontamination_exempt_ngrams"] > 0
    loose = params.model_copy(update={"max_ngram_doc_frequency": 100})
    run_score(str(tmp_path / "in"), str(tmp_path / "out2"), loose, id_column="id")
    flagged = pl.read_parquet(str(tmp_path / "out2" / "scores" / "*.parquet")).filter(pl.col("contaminated"))
    assert flagged.height == 31
    # direct mode: every document embedded on the executors, scored by its best cosine to a target
    direct = params.model_copy(update={"mode": "direct"})
    stats = run_score(str(tmp_path / "in"), str(tmp_path / "out3"), direct, id_column="id")
    d = pl.read_parquet(str(tmp_path / "out3" / "scores" / "*.parquet"))
    assert d.height == 32 and d["betr_score"].is_between(-1.0001, 1.0001).all()
    best = d.sort("betr_score", descending=True)["id"][0]
    assert best == "leak"  # the train-trip homework is closest to the train-trip target
    assert not os.path.exists(tmp_path / "out3" / "model")


def test_score_sample_mode_on_a_one_document_input_is_a_user_error(spark, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "d.jsonl").write_text(json.dumps({"id": "a", "text": "Tom has 3 apples and buys 2 more."}) + "\n")
    (tmp_path / "t_train.jsonl").write_text(json.dumps({"text": "How many apples does Tom have now?"}) + "\n")
    args = ["score", str(tmp_path / "in"), str(tmp_path / "out"), "--targets", str(tmp_path / "t_train.jsonl"), "--id-column", "id"]
    assert main(args) == 2
    assert "needs at least 2 documents" in capsys.readouterr().err
    assert main(args[:2] + [str(tmp_path / "out-direct")] + args[3:] + ["--mode", "direct"]) == 0
