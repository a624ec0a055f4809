"""The ``curate`` Prefect flow: ingest (L0) -> exact dedup -> near dedup -> BETR score and
decontamination -> tiers (L0–L4) -> selection of the training mix -> write shards -> manifest
(last); the containment scan of the recipe's table lake runs first (it reads tables, not
documents).

Orchestration only: each task calls a stage function from ``connectors`` or ``curation``.
Spark runs in-process (local[*] by default, or the recipe's master). Each stage's stats are
published as a Prefect table artifact so the UI shows them; the flow-run id goes in the manifest.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import datetime, timezone

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from connectors.accounting import StageStats
from connectors.checkpoints import Checkpoints, stage_key
from connectors.filesystem import InputError, is_s3
from connectors.manifest import (
    InputFile,
    Manifest,
    PrefectRun,
    TierCount,
    Totals,
    new_run_id,
    now_iso,
    recipe_sha256,
    software,
    write_manifest,
)
from connectors.report import samples_markdown, write_report
from connectors.shards import upload_tree, write_shards
from connectors.sources import ingest, release
from connectors.spark_session import get_spark
from curation.betr_stage import ScoreResult, score_stage
from curation.containment_stage import ContainmentParams
from curation.exact_dedup import exact_dedup_stage
from curation.near_dedup import combine_removed, near_dedup_stage
from curation.quality_model import QualityModel
from flows.console import mix_basis
from flows.containment_job import run_containment
from flows.recipe import Recipe, load_recipe
from flows.score_job import write_score_outputs
from flows.select_job import mix_document, write_select_outputs
from flows.tier_job import duplicate_reasons, write_tier_outputs
from tiers.samples import run_samples
from tiers.select_stage import select_stage
from tiers.stage import TierResult, prepare_quality_model, tier_stage


class OutputExistsError(InputError):
    pass


def _publish_stats(stats: StageStats) -> None:
    rows = [{"metric": "documents in", "value": stats.docs_in}, {"metric": "documents out", "value": stats.docs_out},
            {"metric": "tokens out", "value": stats.tokens_out}, {"metric": "seconds", "value": stats.seconds}]
    rows += [{"metric": f"removed: {k}", "value": v} for k, v in sorted(stats.removed.items())]
    rows += [{"metric": f"quarantined: {k}", "value": v} for k, v in sorted(stats.quarantined.items())]
    try:
        create_table_artifact(key=f"stage-{stats.name.replace('_', '-')}", table=rows, description=f"tierlake stage {stats.name}")
    except Exception:  # artifacts are a convenience; never fail a run over them
        pass


def retry_unless_user_error(task, task_run, state) -> bool:
    """Retry a failed stage once for transient failures (a lost executor, a flaky object store),
    never for a user mistake, which would only fail again."""
    from flows.recipe import RecipeError

    try:
        state.result()
    except (InputError, RecipeError):
        return False
    except Exception:
        return True
    return True


STAGE_TASK = {"cache_policy": NO_CACHE, "retries": 1, "retry_delay_seconds": 5, "retry_condition_fn": retry_unless_user_error}


def _restore(ck: Checkpoints, stage: str, key: str):
    hit = ck.load(stage, key)
    if hit is not None:
        get_run_logger().info("%s: restored from the checkpoint of an earlier run (key %s…); not recomputed", stage, key[:12])
    return hit


def _restored_stats(meta: dict) -> StageStats:
    stats = StageStats.model_validate(meta["stats"])
    stats.details["restored_from_checkpoint"] = True
    return stats


@task(name="ingest", **STAGE_TASK)
def ingest_task(spark, recipe: Recipe, ck: Checkpoints, key: str):
    hit = _restore(ck, "ingest", key)
    if hit:
        frames, meta = hit
        stats = _restored_stats(meta)
        _publish_stats(stats)
        return frames["docs"], frames["quarantine"], meta["inputs"], stats
    docs, quarantine, inputs, stats = ingest(spark, recipe.sources, recipe.stages.ingest)
    _publish_stats(stats)
    get_run_logger().info("ingest: %d documents, %d quarantined", stats.docs_out, sum(stats.quarantined.values()))
    saved = ck.save("ingest", key, {"docs": docs, "quarantine": quarantine}, {"inputs": inputs, "stats": stats.model_dump()})
    return saved["docs"], saved["quarantine"], inputs, stats


@task(name="exact-dedup", **STAGE_TASK)
def exact_dedup_task(docs, recipe: Recipe, ck: Checkpoints, key: str, known_in: tuple[int, int] | None = None):
    hit = _restore(ck, "exact_dedup", key)
    if hit:
        frames, meta = hit
        stats = _restored_stats(meta)
        _publish_stats(stats)
        return frames["kept"], frames["removed"], stats
    kept, removed, stats = exact_dedup_stage(docs, recipe.stages.exact_dedup, known_in=known_in)
    _publish_stats(stats)
    get_run_logger().info("exact dedup: %d kept, removed %s", stats.docs_out, stats.removed)
    saved = ck.save("exact_dedup", key, {"kept": kept, "removed": removed}, {"stats": stats.model_dump()})
    return saved["kept"], saved["removed"], stats


@task(name="near-dedup", **STAGE_TASK)
def near_dedup_task(docs, recipe: Recipe, ck: Checkpoints, key: str, known_in: tuple[int, int] | None = None):
    hit = _restore(ck, "near_dedup", key)
    if hit:
        frames, meta = hit
        stats = _restored_stats(meta)
        _publish_stats(stats)
        return frames["kept"], frames["removed"], stats, None
    kept, removed, stats, band_rows = near_dedup_stage(docs, recipe.stages.near_dedup, known_in=known_in)
    _publish_stats(stats)
    get_run_logger().info("near dedup: %d kept, removed %s, %s", stats.docs_out, stats.removed, stats.details)
    saved = ck.save("near_dedup", key, {"kept": kept, "removed": removed}, {"stats": stats.model_dump()})
    return saved["kept"], saved["removed"], stats, band_rows


@task(name="containment", **STAGE_TASK)
def containment_task(recipe: Recipe, root: str) -> dict:
    ct = recipe.stages.containment
    res = run_containment(ct.lake, os.path.join(root, "containment"),
                          ContainmentParams(min_ratio=ct.min_ratio, sample=ct.sample, seed=ct.seed))
    f = res["funnel"]
    try:
        create_table_artifact(key="containment-funnel", table=[{"stage": s["stage"], "pairs left": s["pairs_left"],
                                                                "seconds": s["seconds"]} for s in f["stages"]],
                              description=f"containment funnel over {f['tables']} tables")
    except Exception:
        pass
    get_run_logger().info("containment: %d tables, %d edges", f["tables"], len(res["edges"]))
    return res


@task(name="score", **STAGE_TASK)
def score_task(kept, recipe: Recipe, ck: Checkpoints, key: str):
    hit = _restore(ck, "score", key)
    if hit:
        frames, meta = hit
        folder = ck.folder("score")
        sample = pq.read_table(os.path.join(folder, "sample.parquet")) if meta["has_sample"] else None
        model = QualityModel.load(os.path.join(folder, "model")) if meta["has_model"] else None
        result = ScoreResult(scores=frames["scores"], sample=sample, model=model, stats=_restored_stats(meta),
                             evaluation=meta["evaluation"])
        _publish_stats(result.stats)
        return result
    result = score_stage(kept, recipe.stages.score)
    _publish_stats(result.stats)
    ev = result.evaluation
    get_run_logger().info("score: %d documents, held-out AUC %s, %d contaminated", result.stats.docs_out,
                          ev.get("heldout_auc"), ev.get("contaminated", 0))
    if ck.enabled:
        extra = {}
        with tempfile.TemporaryDirectory() as tmp:
            if result.sample is not None:
                pq.write_table(result.sample, os.path.join(tmp, "sample.parquet"))
                extra["sample.parquet"] = os.path.join(tmp, "sample.parquet")
            if result.model is not None:
                result.model.save(os.path.join(tmp, "model"))
                extra["model"] = os.path.join(tmp, "model")
            saved = ck.save("score", key, {"scores": result.scores},
                            {"stats": result.stats.model_dump(), "evaluation": result.evaluation,
                             "has_sample": result.sample is not None, "has_model": result.model is not None}, extra)
        result.scores = saved["scores"]
    return result


TIER_FRAMES = ("documents", "signals", "units", "rejected_units", "refined")


@task(name="tier", **STAGE_TASK)
def tier_task(kept, removed, docs, recipe: Recipe, root: str, ck: Checkpoints, key: str, scores=None):
    hit = _restore(ck, "tier", key)
    if hit:
        frames, meta = hit
        result = TierResult(**{n: frames[n] for n in TIER_FRAMES}, stats=_restored_stats(meta),
                            thresholds=meta["thresholds"], counts=meta["counts"])
        _publish_stats(result.stats)
        return result
    policy = recipe.stages.tier.model_copy(deep=True)
    cv = prepare_quality_model(policy, os.path.join(root, "models", "quality"))
    if cv:
        get_run_logger().info("quality model: cross-validated AUC %.3f", cv["auc_mean"])
    duplicates = duplicate_reasons(removed) if removed is not None else None
    result = tier_stage(kept, duplicates, policy, all_docs=docs, scores=scores)
    if cv:
        result.stats.details["quality_model_cv"] = cv
    _publish_stats(result.stats)
    try:
        create_table_artifact(key="tiers-by-source", table=result.counts, description="documents and tokens per tier and source")
    except Exception:
        pass
    get_run_logger().info("tiers: %s", result.stats.details["tiers"])
    saved = ck.save("tier", key, {n: getattr(result, n) for n in TIER_FRAMES},
                    {"stats": result.stats.model_dump(), "thresholds": result.thresholds, "counts": result.counts})
    for n in TIER_FRAMES:
        setattr(result, n, saved[n])
    return result


@task(name="select", **STAGE_TASK)
def select_task(tiered, recipe: Recipe, scores=None):
    result = select_stage(tiered, recipe.stages.select, seed=recipe.seed, scores=scores)
    _publish_stats(result.stats)
    try:
        create_table_artifact(key="selection-mix", table=[{k: m[k] for k in ("pool", "share", "epochs", "tokens", "selected_tokens")}
                                                          for m in result.mix],
                              description=f"training mix for {recipe.stages.select.budget_tokens:,.0f} tokens")
    except Exception:
        pass
    get_run_logger().info("select: %s, %d rows", mix_basis(result.parameters | {
        "predicted_accuracy": result.result.predicted_accuracy, "predicted_loss": result.result.predicted_loss}),
        result.stats.details["rows_with_repeats"])
    return result


@task(name="write-outputs", **STAGE_TASK)
def write_task(spark, root: str, run_id: str, recipe: Recipe, kept, removed, quarantine):
    outputs = {"documents": write_shards(kept, root, "documents", run_id, recipe.output.shard_bytes)}
    if removed is not None:
        outputs["removed"] = write_shards(removed, root, "removed", run_id, recipe.output.shard_bytes, size_column=None)
    outputs["quarantine"] = write_shards(quarantine, root, "quarantine", run_id, recipe.output.shard_bytes,
                                         sort_by="source_file", size_column="raw")
    return outputs


def stage_keys(recipe: Recipe) -> dict[str, str]:
    """Each document stage's checkpoint key: its parameters, the recipe seed, the upstream key and
    the files it reads (sources; targets; quality examples)."""
    st = recipe.stages
    keys = {"ingest": stage_key("ingest", {"sources": [s.model_dump() for s in recipe.sources], "params": st.ingest.model_dump(),
                                           "seed": recipe.seed}, None, [s.path for s in recipe.sources])}
    keys["exact_dedup"] = stage_key("exact_dedup", st.exact_dedup.model_dump(), keys["ingest"])
    keys["near_dedup"] = stage_key("near_dedup", st.near_dedup.model_dump(), keys["exact_dedup"])
    keys["score"] = stage_key("score", st.score.model_dump(), keys["near_dedup"], [*st.score.targets, *st.score.decontaminate])
    policy_files = [getattr(owner, attr) if index is None else owner[index] for owner, attr, index in st.tier.paths()]
    keys["tier"] = stage_key("tier", st.tier.model_dump(), keys["score"] if st.score.enabled else keys["near_dedup"],
                             policy_files)
    return keys


def _prepare_root(recipe: Recipe) -> tuple[str, str | None]:
    """(local folder Spark writes to, s3 URI to upload to or None)."""
    target = recipe.output.path
    if is_s3(target):
        return tempfile.mkdtemp(prefix="tierlake-out-"), target
    if os.path.exists(os.path.join(target, "manifest.json")) and not recipe.output.overwrite:
        raise OutputExistsError(f"{target} already holds a tierlake run (manifest.json); set output.overwrite or pass --overwrite")
    os.makedirs(target, exist_ok=True)
    return target, None


def run_recipe(recipe: Recipe, recipe_dict: dict) -> tuple[str, Manifest]:
    """Run every stage of ``recipe``; return (manifest path, manifest)."""
    started = time.time()
    run_id = new_run_id()
    root, upload_to = _prepare_root(recipe)
    old_manifest = os.path.join(root, "manifest.json")
    if os.path.exists(old_manifest):
        os.remove(old_manifest)  # a half-replaced output must never look complete
    containment = containment_task(recipe, root) if recipe.stages.containment.enabled else None
    spark = get_spark(recipe.spark)
    ck = Checkpoints(root, spark, enabled=recipe.output.resume and upload_to is None)
    keys = stage_keys(recipe)
    docs, quarantine, inputs, ingest_stats = ingest_task(spark, recipe, ck, keys["ingest"])
    after_exact, exact_removed, dedup_stats = exact_dedup_task(docs, recipe, ck, keys["exact_dedup"], ingest_stats.output_counts)
    kept, near_removed, near_stats, band_rows = near_dedup_task(after_exact, recipe, ck, keys["near_dedup"], dedup_stats.output_counts)
    removed_parts = [r for r in (exact_removed, near_removed) if r is not None]
    removed = combine_removed(exact_removed, near_removed)
    scored = score_task(kept, recipe, ck, keys["score"]) if recipe.stages.score.enabled else None
    tiers = (tier_task(kept, removed, docs, recipe, root, ck, keys["tier"], scored.scores if scored else None)
             if recipe.stages.tier.enabled else None)
    selected = (select_task(tiers.documents, recipe, scored.scores if scored else None)
                if tiers is not None and recipe.stages.select.enabled else None)
    outputs = write_task(spark, root, run_id, recipe, kept, removed, quarantine)
    stages = [ingest_stats, dedup_stats, near_stats]
    if scored is not None:
        outputs.update(write_score_outputs(scored, root, run_id, recipe.output.shard_bytes, prefix="scores/"))
        stages.append(scored.stats)
    if tiers is not None:
        outputs.update(write_tier_outputs(tiers, root, run_id, recipe.output.shard_bytes, prefix="tiers/"))
        stages.append(tiers.stats)
    if selected is not None:
        outputs.update(write_select_outputs(selected, root, run_id, recipe.output.shard_bytes))
        stages.append(selected.stats)
    if containment is not None:
        f = containment["funnel"]
        stages.append(StageStats(name="containment", docs_in=0, docs_out=0, seconds=f["seconds"],
                                 details={"tables": f["tables"], "edges": len(containment["edges"]), "funnel": f["stages"],
                                          "pruned_before_verification_pct": f["pruned_before_verification_pct"],
                                          "files": ["containment/edges.parquet", "containment/funnel.json", "containment/report.md"]}))
    flow_id = flow_run.get_id() or os.environ.get("TIERLAKE_FLOW_RUN_ID")  # set for a spark-submit application
    manifest = Manifest(
        run_id=run_id, name=recipe.name, created_at=now_iso(), software=software(spark),
        recipe=recipe_dict, recipe_sha256=recipe_sha256(recipe_dict), seed=recipe.seed,
        prefect=PrefectRun(flow_run_id=str(flow_id), flow_name=flow_run.get_flow_name() or "curate") if flow_id else None,
        inputs=[InputFile(source=i["source"], path=i["path"], bytes=i["bytes"], format=i["format"],
                          modified=datetime.fromtimestamp(i["mtime_ns"] / 1e9, timezone.utc).isoformat(timespec="seconds") if i["mtime_ns"] else None)
                for i in inputs],
        stages=stages, outputs=outputs,
        totals=Totals(docs_in=ingest_stats.docs_in, docs_out=outputs["documents"].rows,
                      tokens_out=outputs["documents"].tokens or 0,
                      # the select stage picks a mix from the kept documents; its "not selected" are not removals
                      removed=sum(sum(s.removed.values()) for s in stages if s.name != "select"),
                      quarantined=sum(sum(s.quarantined.values()) for s in stages)),
        tiers=[TierCount(**c) for c in tiers.counts] if tiers is not None else None,
        selection=mix_document(selected) if selected is not None else None,
    )
    if manifest.totals.docs_in != manifest.totals.docs_out + manifest.totals.removed + manifest.totals.quarantined:
        raise RuntimeError(f"accounting does not add up: {manifest.totals}")
    samples = run_samples(root, manifest.model_dump())
    write_report(root, manifest.model_dump(), samples)  # beside the manifest, before it: the manifest comes last
    path = write_manifest(manifest, root)
    if upload_to:
        upload_tree(root, upload_to)
        shutil.rmtree(root, ignore_errors=True)
        path = upload_to.rstrip("/") + "/manifest.json"
    release(docs, quarantine)
    # release caches only after everything is written: un-caching an input invalidates the
    # caches that depend on it
    for frame in (*removed_parts, after_exact, kept, band_rows, selected.documents if selected is not None else None):
        if frame is not None:
            frame.unpersist()
    try:
        create_markdown_artifact(key="run-summary", markdown=summary_markdown(manifest, path, time.time() - started),
                                 description="tierlake run summary")
        if samples:
            create_markdown_artifact(key="run-samples", markdown=samples_markdown(samples),
                                     description="sampled documents per tier and reason")
    except Exception:
        pass
    return path, manifest


def summary_markdown(manifest: Manifest, path: str, seconds: float) -> str:
    lines = [f"# tierlake run `{manifest.run_id}`", "", f"Manifest: `{path}` ({seconds:.1f} s)", "",
             "| stage | in | out | removed | quarantined | s |", "|---|---|---|---|---|---|"]
    for s in manifest.stages:
        rem = ", ".join(f"{k}: {v}" for k, v in sorted(s.removed.items())) or "-"
        qua = ", ".join(f"{k}: {v}" for k, v in sorted(s.quarantined.items())) or "-"
        lines.append(f"| {s.name} | {s.docs_in} | {s.docs_out} | {rem} | {qua} | {s.seconds:.1f} |")
    t = manifest.totals
    lines += ["", f"Documents in {t.docs_in} = kept {t.docs_out} + removed {t.removed} + quarantined {t.quarantined}; "
              f"~{t.tokens_out:,} tokens kept."]
    return "\n".join(lines)


@flow(name="curate", log_prints=True)
def curate(recipe_path: str, base_dir: str | None = None, overwrite: bool = False, master: str | None = None) -> str:
    """Run a tierlake recipe end to end; returns the manifest path."""
    import yaml

    recipe = load_recipe(recipe_path, base_dir)
    with open(recipe_path, encoding="utf-8") as fh:
        recipe_dict = yaml.safe_load(fh)
    if overwrite:
        recipe.output.overwrite = True
    if master:
        recipe.spark.master = master
    if recipe.spark.mode == "submit":
        return submit_recipe(recipe, recipe_path, base_dir, overwrite)
    path, _ = run_recipe(recipe, recipe_dict)
    return path


@task(name="spark-submit", **STAGE_TASK)
def submit_recipe(recipe: Recipe, recipe_path: str, base_dir: str | None, overwrite: bool) -> str:
    """The whole recipe as one Spark application (``spark.mode: submit``); the flow-run id is
    passed to it so its manifest names this flow run."""
    from flows.spark_submit import submit

    argv = [os.path.abspath(recipe_path)] + (["--base-dir", base_dir] if base_dir else []) + (["--overwrite"] if overwrite else [])
    os.environ["TIERLAKE_FLOW_RUN_ID"] = str(flow_run.get_id() or "")
    try:
        submit("run-app", argv, master=recipe.spark.master, python=recipe.spark.python,
               submit_args=recipe.spark.submit_args, conf=recipe.spark.conf, driver_memory=recipe.spark.driver_memory)
    finally:
        os.environ.pop("TIERLAKE_FLOW_RUN_ID", None)
    path = recipe.output.path.rstrip("/") + "/manifest.json"
    get_run_logger().info("spark-submit run finished: %s", path)
    return path
