"""``tierlake tier INPUT OUTPUT``: ingest -> exact and near dedup -> signals -> tiers L0–L4.

Orchestration only (also a Spark job entry point: ``python -m flows.tier_job ...``). Writes

* ``OUTPUT/documents/tier=L0`` … ``tier=L4`` — every input document exactly once, with its
  columns plus ``tier``, ``tier_reasons``, ``quality_score`` and ``filter_reason``;
* ``OUTPUT/signals/`` — the per-document signal columns (what ``tierlake retier`` re-thresholds);
* ``OUTPUT/units/`` — verified L4 knowledge units; ``OUTPUT/units_rejected/`` — the others;
* ``OUTPUT/refined/`` — L3/L4 rewrites when a refiner is configured;
* ``OUTPUT/quarantine/`` when an input record was unreadable; ``OUTPUT/stats.json`` last.
"""

from __future__ import annotations

import os
import time

from connectors.checkpoints import Checkpoints
from connectors.manifest import (
    begin_job_output,
    new_run_id,
    now_iso,
    source_name,
    write_stats,
)
from connectors.output_lock import holds_output_lock
from connectors.pipeline import Stage, StageContext
from connectors.shards import QUARANTINE_ORDER, write_shards
from connectors.sources import DEFAULT_ID_COLUMN, IngestParams, SourceSpec, release
from connectors.spark_session import SparkSettings, get_spark
from curation.params import ExactDedupParams, NearDedupParams
from curation.stages import ExactDedupStage, IngestStage, NearDedupStage
from flows.runner import completed_job, engine_session, pipeline_key, run_stages
from tiers.params import TIERS
from tiers.policy import TierPolicy
from tiers.stage import TierResult, tier_stage
from tiers.stages import TierStage, tier_result


def _one_tier(docs, tier: str):
    """The documents of one tier without the tier column (a Spark frame or an Arrow table)."""
    import pyarrow as pa

    if isinstance(docs, pa.Table):
        import pyarrow.compute as pc

        return docs.filter(pc.equal(docs.column("tier"), tier)).drop_columns(["tier"])
    from pyspark.sql import functions as F

    return docs.filter(F.col("tier") == tier).drop("tier")


def write_tier_outputs(result: TierResult, root: str, run_id: str, shard_bytes: int, prefix: str = "") -> dict:
    outputs = {}
    docs = result.documents
    for tier in TIERS:
        outputs[f"{prefix}documents/tier={tier}"] = write_shards(_one_tier(docs, tier), root, f"{prefix}documents/tier={tier}", run_id, shard_bytes)
    outputs[f"{prefix}signals"] = write_shards(result.signals, root, f"{prefix}signals", run_id, shard_bytes, size_column=None)
    outputs[f"{prefix}units"] = write_shards(result.units, root, f"{prefix}units", run_id, shard_bytes, sort_by="unit_id", size_column=None)
    outputs[f"{prefix}units_rejected"] = write_shards(
        result.rejected_units, root, f"{prefix}units_rejected", run_id, shard_bytes, sort_by="unit_id", size_column=None
    )
    if result.refined is not None:
        outputs[f"{prefix}refined"] = write_shards(result.refined, root, f"{prefix}refined", run_id, shard_bytes, size_column=None)
    return outputs


