"""The curate flow's stage checkpoints: a re-run restores completed stages, a crash after a stage
resumes from there, a changed input or parameter recomputes, and the outputs are identical."""

import json
import shutil

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.prefect]


def _recipe(tmp_path, threshold=0.8):
    docs = tmp_path / "in" / "docs.jsonl"
    docs.parent.mkdir(exist_ok=True)
    recipe = tmp_path / f"recipe-{threshold}.yaml"
    if docs.exists():  # the same input file (same mtime) for every recipe of the test
        return _write_recipe(recipe, docs, tmp_path, threshold)
    lines = [json.dumps({"id": f"d{i:03d}", "text": f"the river valley weather report number {i % 25} with rain and wind " * 5}) for i in range(60)]
    lines += [
        json.dumps({"id": f"n{i:03d}", "text": f"the river valley weather report number {i} with rain and wind " * 5 + "and one more line"})
        for i in range(5)
    ]
    docs.write_text("\n".join(lines) + "\n")
    return _write_recipe(recipe, docs, tmp_path, threshold)


def _write_recipe(recipe, docs, tmp_path, threshold):
    recipe.write_text(f"""name: resume
sources: [{{name: inbox, path: {docs}, id_column: id}}]
output: {{path: {tmp_path / "out"}, overwrite: true}}
stages:
  near_dedup: {{threshold: {threshold}}}
""")
    return str(recipe)


def _run(recipe):
    from flows.curate import curate

    with open(curate(recipe_path=recipe)) as fh:
        return json.load(fh)


def _restored(manifest):
    return {s["name"]: bool(s["details"].get("restored_from_checkpoint")) for s in manifest["stages"]}


def _shards(manifest):
    return {k: [s["sha256"] for s in v["shards"]] for k, v in manifest["outputs"].items()}


def test_rerun_restores_and_a_crash_resumes(spark, prefect_harness, tmp_path):
    recipe = _recipe(tmp_path)
    first = _run(recipe)
    assert _restored(first) == {"ingest": False, "exact_dedup": False, "near_dedup": False}
    again = _run(recipe)
    assert _restored(again) == {"ingest": True, "exact_dedup": True, "near_dedup": True}
    assert _shards(again) == _shards(first) and again["totals"] == first["totals"]
    # a crash during near dedup: its checkpoint never completed -> the re-run resumes there
    shutil.rmtree(tmp_path / "out" / "_checkpoints" / "near_dedup")
    resumed = _run(recipe)
    assert _restored(resumed) == {"ingest": True, "exact_dedup": True, "near_dedup": False}
    assert _shards(resumed) == _shards(first)
    # a changed parameter recomputes that stage (and only the stages after the change)
    changed = _run(_recipe(tmp_path, threshold=0.5))
    assert _restored(changed) == {"ingest": True, "exact_dedup": True, "near_dedup": False}
    # a changed input recomputes everything
    with open(tmp_path / "in" / "docs.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "z", "text": "a new document"}) + "\n")
    fresh = _run(recipe)
    assert not any(_restored(fresh).values())
    assert fresh["totals"]["docs_in"] == first["totals"]["docs_in"] + 1


def test_ingest_flow_quarantines_and_skips_when_complete(spark, prefect_harness, tmp_path):
    from flows.stage_flows import ingest_flow

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "one document"}\n{broken\n{"id": "b", "text": "another document"}\n')
    out = tmp_path / "ingested"
    first = ingest_flow(str(src), str(out), id_column="id")
    assert first["documents"] == 2 and first["quarantined"] == {"malformed_json": 1}
    assert ingest_flow(str(src), str(out), id_column="id")["skipped"]
