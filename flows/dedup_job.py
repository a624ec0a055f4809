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
from connectors.dedup_index import DedupIndex
from connectors.manifest import (
    begin_job_output,
    now_iso,
    source_name,
    write_stats,
)
from connectors.shards import write_shards
from connectors.sources import RESERVED, IngestParams, SourceSpec, ingest, release, shard_size_hint
from connectors.spark_session import SparkSettings, get_spark
from curation.exact_dedup import ExactDedupParams, exact_dedup_stage, exact_keys
from curation.near_dedup import (
    NearDedupIndex,
    NearDedupParams,
    combine_removed,
    near_dedup_stage,
)


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
        elif c.startswith("input_") and c[len("input_"):] in RESERVED:
            out.append((c, c[len("input_"):]))
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
        "run_id": run_id, "created_at": now_iso(), "input": input_path, "engine": engine,
        "seconds": round(time.time() - started, 3),
        "documents_in": ingest_stats.docs_in, "kept": outputs["kept"].rows,
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
    return DedupIndex(index_dir, {"num_perm": near.num_perm, "seed": near.seed, "bands": bands, "rows": rows,
                                  "ngram": near.ngram, "unit": near.unit}) if index_dir else None


def run_dedup(input_path: str, output: str, exact: ExactDedupParams, near: NearDedupParams,
              text_column: str = "text", id_column: str | None = None, index_dir: str | None = None,
              spark_settings: SparkSettings | None = None, shard_bytes: int = 256 << 20,
              engine: str = "spark", threads: int | None = None) -> dict:
    """Run the dedup job on Spark (``engine="spark"``) or in one process (``"local"``,
    :mod:`curation.dedup_local`: same results, for inputs that fit one machine's memory)."""
    if engine == "local":
        return run_dedup_local(input_path, output, exact, near, text_column, id_column, index_dir, shard_bytes, threads)
    if engine != "spark":
        raise ValueError(f"engine must be 'spark' or 'local', got {engine!r}")
    started = time.time()
    run_id = begin_job_output(output)
    spark = get_spark(spark_settings)
    name = source_name(input_path)
    spec = SourceSpec(name=name, path=input_path, text_column=text_column, id_column=id_column)
    index = _index_for(index_dir, near)
    frames = index.frames(spark) if index else None
    docs, quarantine, _inputs, ingest_stats = ingest(spark, [spec], IngestParams())
    after_exact, exact_removed, exact_stats = exact_dedup_stage(docs, exact, frames[0] if frames else None,
                                                                known_in=ingest_stats.output_counts)
    near_index = NearDedupIndex(frames[1], frames[2]) if frames else None
    kept, near_removed, near_stats, band_rows = near_dedup_stage(after_exact, near, near_index,
                                                                 known_in=exact_stats.output_counts)
    removed = combine_removed(exact_removed, near_removed)
    outputs = {"kept": write_shards(_restore_input_columns(kept, spec), output, "kept", run_id, shard_bytes,
                                    sort_by=id_column or "id", size_column=text_column,
                                    size_hint=shard_size_hint(near_stats))}
    if removed is not None:
        outputs["removed"] = write_shards(removed, output, "removed", run_id, shard_bytes, size_column=None)
    if sum(ingest_stats.quarantined.values()):
        outputs["quarantine"] = write_shards(quarantine, output, "quarantine", run_id, shard_bytes, sort_by="source_file", size_column="raw")
    index_record = None
    if index is not None:
        kept_ids = kept.select("id")
        kept_bands = band_rows.where(~band_rows["_old"]).select("id", "band", "key").join(kept_ids, "id") if band_rows is not None else spark.createDataFrame([], "id string, band int, key long")
        index_record = index.append(run_id, exact_keys(kept), kept_bands, kept.select("id", "text"))
    stats = _job_stats(run_id, input_path, started, "spark", [ingest_stats, exact_stats, near_stats], outputs,
                       exact, near, index, index_record)
    write_stats(stats, output, run_id)
    release(docs, quarantine, exact_removed, near_removed, band_rows, after_exact, kept)
    return stats


def run_dedup_local(input_path: str, output: str, exact: ExactDedupParams, near: NearDedupParams,
                    text_column: str = "text", id_column: str | None = None, index_dir: str | None = None,
                    shard_bytes: int = 256 << 20, threads: int | None = None) -> dict:
    """The dedup job in one process on Arrow tables (no JVM): same stages, outputs and stats.json."""
    from connectors.local_ingest import check_fits_in_memory, ingest_local
    from connectors.shards import write_table_shards
    from curation.dedup_local import (
        combine_removed_local,
        default_threads,
        exact_dedup_stage_local,
        index_parts_local,
        near_dedup_stage_local,
    )
    from curation.minhash import load_kernels

    started = time.time()
    spec = SourceSpec(name=source_name(input_path), path=input_path, text_column=text_column, id_column=id_column)
    check_fits_in_memory([spec])  # before any work: a clear refusal, not an out-of-memory kill
    threads = threads or default_threads()
    run_id = begin_job_output(output)
    # the compiled kernels load while the input is read (Arrow's readers release the GIL)
    kernels = threading.Thread(target=load_kernels, args=(near.ngram, near.unit, near.verify), daemon=True)
    if near.enabled:
        kernels.start()
    index = _index_for(index_dir, near)
    tables = index.tables() if index else None
    docs, quarantine, _inputs, ingest_stats = ingest_local([spec], IngestParams(), threads)
    after_exact, exact_removed, exact_stats, keys = exact_dedup_stage_local(
        docs, exact, tables[0] if tables else None, ingest_stats.output_counts, threads)
    if near.enabled:
        kernels.join()
    kept, near_removed, near_stats, band_rows = near_dedup_stage_local(
        after_exact, near, tables[1] if tables else None, tables[2] if tables else None, exact_stats.output_counts, threads)
    removed = combine_removed_local(exact_removed, near_removed)
    names = output_columns(kept.column_names, spec)
    restored = kept.select([c for c, _ in names]).rename_columns([n for _, n in names])
    outputs = {"kept": write_table_shards(restored, output, "kept", run_id, shard_bytes, sort_by=id_column or "id",
                                          size_column=text_column, threads=threads)}
    if removed is not None:
        outputs["removed"] = write_table_shards(removed, output, "removed", run_id, shard_bytes, size_column=None, threads=threads)
    if quarantine.num_rows:
        outputs["quarantine"] = write_table_shards(quarantine, output, "quarantine", run_id, shard_bytes,
                                                   sort_by="source_file", size_column="raw", threads=threads)
    index_record = index.append(run_id, *index_parts_local(kept, keys, band_rows)) if index is not None else None
    stats = _job_stats(run_id, input_path, started, "local", [ingest_stats, exact_stats, near_stats], outputs,
                       exact, near, index, index_record)
    write_stats(stats, output, run_id)
    return stats


def main(argv: list[str] | None = None) -> int:
    from flows.cli import main as cli_main

    return cli_main(["dedup", *(argv or [])])


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