@holds_output_lock("output", "tierlake tier")
def run_tier(
    input_path: str,
    output: str,
    policy: TierPolicy | None = None,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    dedup: bool = True,
    spark_settings: SparkSettings | None = None,
    shard_bytes: int = 256 << 20,
    exact_params: ExactDedupParams | None = None,
    near_params: NearDedupParams | None = None,
    resume: bool = False,
    engine: str = "spark",
    threads: int | None = None,
) -> dict:
    """Ingest -> (exact -> near dedup) -> tier of one input through the runner (``resume``: stage
    checkpoints in OUTPUT), on Spark or in one process (``engine="local"``,
    :mod:`tiers.stage_local`; the same tiers)."""
    started = time.time()
    policy = policy or TierPolicy()
    spec = SourceSpec(name=source_name(input_path), path=input_path, text_column=text_column, id_column=id_column)
    stages: list[Stage] = [IngestStage(IngestParams(), [spec])]
    if dedup:
        stages += [ExactDedupStage(exact_params or ExactDedupParams()), NearDedupStage(near_params or NearDedupParams())]
    stages.append(TierStage(policy, reads="kept" if dedup else "documents", model_dir="quality_model"))
    key = pipeline_key(stages, {"shard_bytes": shard_bytes}, engine)
    if resume and (done := completed_job(output, key)):
        return {**done, "skipped": True}
    spark, local_threads = engine_session(engine, [spec], threads, spark_settings)
    run_id = begin_job_output(output)
    ctx = StageContext(root=output, run_id=run_id, spark=spark, threads=local_threads)
    run = run_stages(stages, ctx, Checkpoints(output, spark, enabled=resume))
    ingest_stats = run.outputs["ingest"].stats
    result = tier_result(run.outputs["tier"])
    outputs = write_tier_outputs(result, output, run_id, shard_bytes)
    if sum(ingest_stats.quarantined.values()):
        outputs["quarantine"] = write_shards(
            run.frames["quarantine"], output, "quarantine", run_id, shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw"
        )
    documents_out = sum(outputs[f"documents/tier={t}"].rows for t in TIERS)
    quarantined = sum(ingest_stats.quarantined.values())
    if documents_out + quarantined != ingest_stats.docs_in:
        raise RuntimeError(f"accounting does not add up: {documents_out} documents + {quarantined} quarantined != {ingest_stats.docs_in} in")
    stats = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": input_path,
        "seconds": round(time.time() - started, 3),
        "engine": engine,
        "documents_in": ingest_stats.docs_in,
        "documents_out": documents_out,
        "quarantined": ingest_stats.quarantined,
        "tiers": result.stats.details["tiers"],
        "by_tier_and_source": result.counts,
        "thresholds": result.thresholds,
        "quality_model_cv": result.stats.details.get("quality_model_cv"),
        "l4_units_verified": result.stats.details["l4_units_verified"],
        "l4_units_rejected": result.stats.details["l4_units_rejected"],
        "filter_failures": result.stats.details["filter_failures"],
        "stages": [s.model_dump() for s in run.stats],
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "policy": policy.model_dump(),
        "key": key,
    }
    write_stats(stats, output, run_id)
    if spark is not None:
        release(run.frames["documents"], run.frames["quarantine"])
    return stats


@holds_output_lock("output", "tierlake retier")
def run_retier(run_dir: str, output: str, policy: TierPolicy, spark_settings: SparkSettings | None = None, shard_bytes: int = 256 << 20) -> dict:
    """Re-tier an earlier run from its stored signals: no signal is recomputed."""
    from pyspark.sql import functions as F

    from connectors.filesystem import InputError

    started = time.time()
    if os.path.abspath(run_dir) == os.path.abspath(output):
        raise InputError("retier writes a new run: OUTPUT must differ from RUN_DIR")
    for part in ("signals", "documents", "stats.json"):
        if not os.path.exists(os.path.join(run_dir, part)):
            raise InputError(f"{run_dir} is not a finished `tierlake tier` run ({part} missing)")
    run_id = new_run_id()
    os.makedirs(output, exist_ok=True)
    spark = get_spark(spark_settings)
    signals = spark.read.parquet(os.path.join(run_dir, "signals"))
    docs = spark.read.parquet(os.path.join(run_dir, "documents"))
    ids = signals.select("id")
    dup_docs = docs.join(ids, "id", "left_anti")
    duplicates = dup_docs.select("id", F.col("tier_reasons")[0].alias("duplicate_reason"))
    base = docs.drop("tier", "tier_reasons", "quality_score", "filter_reason")
    kept = base.join(ids, "id")
    result = tier_stage(kept, duplicates, policy, all_docs=base, signals=signals.drop("duplicate_reason"))
    outputs = write_tier_outputs(result, output, run_id, shard_bytes)
    documents_out = sum(outputs[f"documents/tier={t}"].rows for t in TIERS)
    stats = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": run_dir,
        "retiered_from": run_dir,
        "seconds": round(time.time() - started, 3),
        "documents_in": docs.count(),
        "documents_out": documents_out,
        "quarantined": {},
        "tiers": result.stats.details["tiers"],
        "by_tier_and_source": result.counts,
        "thresholds": result.thresholds,
        "quality_model_cv": None,
        "l4_units_verified": result.stats.details["l4_units_verified"],
        "l4_units_rejected": result.stats.details["l4_units_rejected"],
        "filter_failures": result.stats.details["filter_failures"],
        "stages": [result.stats.model_dump()],
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "policy": policy.model_dump(),
    }
    if stats["documents_in"] != documents_out:
        raise RuntimeError(f"accounting does not add up: {documents_out} != {stats['documents_in']}")
    write_stats(stats, output, run_id)
    return stats
