"""The tier stage on in-memory Arrow tables, without Spark: the one-process engine's tier stage.

Same steps and kernels as :mod:`tiers.stage` — signals per slice
(:func:`curation.document_signals.signals_batch`), the policy's polars expressions
(:func:`tiers.policy.filter_reason`, :func:`tiers.policy.tier_expressions`), thresholds by
Spark's exact quantile rule (:mod:`curation.quantiles`), knowledge units
(:func:`tiers.stage.units_batch`) and their cross-source agreement, then one tier per document.
The joins and group-bys Spark does are polars' here. Frames, thresholds and counts equal the
Spark engine's (tests/test_engines.py). See docs/engine.md.
"""

from __future__ import annotations

import time

import polars as pl
import pyarrow as pa

from curation.dedup_local import map_slices, slice_of
from curation.document_signals import BATCH_ROWS, signals_batch, signals_schema
from curation.quantiles import exact_quantiles
from tiers.policy import TierPolicy, filter_reason, resolve_bar, tier_expressions
from tiers.stage import (
    UNIT_COLUMNS,
    UNIT_SCHEMA,
    TierResult,
    check_alignment_column,
    no_step,
    no_unit_reason,
    signal_models,
    tier_result_of,
    units_batch,
)


def duplicate_reasons_local(removed: pa.Table) -> pa.Table:
    """(id, duplicate_reason) from dedup's removed rows: ``exact_duplicate of ID``."""
    frame = pl.from_arrow(removed.select(["id", "kind", "duplicate_of"]))
    assert isinstance(frame, pl.DataFrame)
    return frame.select("id", pl.concat_str([pl.col("kind"), pl.lit("_duplicate of "), pl.col("duplicate_of")]).alias("duplicate_reason")).to_arrow()


def compute_signals_local(docs: pa.Table, policy: TierPolicy, threads: int):
    """(signals table, quality model) of ``docs`` (id, source, text), slice by slice on threads:
    every kernel of :func:`curation.document_signals.signals_batch` releases the GIL for its work
    (language id included, :mod:`curation.fasttext_jit`)."""
    model, sim = signal_models(policy)
    schema = signals_schema()
    narrow = docs.select(["id", "source", "text"])
    language = policy.filters.language.enabled

    def one_slice(start: int, stop: int) -> list[pa.RecordBatch]:
        out = []
        for s in range(start, stop, BATCH_ROWS):
            e = min(s + BATCH_ROWS, stop)
            part = pa.RecordBatch.from_arrays([slice_of(narrow.column(c), s, e) for c in narrow.column_names], names=narrow.column_names)
            out.append(signals_batch(part, model, sim, language, schema))
        return out

    batches = [b for part in map_slices(docs.num_rows, one_slice, threads, "tier signals") for b in part]
    return pa.Table.from_batches(batches, schema=schema), model


def _quantile(frame: pl.DataFrame, column: str):
    def q(p: float):
        values = frame.get_column(column).drop_nulls().cast(pl.Float64).to_numpy()
        found = exact_quantiles(values, [p])
        return None if found is None else float(found[0])

    return q


def tier_signals_local(signals: pl.DataFrame, policy: TierPolicy, on_step=no_step) -> tuple[pl.DataFrame, dict]:
    """:func:`tiers.stage.tier_signals` on a polars frame."""
    base = signals.drop([c for c in ("filter_reason", "tier", "tier_reasons") if c in signals.columns])
    if "duplicate_reason" not in base.columns:
        base = base.with_columns(pl.lit(None, pl.Utf8).alias("duplicate_reason"))
    if "contaminated" not in base.columns:
        base = base.with_columns(pl.lit(False).alias("contaminated"), pl.lit(0, pl.Int64).alias("contamination_ngrams"))
    col = check_alignment_column(base.columns, policy)
    sig = base.with_columns(filter_reason(policy))
    on_step("signals and filters")
    l1 = sig.filter(pl.col("duplicate_reason").is_null() & pl.col("filter_reason").is_null())
    thresholds = {"l2": resolve_bar(policy.l2, _quantile(l1, "quality_score"))}
    l2 = l1.filter(pl.col("quality_score") >= thresholds["l2"]) if thresholds["l2"] is not None else l1.head(0)
    thresholds["l3_quality"] = resolve_bar(policy.l3.quality, _quantile(l2, "quality_score"))
    thresholds["l3_alignment"] = resolve_bar(policy.l3.alignment, _quantile(l2, col)) if col else None
    on_step("thresholds")
    return sig.with_columns(tier_expressions(policy, thresholds)), thresholds


