"""The curate flow under Prefect with local Spark: demo lake, real web text, and S3."""

import json
import os
import re

import jsonschema
import pyarrow.parquet as pq
import pytest

from connectors.manifest import SCHEMA_PATH
from tests.conftest import SELECT_BUDGET, shared_path, start_moto_server

pytestmark = [pytest.mark.spark, pytest.mark.prefect]


def _validate(manifest_path):
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    with open(SCHEMA_PATH) as fh:
        jsonschema.validate(manifest, json.load(fh))
    t = manifest["totals"]
    assert t["docs_in"] == t["docs_out"] + t["removed"] + t["quarantined"]
    for stage in manifest["stages"]:
        assert stage["docs_in"] == stage["docs_out"] + sum(stage["removed"].values()) + sum(stage["quarantined"].values())
    return manifest


def test_demo_recipe_through_the_flow(demo_run, demo_lake, tmp_path):
    from flows.cli import main

    lake, summary = demo_lake
    workdir = os.path.dirname(lake)
    recipe, out = demo_run
    manifest = _validate(os.path.join(out, "manifest.json"))
    assert manifest["totals"]["docs_in"] == summary["records_written"]
    assert manifest["stages"][0]["quarantined"] == {"malformed_json": 3, "invalid_utf8": 1, "missing_text": 1}
    assert manifest["prefect"]["flow_run_id"]
    assert manifest["software"]["spark_version"] == "4.3.0"
    # what Spark ran for each stage of the curate flow (connectors/spark_metrics.py)
    work = {s["name"]: s["details"]["spark"] for s in manifest["stages"] if s["name"] != "containment"}
    assert set(work) == {"ingest", "exact_dedup", "near_dedup", "score", "tier", "select"}
    assert all(w["jobs"] >= 1 and w["stages"] >= 1 and w["tasks"] >= 1 for w in work.values()), work
    assert all(work[s]["python_sent_bytes"] > 0 for s in ("exact_dedup", "near_dedup", "score", "tier")), work
    assert work["ingest"]["python_returned_bytes"] > 0  # the readers run in Python
    # Ground truth: every planted exact duplicate is gone or is the one kept of its group.
    kept = pq.read_table(os.path.join(out, "documents")).to_pandas()
    removed = pq.read_table(os.path.join(out, "removed")).to_pandas()
    truth = pq.read_table(os.path.join(lake, "ground_truth", "documents.parquet")).to_pandas()
    planted = truth[truth.kind == "exact_duplicate"]
    key_of = {"encyclopedia": "doc_id", "forum": "id", "mathcourse": "lesson_id"}
    kept_keys = set()
    for src, col in key_of.items():
        kept_keys |= set(kept.loc[kept.source == src, "id"])
    kept_urls = set(kept.loc[kept.source == "webcrawl", "url"])
    survivors = [r for r in planted.itertuples() if (r.key in kept_keys or r.key in kept_urls)]
    # a survivor is allowed only when its original was removed instead (smallest id kept)
    for r in survivors:
        assert (r.dup_of not in kept_keys) and (r.dup_of not in kept_urls)
    assert len(removed[removed.kind == "exact"]) >= len(planted)
    assert set(removed.duplicate_of.dropna()) <= set(kept.id)
    # Shard hashes in the manifest match the files.
    from connectors.shards import sha256_file

    for shard in manifest["outputs"]["documents"]["shards"]:
        assert sha256_file(os.path.join(out, shard["path"])) == shard["sha256"]
    # Tiers: every ingested document once; L4 worked solutions all have correct arithmetic.
    import polars as pl

    per_tier = manifest["tiers"]
    ingested = manifest["stages"][0]["docs_out"]
    assert sum(c["documents"] for c in per_tier) == ingested
    tiered = pl.read_parquet(os.path.join(out, "tiers", "documents", "**", "*.parquet"), hive_partitioning=True)
    assert tiered.height == tiered["id"].n_unique() == ingested
    math = tiered.filter(pl.col("source") == "mathcourse").join(pl.from_pandas(truth), left_on="id", right_on="key")
    assert math.filter(pl.col("tier") == "L4").height > 0 and math.filter(pl.col("tier") == "L4")["arith_correct"].all()
    assert os.path.exists(os.path.join(out, "models", "quality", "model.json"))
    # containment of the lake's tables: every planted relation found, no near miss reported
    import csv

    edges = {(e["child"], e["parent"]) for e in pl.read_parquet(os.path.join(out, "containment", "edges.parquet")).to_dicts()}
    with open(os.path.join(lake, "ground_truth", "containment.csv")) as fh:
        planted = list(csv.DictReader(fh))
    assert all((r["child"], r["parent"]) in edges for r in planted if r["contained"] == "True")
    assert not any((r["child"], r["parent"]) in edges for r in planted if r["contained"] == "False")
    # BETR + decontamination: the planted test-question leaks are flagged and stay at L0
    leaks = tiered.filter(pl.col("id").str.starts_with("post-leak-"))
    assert leaks.height == 10 and (leaks["tier"] == "L0").all()
    assert all(r[0].startswith("contaminated") for r in leaks["tier_reasons"].to_list())
    score_stage = next(s for s in manifest["stages"] if s["name"] == "score")
    assert score_stage["details"]["contaminated"] == 10 and score_stage["details"]["heldout_auc"] > 0.5
    # Selection: a mix within the repetition cap, never from L0, every selected row from its pool
    sel = manifest["selection"]
    assert sel["budget_tokens"] == SELECT_BUDGET and sum(p["share"] for p in sel["pools"]) == pytest.approx(1)
    assert all(p["epochs"] <= 4 + 1e-6 for p in sel["pools"]) and not any(p["tier"] == "L0" for p in sel["pools"])
    chosen = pl.read_parquet(os.path.join(out, "selection", "documents", "*.parquet"))
    assert chosen.height == sum(p["selected_rows"] for p in sel["pools"]) and not chosen["id"].str.starts_with("post-leak-").any()
    assert chosen["token_count"].sum() == pytest.approx(SELECT_BUDGET, rel=0.1)
    # The report: self-contained (no scripts, nothing fetched) and rendered with every plot in Chromium
    from tests.browser import ink_fraction, render

    report = os.path.join(out, "report.html")
    text = open(report, encoding="utf-8").read()
    assert "<script" not in text and "<link" not in text and 'src="http' not in text and 'href="http' not in text
    assert re.search(r"[1-9]\d* tables scanned, [1-9]\d* contained pairs", text)  # tables, not "0 documents"
    dom = render("file://" + report, os.path.join(str(tmp_path), "report.png"))
    for kind in ("funnel", "tiers", "dedup-clusters", "quality-hist", "betr-hist", "containment", "mix", "qqt"):
        assert f'data-plot="{kind}"' in dom and dom.count("<svg") >= 8, kind
    # Sampled documents: one for every tier and every reason present in the run, rendered
    from tiers.samples import reasons

    present = reasons(out)
    assert any(k.startswith("L0: ") for k in present) and any(k.startswith("quarantine: ") for k in present)
    for key in present:
        where, reason = key.split(": ", 1)
        attr = f'data-sample-quarantine="{reason}"' if where == "quarantine" else f'data-sample-reason="{where}/{reason}"'
        block = dom.split(attr, 1)
        assert len(block) == 2, f"no sample block for {key}"
        assert 'class="doc"' in block[1].split("</details>", 1)[0], f"no sampled document for {key}"
    for tier in {k.split(":")[0] for k in present if not k.startswith("quarantine")}:
        assert 'class="doc"' in dom.split(f'data-sample-tier="{tier}"', 1)[1].split("</details>", 1)[0], tier
    jaccards = [float(j) for j in re.findall(r"shingle Jaccard ([0-9.]+)", dom)]
    # near duplicates are joined into clusters, so a removed copy's Jaccard with the kept one can be
    # below the threshold (joined through another member), never unrelated text
    assert jaccards and all(0.3 < j <= 1 for j in jaccards)
    assert 'data-sample-betr="top"' in dom and 'data-sample-betr="bottom"' in dom
    # the same samples as a markdown artifact of the flow run, in the Prefect UI
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(manifest["prefect"]["flow_run_id"])]))
        )
    samples_md = next(a.data for a in artifacts if a.key == "run-samples")
    assert "## By tier" in samples_md and "decided by" in samples_md and "## Near-duplicate pairs" in samples_md
    ink, colours = ink_fraction(os.path.join(str(tmp_path), "report.png"))
    assert ink > 0.03 and colours > 20, (ink, colours)  # not blank: plots drew pixels in several colours
    # Same input, same config -> same shards.
    first = [s["sha256"] for s in manifest["outputs"]["documents"]["shards"]]
    first_tiers = {k: [s["sha256"] for s in v["shards"]] for k, v in manifest["outputs"].items() if k.startswith("tiers/")}
    assert main(["run", recipe, "--base-dir", workdir, "--overwrite"]) == 0
    again = _validate(os.path.join(out, "manifest.json"))
    assert [s["sha256"] for s in again["outputs"]["documents"]["shards"]] == first
    assert {k: [s["sha256"] for s in v["shards"]] for k, v in again["outputs"].items() if k.startswith("tiers/")} == first_tiers
    assert again["outputs"]["selection/documents"]["shards"] == manifest["outputs"]["selection/documents"]["shards"]
    assert again["run_id"] != manifest["run_id"]


