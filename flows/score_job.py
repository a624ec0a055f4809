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

from connectors.manifest import (
    begin_job_output,
    now_iso,
    source_name,
    write_stats,
)
from connectors.shards import write_shards
from connectors.sources import IngestParams, SourceSpec, ingest, release
from connectors.spark_session import SparkSettings, get_spark
from curation.betr_stage import ScoreParams, score_stage


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


def run_score(input_path: str, output: str, params: ScoreParams, text_column: str = "text", id_column: str | None = None,
              spark_settings: SparkSettings | None = None, shard_bytes: int = 256 << 20) -> dict:
    started = time.time()
    run_id = begin_job_output(output)
    spark = get_spark(spark_settings)
    name = source_name(input_path)
    docs, quarantine, _inputs, ingest_stats = ingest(spark, [SourceSpec(name=name, path=input_path, text_column=text_column,
                                                                          id_column=id_column)], IngestParams())
    result = score_stage(docs, params)
    outputs = write_score_outputs(result, output, run_id, shard_bytes)
    if sum(ingest_stats.quarantined.values()):
        outputs["quarantine"] = write_shards(quarantine, output, "quarantine", run_id, shard_bytes, sort_by="source_file", size_column="raw")
    if outputs["scores"].rows != ingest_stats.docs_out:
        raise RuntimeError(f"{outputs['scores'].rows} scores for {ingest_stats.docs_out} documents")
    stats = {"run_id": run_id, "created_at": now_iso(), "input": input_path, "seconds": round(time.time() - started, 3),
             "documents_in": ingest_stats.docs_in, "scored": outputs["scores"].rows, "quarantined": ingest_stats.quarantined,
             "evaluation": result.evaluation, "params": params.model_dump(),
             "stages": [ingest_stats.model_dump(), result.stats.model_dump()],
             "outputs": {k: v.model_dump() for k, v in outputs.items()}}
    write_stats(stats, output, run_id)
    release(docs, quarantine)
    return stats


def main(argv: list[str] | None = None) -> int:
    from flows.cli import main as cli_main

    return cli_main(["score", *(argv or [])])


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