def knowledge_units_local(l3_docs: pl.DataFrame, policy: TierPolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`tiers.stage.knowledge_units` on a polars frame (id, source, text)."""
    batch = units_batch(l3_docs.get_column("id").to_list(), l3_docs.get_column("text").to_list())
    units = pl.from_arrow(pa.Table.from_batches([batch], schema=UNIT_SCHEMA))
    assert isinstance(units, pl.DataFrame)
    units = units.join(l3_docs.select("id", "source"), on="id")
    keys = ["kind", "key", "answer_key"]
    agree = units.filter(pl.col("kind") != "worked_solution").group_by(keys).agg(pl.col("source").drop_nulls().n_unique().alias("sources"))
    units = units.join(agree, on=keys, how="left")  # null keys match nothing, as in Spark
    other = pl.col("kind") != "worked_solution"
    ok_agree = other & (pl.col("sources") >= policy.l4.min_sources)
    units = units.with_columns(
        (pl.col("verified") | ok_agree.fill_null(False)).alias("verified"),
        pl.when(ok_agree)
        .then(pl.concat_str([pl.lit("agreement("), pl.col("sources").cast(pl.Utf8), pl.lit(" sources)")]))
        .when(other)
        .then(pl.concat_str([pl.lit("no_agreement("), pl.col("sources").fill_null(1).cast(pl.Utf8), pl.lit(" source)")]))
        .otherwise(pl.col("verification"))
        .alias("verification"),
    )
    return units.filter(pl.col("verified")).select(UNIT_COLUMNS), units.filter(~pl.col("verified")).select(UNIT_COLUMNS)


def _reasons_by_id(units: pl.DataFrame, name: str) -> pl.DataFrame:
    reason = pl.concat_str([pl.lit("l4: "), pl.col("kind"), pl.lit(" "), pl.col("verification")])
    return units.group_by("id").agg(reason.drop_nulls().unique().sort().alias(name))


def tier_stage_local(
    docs: pa.Table,
    duplicates: pa.Table | None,
    policy: TierPolicy,
    all_docs: pa.Table | None = None,
    scores: pa.Table | None = None,
    threads: int = 1,
) -> TierResult:
    """:func:`tiers.stage.tier_stage` on Arrow tables; every frame of the result is an Arrow table."""
    started = time.time()
    step_seconds: dict[str, float] = {}

    def on_step(name: str) -> None:
        step_seconds[name] = round(time.time() - started - sum(step_seconds.values()), 3)

    signals_table, model = compute_signals_local(docs, policy, threads)
    signals = pl.from_arrow(signals_table)
    assert isinstance(signals, pl.DataFrame)
    if scores is not None:
        score_frame = pl.from_arrow(scores)
        assert isinstance(score_frame, pl.DataFrame)
        signals = signals.drop([c for c in score_frame.columns if c != "id" and c in signals.columns]).join(score_frame, on="id", how="left")
    tiered, thresholds = tier_signals_local(signals, policy, on_step)
    on_step("tiers L0-L3")
    text = pl.from_arrow(docs.select(["id", "source", "text"]))
    assert isinstance(text, pl.DataFrame)
    if policy.l4.enabled:
        l3 = text.join(tiered.filter(pl.col("tier") == "L3").select("id"), on="id")
        units, rejected = knowledge_units_local(l3, policy)
        on_step("knowledge units (L4)")
    else:
        empty = pl.from_arrow(UNIT_SCHEMA.empty_table())
        assert isinstance(empty, pl.DataFrame)
        empty = empty.with_columns(pl.lit(None, pl.Utf8).alias("source"))
        units = rejected = empty.select(UNIT_COLUMNS)
    tiered = (
        tiered.join(_reasons_by_id(units, "_l4"), on="id", how="left")
        .join(_reasons_by_id(rejected, "_l4_failed"), on="id", how="left")
        .with_columns(pl.when(pl.col("_l4").is_not_null()).then(pl.lit("L4")).otherwise(pl.col("tier")).alias("tier"))
        .with_columns(
            pl.when(pl.col("_l4").is_not_null())
            .then(pl.col("_l4"))
            .when((pl.col("tier") == "L3") & pl.col("_l4_failed").is_not_null())
            .then(pl.col("_l4_failed"))
            .when(pl.col("tier") == "L3")
            .then(pl.lit([no_unit_reason(policy)], pl.List(pl.Utf8)))
            .otherwise(pl.col("tier_reasons"))
            .alias("tier_reasons")
        )
        .drop("_l4", "_l4_failed")
    )
    doc_frame = pl.from_arrow(docs)
    assert isinstance(doc_frame, pl.DataFrame)
    documents = doc_frame.join(tiered.select("id", "tier", "tier_reasons", "quality_score", "filter_reason"), on="id")
    if duplicates is not None and all_docs is not None:
        every, dups = pl.from_arrow(all_docs), pl.from_arrow(duplicates)
        assert isinstance(every, pl.DataFrame) and isinstance(dups, pl.DataFrame)
        dup_docs = every.join(dups, on="id").with_columns(
            pl.lit("L0").alias("tier"),
            pl.concat_list([pl.col("duplicate_reason")]).alias("tier_reasons"),
            pl.lit(None, pl.Float64).alias("quality_score"),
            pl.lit(None, pl.Utf8).alias("filter_reason"),
        )
        documents = pl.concat([documents, dup_docs.select(documents.columns)], how="vertical_relaxed")
    on_step("documents with tiers (joins)")
    documents_table = documents.to_arrow()
    refined = None
    if policy.refiner.enabled:
        from tiers.refiner import refine_local

        refined = refine_local(documents.filter(pl.col("tier").is_in(["L3", "L4"])).select("id", "text").to_arrow(), policy.refiner)
    by = documents.group_by("tier", "source").agg(pl.len().alias("documents"), pl.col("token_count").sum().alias("tokens")).sort("tier", "source")
    counts = [
        {"tier": r["tier"], "source": r["source"], "documents": int(r["documents"]), "tokens": int(r["tokens"] or 0)}
        for r in by.iter_rows(named=True)
    ]
    failures = tiered.filter(pl.col("filter_reason").is_not_null()).group_by("filter_reason").len()
    filter_failures = dict(sorted((r["filter_reason"], int(r["len"])) for r in failures.iter_rows(named=True)))
    on_step("counts")
    return tier_result_of(
        documents=documents_table,
        tiered=tiered.to_arrow(),
        units=units.to_arrow(),
        rejected=rejected.to_arrow(),
        refined=refined,
        counts=counts,
        thresholds=thresholds,
        unit_counts=(units.height, rejected.height),
        filter_failures=filter_failures,
        model=model,
        step_seconds=step_seconds,
        started=started,
    )
