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

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from connectors.checkpoints import Checkpoints
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
    remove_stale_temporaries,
    software,
    write_manifest,
)
from connectors.output_lock import OutputLock
from connectors.pipeline import Stage, StageContext
from connectors.report import samples_markdown, write_report
from connectors.shards import QUARANTINE_ORDER, upload_tree, write_shards
from connectors.sources import release
from curation.near_dedup import combine_removed
from curation.params import ContainmentParams
from curation.stages import ContainmentStage, ExactDedupStage, IngestStage, NearDedupStage, ScoreStage
from flows.recipe import Recipe, load_recipe
from flows.runner import engine_session, retry_unless_user_error, run_stages
from flows.score_job import write_score_outputs
from flows.select_job import mix_document, write_select_outputs
from flows.tier_job import write_tier_outputs
from tiers.samples import run_samples
from tiers.stages import SelectStage, TierStage, tier_result


class OutputExistsError(InputError):
    pass


def document_stages(recipe: Recipe) -> list[Stage]:
    """The recipe's enabled document stages, in order: the curate pipeline."""
    st = recipe.stages
    stages: list[Stage] = [IngestStage(st.ingest, recipe.sources), ExactDedupStage(st.exact_dedup), NearDedupStage(st.near_dedup)]
    if st.score.enabled:
        stages.append(ScoreStage(st.score))
    if st.tier.enabled:
        stages.append(TierStage(st.tier))
        if st.select.enabled:
            stages.append(SelectStage(st.select))
    return stages


@task(name="write-outputs", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_user_error)
def write_task(root: str, run_id: str, recipe: Recipe, kept, removed, quarantine):
    outputs = {"documents": write_shards(kept, root, "documents", run_id, recipe.output.shard_bytes)}
    if removed is not None:
        outputs["removed"] = write_shards(removed, root, "removed", run_id, recipe.output.shard_bytes, size_column=None)
    outputs["quarantine"] = write_shards(
        quarantine, root, "quarantine", run_id, recipe.output.shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw"
    )
    return outputs


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
    """Run every stage of ``recipe``; return (manifest path, manifest). One run at a time per
    output folder (:class:`connectors.output_lock.OutputLock`)."""
    started = time.time()
    root, upload_to = _prepare_root(recipe)
    if upload_to:  # a private local staging folder: nothing else writes there
        return _run_recipe_in(recipe, recipe_dict, root, upload_to, started)
    with OutputLock(root, f"tierlake run {recipe.name}"):
        return _run_recipe_in(recipe, recipe_dict, root, upload_to, started)


