"""``tierlake ingest INPUT OUTPUT``: read one input into tierlake's document schema.

Orchestration only (also a Spark job entry point through ``flows/spark_entry.py``). Writes
``OUTPUT/documents/`` (id, text, source, token_count, source_file, source_line and the input's
other columns), ``OUTPUT/quarantine/`` (unreadable records with file, line and reason) and
``OUTPUT/stats.json`` last; documents in = documents out + quarantined.
"""

from __future__ import annotations

import time

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
from connectors.spark_session import SparkSettings, get_spark
from curation.stages import IngestStage
from flows.runner import completed_job, pipeline_key, run_stages


@holds_output_lock("output", "tierlake ingest")
def run_ingest(
    input_path: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    params: IngestParams | None = None,
    spark_settings: SparkSettings | None = None,
    shard_bytes: int = 256 << 20,
    resume: bool = False,
) -> dict:
    """Ingest one input through the runner; ``resume``: a finished run of the same key is kept."""
    started = time.time()
    spec = SourceSpec(name=source_name(input_path), path=input_path, text_column=text_column, id_column=id_column)
    stages: list[Stage] = [IngestStage(params or IngestParams(), [spec])]
    key = pipeline_key(stages, {"shard_bytes": shard_bytes})
    if resume and (done := completed_job(output, key)):
        return {**done, "skipped": True}
    run_id = begin_job_output(output)
    spark = get_spark(spark_settings)
    run = run_stages(stages, StageContext(root=output, run_id=run_id, spark=spark))
    docs, quarantine = run.frames["documents"], run.frames["quarantine"]
    inputs, stats = run.outputs["ingest"].meta["inputs"], run.outputs["ingest"].stats
    outputs = {
        "documents": write_shards(docs, output, "documents", run_id, shard_bytes),
        "quarantine": write_shards(quarantine, output, "quarantine", run_id, shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw"),
    }
    result = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": input_path,
        "seconds": round(time.time() - started, 3),
        "documents_in": stats.docs_in,
        "documents": outputs["documents"].rows,
        "quarantined": stats.quarantined,
        "inputs": inputs,
        "stages": [stats.model_dump()],
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "key": key,
    }
    if result["documents"] + sum(stats.quarantined.values()) != stats.docs_in:
        raise RuntimeError(f"accounting does not add up: {result}")
    write_stats(result, output, run_id)
    release(docs, quarantine)
    return result