@pytest.mark.shared_data
def test_dolma_sample_recipe(spark, prefect_harness, tmp_path):
    from flows.cli import main

    data = shared_path("webtext", "dolma_cc_sample")
    recipe = tmp_path / "dolma.yaml"
    recipe.write_text(f"name: dolma\nsources:\n  - name: dolma_cc\n    path: {data}\n    id_column: id\noutput:\n  path: {tmp_path / 'out'}\n")
    assert main(["run", str(recipe)]) == 0
    manifest = _validate(tmp_path / "out" / "manifest.json")
    assert manifest["totals"]["docs_in"] == 727  # 697 + 10 + 10 + 10 records
    assert {i["path"].rsplit("/", 1)[1] for i in manifest["inputs"]} == set(os.listdir(data))
    kept = pq.read_table(tmp_path / "out" / "documents")
    assert "input_source" in kept.column_names  # dolma's own `source` field is kept, renamed
    assert main(["run", str(recipe)]) == 2  # refuses to overwrite a finished run silently


@pytest.fixture(scope="module")
def s3_server(monkeypatch_module=None):
    proc, port = start_moto_server()
    env = {
        "AWS_ACCESS_KEY_ID": "testing-key",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-do-not-log",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield f"http://127.0.0.1:{port}"
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.s3
def test_s3_input_and_output(spark, prefect_harness, s3_server, demo_lake, tmp_path, capsys):
    import boto3

    from flows.cli import main

    lake, _ = demo_lake
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="lake")
    s3.create_bucket(Bucket="out")
    for rel in ("corpus/forum/part-000.jsonl.zst", "corpus/webcrawl/part-000.parquet", "corpus/webcrawl/part-001.parquet"):
        s3.upload_file(os.path.join(lake, rel), "lake", rel)
    recipe = tmp_path / "s3.yaml"
    recipe.write_text(
        "name: s3\nsources:\n  - {name: forum, path: 's3://lake/corpus/forum', id_column: id}\n"
        "  - {name: webcrawl, path: 's3://lake/corpus/webcrawl/'}\noutput: {path: 's3://out/run1'}\n"
    )
    assert main(["run", str(recipe)]) == 0
    body = s3.get_object(Bucket="out", Key="run1/manifest.json")["Body"].read()
    manifest = json.loads(body)
    with open(SCHEMA_PATH) as fh:
        jsonschema.validate(manifest, json.load(fh))
    import zstandard

    forum_lines = (
        zstandard.ZstdDecompressor().decompressobj().decompress(open(os.path.join(lake, "corpus/forum/part-000.jsonl.zst"), "rb").read()).count(b"\n")
    )
    web_rows = sum(pq.ParquetFile(os.path.join(lake, f"corpus/webcrawl/part-00{i}.parquet")).metadata.num_rows for i in (0, 1))
    assert manifest["totals"]["docs_in"] == forum_lines + web_rows
    assert manifest["totals"]["quarantined"] == 0
    assert manifest["inputs"][0]["path"].startswith("s3://lake/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="out", Prefix="run1/")["Contents"]]
    assert any(k.startswith("run1/documents/part-") for k in keys)
    # `tierlake dedup --engine local` reads the same S3 input in its own process
    assert main(["--quiet", "dedup", "s3://lake/corpus/webcrawl/", str(tmp_path / "dedup-local"), "--engine", "local"]) == 0
    local_stats = json.loads((tmp_path / "dedup-local" / "stats.json").read_text())
    assert local_stats["documents_in"] == web_rows and local_stats["engine"] == "local"
    assert local_stats["kept"] + sum(local_stats["removed"].values()) == web_rows
    captured = capsys.readouterr()
    assert "testing-secret-do-not-log" not in body.decode() + captured.out + captured.err + json.dumps(local_stats)