def _run_recipe_in(recipe: Recipe, recipe_dict: dict, root: str, upload_to: str | None, started: float) -> tuple[str, Manifest]:
    run_id = new_run_id()
    old_manifest = os.path.join(root, "manifest.json")
    if os.path.exists(old_manifest):
        os.remove(old_manifest)  # a half-replaced output must never look complete
    remove_stale_temporaries(root)  # what killed runs left under temporary names (we hold the lock)
    ctx = StageContext(root=root, run_id=run_id, seed=recipe.seed)
    containment = None
    if recipe.stages.containment.enabled:
        ct = recipe.stages.containment
        assert ct.lake is not None  # the recipe's validation requires it when the stage is on
        done = run_stages([ContainmentStage(ContainmentParams(min_ratio=ct.min_ratio, sample=ct.sample, seed=ct.seed), ct.lake)], ctx)
        containment = done.outputs["containment"]
    spark, ctx.threads = engine_session(recipe.engine, recipe.sources, recipe.threads, recipe.spark)
    ctx.spark = spark
    ck = Checkpoints(root, spark, enabled=recipe.output.resume and upload_to is None)
    run = run_stages(document_stages(recipe), ctx, ck)
    frames, out = run.frames, run.outputs
    docs, quarantine, kept = frames["documents"], frames["quarantine"], frames["kept"]
    inputs = out["ingest"].meta["inputs"]
    ingest_stats = out["ingest"].stats
    if spark is None:
        from curation.dedup_local import combine_removed_local

        removed = combine_removed_local(frames["exact_removed"], frames["near_removed"])
    else:
        removed = combine_removed(frames["exact_removed"], frames["near_removed"])
    scored = out["score"].objects["result"] if "score" in out else None
    if scored is not None:
        scored.scores = frames["scores"]  # the checkpoint's copy (lineage cut)
    tiers = tier_result(out["tier"]) if "tier" in out else None
    selected = out["select"].objects["result"] if "select" in out else None
    outputs: dict = write_task(root, run_id, recipe, kept, removed, quarantine)  # type: ignore[assignment]  # a sync task returns its value
    stages = [o.stats for o in out.values()]
    if scored is not None:
        outputs.update(write_score_outputs(scored, root, run_id, recipe.output.shard_bytes, prefix="scores/"))
    if tiers is not None:
        outputs.update(write_tier_outputs(tiers, root, run_id, recipe.output.shard_bytes, prefix="tiers/"))
    if selected is not None:
        outputs.update(write_select_outputs(selected, root, run_id, recipe.output.shard_bytes))
    if containment is not None:
        stages.append(containment.stats)
    flow_id = flow_run.get_id() or os.environ.get("TIERLAKE_FLOW_RUN_ID")  # set for a spark-submit application
    manifest = Manifest(
        run_id=run_id,
        name=recipe.name,
        created_at=now_iso(),
        software=software(spark, recipe.engine),
        recipe=recipe_dict,
        recipe_sha256=recipe_sha256(recipe_dict),
        seed=recipe.seed,
        prefect=PrefectRun(flow_run_id=str(flow_id), flow_name=flow_run.get_flow_name() or "curate") if flow_id else None,
        inputs=[
            InputFile(
                source=i["source"],
                path=i["path"],
                bytes=i["bytes"],
                format=i["format"],
                modified=datetime.fromtimestamp(i["mtime_ns"] / 1e9, timezone.utc).isoformat(timespec="seconds") if i["mtime_ns"] else None,
            )
            for i in inputs
        ],
        stages=stages,
        outputs=outputs,
        totals=Totals(
            docs_in=ingest_stats.docs_in,
            docs_out=outputs["documents"].rows,
            tokens_out=outputs["documents"].tokens or 0,
            # the select stage picks a mix from the kept documents; its "not selected" are not removals
            removed=sum(sum(s.removed.values()) for s in stages if s.name != "select"),
            quarantined=sum(sum(s.quarantined.values()) for s in stages),
        ),
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
    if spark is not None:
        release(docs, quarantine)
        # release caches only after everything is written: un-caching an input invalidates the
        # caches that depend on it
        for name in ("exact_removed", "near_removed", "exact_kept", "kept", "band_rows", "selected"):
            if frames.get(name) is not None:
                frames[name].unpersist()
    try:
        create_markdown_artifact(
            key="run-summary", markdown=summary_markdown(manifest, path, time.time() - started), description="tierlake run summary"
        )
        if samples:
            create_markdown_artifact(key="run-samples", markdown=samples_markdown(samples), description="sampled documents per tier and reason")
    except Exception:
        pass
    return path, manifest


def summary_markdown(manifest: Manifest, path: str, seconds: float) -> str:
    lines = [
        f"# tierlake run `{manifest.run_id}`",
        "",
        f"Manifest: `{path}` ({seconds:.1f} s)",
        "",
        "| stage | in | out | removed | quarantined | s |",
        "|---|---|---|---|---|---|",
    ]
    for s in manifest.stages:
        rem = ", ".join(f"{k}: {v}" for k, v in sorted(s.removed.items())) or "-"
        qua = ", ".join(f"{k}: {v}" for k, v in sorted(s.quarantined.items())) or "-"
        lines.append(f"| {s.name} | {s.docs_in} | {s.docs_out} | {rem} | {qua} | {s.seconds:.1f} |")
    t = manifest.totals
    lines += ["", f"Documents in {t.docs_in} = kept {t.docs_out} + removed {t.removed} + quarantined {t.quarantined}; ~{t.tokens_out:,} tokens kept."]
    return "\n".join(lines)


@flow(name="curate", log_prints=True)
def curate(recipe_path: str, base_dir: str | None = None, overwrite: bool = False, master: str | None = None, engine: str | None = None) -> str:
    """Run a tierlake recipe end to end; returns the manifest path."""
    import yaml

    recipe = load_recipe(recipe_path, base_dir)
    with open(recipe_path, encoding="utf-8") as fh:
        recipe_dict = yaml.safe_load(fh)
    if overwrite:
        recipe.output.overwrite = True
    if master:
        recipe.spark.master = master
    if engine:
        recipe.engine = engine  # type: ignore[assignment]  # the CLI offers spark|local only
    if recipe.spark.mode == "submit" and recipe.engine == "spark":
        return submit_recipe(recipe, recipe_path, base_dir, overwrite)
    path, _ = run_recipe(recipe, recipe_dict)
    return path


@task(name="spark-submit", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_user_error)
def submit_recipe(recipe: Recipe, recipe_path: str, base_dir: str | None, overwrite: bool) -> str:
    """The whole recipe as one Spark application (``spark.mode: submit``); the flow-run id is
    passed to it so its manifest names this flow run."""
    from flows.spark_submit import submit

    argv = [os.path.abspath(recipe_path)] + (["--base-dir", base_dir] if base_dir else []) + (["--overwrite"] if overwrite else [])
    os.environ["TIERLAKE_FLOW_RUN_ID"] = str(flow_run.get_id() or "")
    try:
        submit(
            "run-app",
            argv,
            master=recipe.spark.master,
            python=recipe.spark.python,
            submit_args=recipe.spark.submit_args,
            conf=recipe.spark.conf,
            driver_memory=recipe.spark.driver_memory,
        )
    finally:
        os.environ.pop("TIERLAKE_FLOW_RUN_ID", None)
    path = recipe.output.path.rstrip("/") + "/manifest.json"
    get_run_logger().info("spark-submit run finished: %s", path)
    return path
