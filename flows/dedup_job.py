"""``tierlake dedup INPUT OUTPUT``: exact then MinHash-LSH near-duplicate removal of one input.

Orchestration only (also a Spark job entry point: ``python -m flows.dedup_job ...`` or
spark-submit of this file). Writes ``OUTPUT/kept/`` (Parquet, every input column under its own
name), ``OUTPUT/removed/`` (id, duplicate_of, kind, cluster_size, reason, source, token_count),
``OUTPUT/quarantine/`` when any input record was unreadable, and ``OUTPUT/stats.json`` last.
With ``--index DIR`` the batch is deduplicated against every earlier run saved there, and its
kept documents are added to it.
"""

from __future__ import annotations

import threading
import time

from connectors.accounting import StageStats
from connectors.checkpoints import Checkpoints
from connectors.dedup_index import DedupIndex
from connectors.manifest import (
    begin_job_output,
    now_iso,
    source_name,
    write_stats,
)
from connectors.output_lock import holds_output_lock
from connectors.pipeline import Stage, StageContext
from connectors.shards import QUARANTINE_ORDER, write_shards
from connectors.sources import DEFAULT_ID_COLUMN, RESERVED, IngestParams, SourceSpec, release, shard_size_hint
from connectors.spark_session import SparkSettings
from curation.exact_dedup import exact_keys
from curation.near_dedup import combine_removed
from curation.params import ExactDedupParams, NearDedupParams
from curation.stages import ExactDedupStage, IngestStage, NearDedupStage
from flows.runner import completed_job, engine_session, pipeline_key, run_stages


def output_columns(columns: list[str], spec: SourceSpec) -> list[tuple[str, str]]:
    """(column, output name) of the kept documents: the input's own column names; tierlake's added
    columns dropped, except ``id`` when it was derived (removed/ refers to it)."""
    out = []
    for c in columns:
        if c == "text":
            out.append((c, spec.text_column))
        elif c == "id":
            out.append((c, spec.id_column or "id"))
        elif c == "input_id" and not spec.id_column:
            out.append((c, c))  # the input's own `id` (not named as the id column) next to the derived id
        elif c.startswith("input_") and c[len("input_") :] in RESERVED:
            out.append((c, c[len("input_") :]))
        elif c not in ("source", "token_count", "source_file", "source_line"):
            out.append((c, c))
    return out


def _restore_input_columns(kept, spec: SourceSpec):
    from pyspark.sql import functions as F

    return kept.select(*(F.col(f"`{c}`").alias(name) for c, name in output_columns(kept.columns, spec)))


def _job_stats(run_id, input_path, started, engine, stages: list[StageStats], outputs, exact, near, index, index_record) -> dict:
    """stats.json of a dedup run; raises when documents in != kept + removed + quarantined."""
    bands, rows = near.banding()
    ingest_stats = stages[0]
    stats = {
        "run_id": run_id,
        "created_at": now_iso(),
        "input": input_path,
        "engine": engine,
        "seconds": round(time.time() - started, 3),
        "documents_in": ingest_stats.docs_in,
        "kept": outputs["kept"].rows,
        "removed": {k: v for s in stages for k, v in s.removed.items()},
        "quarantined": ingest_stats.quarantined,
        "stages": [s.model_dump() for s in stages],
        "outputs": {k: v.model_dump() for k, v in outputs.items()},
        "params": {"exact": exact.model_dump(), "near": {**near.model_dump(), "bands": bands, "rows": rows}},
        "index": {"path": index.root, "run": index_record, "runs_before": len(index.meta["runs"]) - 1} if index else None,
    }
    total = stats["kept"] + sum(stats["removed"].values()) + sum(stats["quarantined"].values())
    if total != stats["documents_in"]:
        raise RuntimeError(f"accounting does not add up: {total} != {stats['documents_in']}")
    return stats


def _index_for(index_dir: str | None, near: NearDedupParams) -> DedupIndex | None:
    bands, rows = near.banding()
    return (
        DedupIndex(index_dir, {"num_perm": near.num_perm, "seed": near.seed, "bands": bands, "rows": rows, "ngram": near.ngram, "unit": near.unit})
        if index_dir
        else None
    )


