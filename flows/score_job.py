"""``tierlake score INPUT OUTPUT --targets …``: BETR scores and decontamination flags for every
document of one input.

Orchestration only (also a Spark job entry point: ``python -m flows.score_job ...``). Writes
``OUTPUT/scores/`` (Parquet: ``id``, ``betr_score`` higher = closer to the targets,
``betr_rank_pct``, ``contaminated``, ``contamination_ngrams``), in sample mode ``OUTPUT/sample.parquet``
(the sample's exact ranks and labels) and ``OUTPUT/model/`` (the classifier, no pickle),
``OUTPUT/quarantine/`` when a record was unreadable, and ``OUTPUT/stats.json`` last.
"""

from __future__ import annotations

import os
import time

import pyarrow.parquet as pq

from connectors.checkpoints import Checkpoints
from connectors.manifest import (
    begin_job_output,
    now_iso,
    source_name,
    write_stats,
)
from connectors.output_lock import holds_output_lock
from connectors.pipeline import Stage, StageContext
from connectors.shards import QUARANTINE_ORDER, write_shards
from connectors.sources import DEFAULT_ID_COLUMN, IngestParams, SourceSpec, release
from connectors.spark_session import SparkSettings
from curation.params import ScoreParams
from curation.stages import IngestStage, ScoreStage
from flows.runner import completed_job, engine_session, pipeline_key, run_stages


def write_score_outputs(result, root: str, run_id: str, shard_bytes: int, prefix: str = "") -> dict:
    outputs = {f"{prefix}scores": write_shards(result.scores, root, f"{prefix}scores", run_id, shard_bytes, size_column=None)}
    if result.sample is not None:
        os.makedirs(os.path.join(root, prefix or "."), exist_ok=True)
        tmp = os.path.join(root, prefix, f".sample.parquet.tmp-{run_id}")
        pq.write_table(result.sample, tmp, compression="zstd")
        os.replace(tmp, os.path.join(root, prefix, "sample.parquet"))
    if result.model is not None:
        result.model.save(os.path.join(root, prefix, "model"))
    return outputs


@holds_output_lock("output", "tierlake score")
def run_score(
    input_path: str,
    output: str,
    params: ScoreParams,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    spark_settings: SparkSettings | None = None,
    shard_bytes: int = 256 << 20,
    resume: bool = False,
    engine: str = "spark",
    threads: int | None = None,
) -> dict:
    """Ingest -> score of one input through the runner (``resume``: stage checkpoints in OUTPUT),
    on Spark or in one process (``engine="local"``, :mod:`curation.betr_local`; the same scores)."""
    started = time.time()
    spec = SourceSpec(name=source_name(input_path), path=input_path, text_column=text_column, id_column=id_column)
    stages: list[Stage] = [IngestStage(IngestParams(), [spec]), ScoreStage(params, reads="documents")]
    key = pipeline_key(stages, {"shard_bytes": shard_bytes}, engine)
    if resume and (done := completed_job(output, key)):
        return {**done, "skipped": True}
    spark, local_threads = engine_session(engine, [spec], threads, spark_settings)
    run_id = begin_job_output(output)
    ctx = StageContext(root=output, run_id=run_id, seed=params.seed, spark=spark, threads=local_threads)
    run = run_stages(stages, ctx, Checkpoints(output, spark, enabled=resume))
    ingest_stats = run.outputs["ingest"].stats
    result = run.outputs["score"].objects["result"]
    result.scores = run.frames["scores"]
    outputs = write_score_outputs(result, output, run_id, shard_bytes)
    if sum(ingest_stats.quarantined.values()):
        outputs["quarantine"] = write_shards(
            run.frames["quarantine"], output, "quarantine", run_id, shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw"
        )
    if outputs["scores"].rows != ingest_stats.docs_out:
        raise RuntimeError(f"{outputs['scores'].rows} scores for {ingest_stats.docs_out} documents")
    stats = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": input_path,
        "seconds": round(time.time() - started, 3),
        "documents_in": ingest_stats.docs_in,
        "scored": outputs["scores"].rows,
        "quarantined": ingest_stats.quarantined,
        "evaluation": result.evaluation,
        "engine": engine,
        "params": params.model_dump(),
        "stages": [s.model_dump() for s in run.stats],
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "key": key,
    }
    write_stats(stats, output, run_id)
    if spark is not None:
        release(run.frames["documents"], run.frames["quarantine"])
    return stats
