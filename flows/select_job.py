"""``tierlake select RUN_DIR OUTPUT --budget T``: the training mix of an earlier run's tiers.

Orchestration only (also a Spark job entry point: ``python -m flows.select_job ...``). Reads
``RUN_DIR/tiers/documents/`` (a curate run) or ``RUN_DIR/documents/`` (a ``tierlake tier`` run),
runs :func:`tiers.select_stage.select_stage` and writes ``OUTPUT/selection/documents/`` (the
selected rows, repeated per epoch, with ``pool`` and ``repeat``), ``OUTPUT/selection/mix.json``
and ``OUTPUT/stats.json`` last.
"""

from __future__ import annotations

import json
import os
import time

from connectors.checkpoints import stage_key
from connectors.filesystem import InputError
from connectors.manifest import (
    begin_job_output,
    now_iso,
    write_file_atomic,
    write_stats,
)
from connectors.output_lock import holds_output_lock
from connectors.pipeline import StageContext
from connectors.shards import write_shards
from connectors.spark_session import SparkSettings, get_spark
from flows.runner import completed_job, run_stages
from tiers.params import SelectParams
from tiers.select_stage import SelectResult
from tiers.stages import SelectStage


def tiered_documents_path(run_dir: str) -> str:
    for rel in ("tiers/documents", "documents"):
        path = os.path.join(run_dir, rel)
        if os.path.isdir(path) and any(name.startswith("tier=") for name in os.listdir(path)):
            return path
    raise InputError(
        f"{run_dir}: no tiered documents (tiers/documents/tier=L*/ from a curate run with the tier stage, or documents/tier=L*/ from `tierlake tier`)"
    )


def mix_document(result: SelectResult) -> dict:
    parameters = {k: v for k, v in result.parameters.items() if k != "curves"}
    return {
        "budget_tokens": result.stats.details["budget_tokens"],
        "basis": result.parameters["basis"],
        "parameters": parameters,
        "curves": result.parameters.get("curves"),
        "predicted_accuracy": result.result.predicted_accuracy,
        "predicted_loss": result.result.predicted_loss,
        "alignment_ot": result.result.alignment_ot,
        "uniform_ot": result.result.uniform_ot,
        "objective": result.result.value,
        "pools": result.mix,
    }


def write_select_outputs(result: SelectResult, root: str, run_id: str, shard_bytes: int, prefix: str = "selection/") -> dict:
    outputs = {f"{prefix}documents": write_shards(result.documents, root, f"{prefix}documents", run_id, shard_bytes, sort_by=["id", "repeat"])}
    mix_path = os.path.join(root, prefix, "mix.json")
    text = json.dumps(mix_document(result), indent=2, default=str)
    write_file_atomic(mix_path, lambda tmp: open(tmp, "w", encoding="utf-8").write(text))
    return outputs


@holds_output_lock("output", "tierlake select")
def run_select(
    run_dir: str, output: str, params: SelectParams, spark_settings: SparkSettings | None = None, shard_bytes: int = 256 << 20, resume: bool = False
) -> dict:
    """The select stage through the runner over an earlier run's tiers; ``resume``: a finished run
    of the same key (parameters, the tiers' and scores' files) is kept."""
    from connectors.pool_streams import scores_path

    started = time.time()
    source = tiered_documents_path(run_dir)
    scores = scores_path(run_dir)  # BETR scores of a curate run: pools are then taken best first
    stage = SelectStage(params)
    key = stage_key(
        "job", {"shard_bytes": shard_bytes, "select": stage.key_params()}, None, [source, *([scores] if scores else []), *stage.key_files()]
    )
    if resume and (done := completed_job(output, key)):
        return {**done, "skipped": True}
    run_id = begin_job_output(output)
    spark = get_spark(spark_settings)
    start = {"tiered": spark.read.parquet(source), "scores": spark.read.parquet(scores) if scores else None}
    try:
        run = run_stages([stage], StageContext(root=output, run_id=run_id, seed=params.seed, spark=spark), frames=start)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    result = run.outputs["select"].objects["result"]
    outputs = write_select_outputs(result, output, run_id, shard_bytes)
    result.documents.unpersist()
    stats = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": source,
        "seconds": round(time.time() - started, 3),
        "mix": mix_document(result),
        "stages": [result.stats.model_dump()],
        "params": params.model_dump(),
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "key": key,
    }
    write_stats(stats, output, run_id)
    return stats