@holds_output_lock("output", "tierlake dedup")
def run_dedup(
    input_path: str,
    output: str,
    exact: ExactDedupParams,
    near: NearDedupParams,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    index_dir: str | None = None,
    spark_settings: SparkSettings | None = None,
    shard_bytes: int = 256 << 20,
    engine: str = "spark",
    threads: int | None = None,
    resume: bool = False,
) -> dict:
    """Ingest -> exact -> near dedup of one input through the runner, on Spark (``engine="spark"``)
    or in one process (``"local"``: the same stages on Arrow tables, :mod:`curation.dedup_local`,
    for inputs that fit one machine's memory). ``resume``: keep stage checkpoints in
    ``OUTPUT/_checkpoints`` so a re-run after a crash redoes only the unfinished stages (not with
    ``index_dir``: appending to the index is not repeatable)."""
    started = time.time()
    spec = SourceSpec(name=source_name(input_path), path=input_path, text_column=text_column, id_column=id_column)
    index = _index_for(index_dir, near)
    stages: list[Stage] = [IngestStage(IngestParams(), [spec]), ExactDedupStage(exact), NearDedupStage(near, keep_band_rows=index is not None)]
    key = pipeline_key(stages, {"index": index_dir, "shard_bytes": shard_bytes}, engine)
    if resume and (done := completed_job(output, key)):
        return {**done, "skipped": True}
    spark, local_threads = engine_session(engine, [spec], threads, spark_settings)
    run_id = begin_job_output(output)
    ctx = StageContext(root=output, run_id=run_id, spark=spark, threads=local_threads)
    if engine == "local" and near.enabled:
        from curation.minhash import load_kernels

        # the compiled kernels load while the input is read (Arrow's readers release the GIL)
        threading.Thread(target=load_kernels, args=(near.ngram, near.unit, near.verify), daemon=True).start()
    start = {}
    parts = (index.frames(spark) if spark is not None else index.tables()) if index is not None else None
    if parts:  # None for an empty index
        start = dict(zip(("index_exact_keys", "index_bands", "index_texts"), parts))
    ck = Checkpoints(output, spark, enabled=resume and index is None)
    run = run_stages(stages, ctx, ck, start)
    f = run.frames
    kept, quarantine = f["kept"], f["quarantine"]
    near_stats = run.outputs["near_dedup"].stats
    if spark is not None:
        removed = combine_removed(f["exact_removed"], f["near_removed"])
        outputs = {
            "kept": write_shards(
                _restore_input_columns(kept, spec),
                output,
                "kept",
                run_id,
                shard_bytes,
                sort_by=id_column or "id",
                size_column=text_column,
                size_hint=shard_size_hint(near_stats),
            )
        }
        if removed is not None:
            outputs["removed"] = write_shards(removed, output, "removed", run_id, shard_bytes, size_column=None)
        if sum(run.outputs["ingest"].stats.quarantined.values()):
            outputs["quarantine"] = write_shards(quarantine, output, "quarantine", run_id, shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw")
    else:
        from connectors.shards import write_table_shards
        from curation.dedup_local import combine_removed_local

        removed = combine_removed_local(f["exact_removed"], f["near_removed"])
        names = output_columns(kept.column_names, spec)
        restored = kept.select([c for c, _ in names]).rename_columns([n for _, n in names])
        outputs = {
            "kept": write_table_shards(
                restored, output, "kept", run_id, shard_bytes, sort_by=id_column or "id", size_column=text_column, threads=ctx.threads
            )
        }
        if removed is not None:
            outputs["removed"] = write_table_shards(removed, output, "removed", run_id, shard_bytes, size_column=None, threads=ctx.threads)
        if quarantine.num_rows:
            outputs["quarantine"] = write_table_shards(
                quarantine, output, "quarantine", run_id, shard_bytes, sort_by=QUARANTINE_ORDER, size_column="raw", threads=ctx.threads
            )
    index_record = None
    if index is not None:
        index_record = index.append(run_id, *_index_parts(spark, kept, f["exact_keys"], f["band_rows"]))
    stats = _job_stats(run_id, input_path, started, engine, run.stats, outputs, exact, near, index, index_record)
    stats["key"] = key
    write_stats(stats, output, run_id)
    if spark is not None:
        release(f["documents"], quarantine, f["exact_removed"], f["near_removed"], f["band_rows"], f["exact_kept"], kept)
    return stats


def _index_parts(spark, kept, keys, band_rows):
    """(exact keys, band rows, texts) of the kept documents for :meth:`DedupIndex.append`."""
    if spark is None:
        from curation.dedup_local import index_parts_local

        return index_parts_local(kept, keys, band_rows)
    kept_ids = kept.select("id")
    kept_bands = (
        band_rows.where(~band_rows["_old"]).select("id", "band", "key").join(kept_ids, "id")
        if band_rows is not None
        else spark.createDataFrame([], "id string, band int, key long")
    )
    return exact_keys(kept), kept_bands, kept.select("id", "text")
