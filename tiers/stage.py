"""Spark glue for the tier stage: signals -> L0–L3 by policy -> L4 units -> one tier per document.

Orchestration of kernels only: signals come from :mod:`curation.document_signals`, the policy
from :mod:`tiers.policy` (polars expressions applied per Arrow batch), knowledge units from
:mod:`curation.knowledge_units`, the optional rewrite from :mod:`tiers.refiner`. Nothing is
removed here: every document of the stage's input leaves it exactly once with ``tier`` and
``tier_reasons``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from connectors.accounting import StageStats
from connectors.spark_frames import join_narrow
from connectors.targets import load_target_texts
from curation.document_signals import compute_signals
from curation.knowledge_units import extract_units
from curation.quality_model import QualityModel
from curation.target_similarity import TargetSimilarity
from tiers.params import TIERS
from tiers.policy import TierPolicy, filter_reason, resolve_bar, tier_expressions

UNIT_SCHEMA = pa.schema(
    [
        ("unit_id", pa.string()),
        ("id", pa.string()),
        ("kind", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("verified", pa.bool_()),
        ("verification", pa.string()),
        ("key", pa.string()),
        ("answer_key", pa.string()),
    ]
)


@dataclass
class TierResult:
    documents: Any  # every document: input columns + tier, tier_reasons
    signals: Any  # id, signal columns, filter_reason, duplicate_reason, tier, tier_reasons
    units: Any  # verified L4 units
    rejected_units: Any  # extracted units that failed verification
    refined: Any | None  # L3 rewrites (id, refined_text, ...) when a refiner is on
    stats: StageStats
    thresholds: dict
    counts: list[dict]  # per tier and source: documents and tokens


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"array<{_spark_type(t.value_type)}>"
    return {pa.string(): "string", pa.large_string(): "string", pa.float64(): "double", pa.int64(): "bigint", pa.bool_(): "boolean"}[t]


def _ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in schema)


def with_polars(df, fn, out_schema: pa.Schema):
    """Apply a polars DataFrame -> DataFrame function to every Arrow batch of a Spark frame."""

    def per_batch(batches):
        for batch in batches:
            out = fn(pl.from_arrow(batch)).to_arrow()
            yield from out.cast(out_schema).to_batches()

    return df.mapInArrow(per_batch, _ddl(out_schema))


def _schema_plus(df, extra: list[tuple[str, pa.DataType]]) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    base = to_arrow_schema(df.schema)
    return pa.schema(list(base) + [pa.field(n, t) for n, t in extra])


def _quantile_fn(frame, column: str):
    def q(p: float):
        if frame.filter(frame[column].isNotNull()).limit(1).count() == 0:
            return None
        return frame.approxQuantile(column, [p], 0.0)[0]

    return q


def check_alignment_column(columns: list[str], policy: TierPolicy) -> str | None:
    """The policy's L3 alignment column, which the signals must hold (a user error otherwise)."""
    col = policy.l3.alignment_column
    if col and col not in columns:
        raise ValueError(
            f"tiers.l3.alignment_column: no column {col!r} in the signals; available: "
            f"{', '.join(c for c in columns if c.endswith(('score', 'similarity')))}"
        )
    return col


def units_batch(ids: list[str], texts: list) -> pa.RecordBatch:
    """The knowledge units (:func:`curation.knowledge_units.extract_units`) of a batch of L3 documents."""
    names = UNIT_SCHEMA.names
    rows = []
    for doc_id, text in zip(ids, texts):
        rows += extract_units(doc_id, text or "")
    return pa.RecordBatch.from_pylist([{k: r[k] for k in names} for r in rows], schema=UNIT_SCHEMA)


UNIT_COLUMNS = ["unit_id", "id", "source", "kind", "start", "end", "question", "answer", "verification"]


def no_unit_reason(policy: TierPolicy) -> str:
    """The reason an L3 document without a verified or rejected unit stays at L3."""
    return "l4: no knowledge unit found" if policy.l4.enabled else "l4: disabled"


def no_step(name: str) -> None:
    return None


def tier_signals(signals, policy: TierPolicy, on_step=no_step):
    """(signals + filter_reason, tier, tier_reasons for L0–L3, resolved thresholds).

    Any earlier filter_reason/tier columns are recomputed: this is how a new policy re-tiers a
    run from its stored signals without touching the text. ``on_step(name)`` is called as each
    materialized step ends (the stage's time split)."""
    from pyspark.sql import functions as F

    base = signals.select(*[c for c in signals.columns if c not in ("filter_reason", "tier", "tier_reasons")])
    if "duplicate_reason" not in base.columns:
        base = base.withColumn("duplicate_reason", F.lit(None).cast("string"))
    if "contaminated" not in base.columns:
        base = base.withColumn("contaminated", F.lit(False)).withColumn("contamination_ngrams", F.lit(0).cast("bigint"))
    col = check_alignment_column(base.columns, policy)
    rule = filter_reason(policy)
    sig = with_polars(base, lambda b: b.with_columns(rule), _schema_plus(base, [("filter_reason", pa.string())]))
    sig = sig.localCheckpoint()
    on_step("signals and filters")
    l1 = sig.filter(F.col("duplicate_reason").isNull() & F.col("filter_reason").isNull())
    thresholds = {"l2": resolve_bar(policy.l2, _quantile_fn(l1, "quality_score"))}
    l2 = l1.filter(F.col("quality_score") >= F.lit(thresholds["l2"])) if thresholds["l2"] is not None else l1.limit(0)
    thresholds["l3_quality"] = resolve_bar(policy.l3.quality, _quantile_fn(l2, "quality_score"))
    thresholds["l3_alignment"] = resolve_bar(policy.l3.alignment, _quantile_fn(l2, col)) if col else None
    on_step("thresholds")
    exprs = tier_expressions(policy, thresholds)
    tiered = with_polars(sig, lambda b: b.with_columns(exprs), _schema_plus(sig, [("tier", pa.string()), ("tier_reasons", pa.list_(pa.string()))]))
    return tiered, thresholds


def knowledge_units(l3_docs, policy: TierPolicy):
    """(verified units, rejected units) of L3 documents (id, source, text)."""
    from pyspark.sql import functions as F

    def per_batch(batches):
        for batch in batches:
            yield units_batch(batch.column("id").to_pylist(), batch.column("text").to_pylist())

    units = l3_docs.select("id", "text").mapInArrow(per_batch, _ddl(UNIT_SCHEMA))
    units = units.join(l3_docs.select("id", "source"), "id").localCheckpoint()
    agree = units.filter(F.col("kind") != "worked_solution").groupBy("kind", "key", "answer_key").agg(F.countDistinct("source").alias("sources"))
    units = units.join(agree, ["kind", "key", "answer_key"], "left")
    ok_agree = (F.col("kind") != "worked_solution") & (F.col("sources") >= policy.l4.min_sources)
    units = units.withColumn("verified", F.col("verified") | F.coalesce(ok_agree, F.lit(False))).withColumn(
        "verification",
        F.when(ok_agree, F.concat(F.lit("agreement("), F.col("sources").cast("string"), F.lit(" sources)")))
        .when(
            (F.col("kind") != "worked_solution"),
            F.concat(F.lit("no_agreement("), F.coalesce(F.col("sources"), F.lit(1)).cast("string"), F.lit(" source)")),
        )
        .otherwise(F.col("verification")),
    )
    return units.filter("verified").select(*UNIT_COLUMNS), units.filter(~F.col("verified")).select(*UNIT_COLUMNS)


def duplicate_reasons(removed):
    """(id, duplicate_reason) from dedup's removed rows: ``exact_duplicate of ID``."""
    from pyspark.sql import functions as F

    return removed.select("id", F.concat(F.col("kind"), F.lit("_duplicate of "), F.col("duplicate_of")).alias("duplicate_reason"))


def prepare_quality_model(policy: TierPolicy, model_dir: str) -> dict | None:
    """Train the policy's quality model into ``model_dir`` when it asks for training; point the
    policy at it. Returns the cross-validation figures (None when no model is trained here)."""
    from curation.quality_model import train_quality_model

    training = policy.quality_training
    if training is None:
        return None
    pos, neg = load_target_texts(training.positive), load_target_texts(training.negative)
    model = train_quality_model(pos, neg, training.params, sources={"positive": training.positive, "negative": training.negative})
    model.save(model_dir)
    policy.quality_model, policy.quality_training = model_dir, None
    return model.meta["cross_validation"]


def signal_models(policy: TierPolicy) -> tuple[QualityModel | None, TargetSimilarity | None]:
    """The policy's quality model and lexical target similarity (None where it names none)."""
    model = QualityModel.load(policy.quality_model) if policy.quality_model else None
    sim = TargetSimilarity(load_target_texts(policy.targets)) if policy.targets else None
    return model, sim


def tier_stage(docs, duplicates, policy: TierPolicy, all_docs=None, signals=None, scores=None) -> TierResult:
    """Tier ``docs`` (deduplicated documents with id, source, text, token_count).

    ``duplicates``: (id, duplicate_reason) of the documents dedup removed, whose rows come from
    ``all_docs`` (every ingested document); they are L0 with that reason. ``signals``: stored
    signals of ``docs`` from an earlier run (re-tiering); computed when None. ``scores``: extra
    per-document columns joined by id (the score stage's ``betr_score``, ``betr_rank_pct``,
    ``contaminated``, ``contamination_ngrams``): usable as ``l3.alignment_column``; contaminated
    documents stay at L0."""
    from pyspark.sql import functions as F

    started = time.time()
    step_seconds: dict[str, float] = {}  # Spark is lazy: a step ends where a checkpoint or an action runs it

    def on_step(name: str) -> None:
        step_seconds[name] = round(time.time() - started - sum(step_seconds.values()), 3)

    model = None
    if signals is None:
        model, sim = signal_models(policy)
        signals = compute_signals(docs, model, sim, language=policy.filters.language.enabled)
    if scores is not None:
        signals = signals.drop(*[c for c in scores.columns if c != "id" and c in signals.columns]).join(scores, "id", "left")
    tiered, thresholds = tier_signals(signals, policy, on_step)
    tiered = tiered.localCheckpoint()
    on_step("tiers L0-L3")
    # per-document columns go to the text, never the text to them (connectors/spark_frames.py)
    l3 = join_narrow(docs, tiered.filter(F.col("tier") == "L3").select("id"))
    empty_units = docs.sparkSession.createDataFrame([], _ddl(UNIT_SCHEMA)).withColumn("source", F.lit(None).cast("string"))
    if policy.l4.enabled:
        units, rejected = knowledge_units(l3, policy)
        units, rejected = units.localCheckpoint(), rejected.localCheckpoint()
        on_step("knowledge units (L4)")
    else:
        units = rejected = empty_units.select(*UNIT_COLUMNS)
    promoted = units.groupBy("id").agg(
        F.array_sort(F.collect_set(F.concat(F.lit("l4: "), F.col("kind"), F.lit(" "), F.col("verification")))).alias("_l4")
    )
    failed = rejected.groupBy("id").agg(
        F.array_sort(F.collect_set(F.concat(F.lit("l4: "), F.col("kind"), F.lit(" "), F.col("verification")))).alias("_l4_failed")
    )
    tiered = (
        tiered.join(promoted, "id", "left")
        .join(failed, "id", "left")
        .withColumn("tier", F.when(F.col("_l4").isNotNull(), F.lit("L4")).otherwise(F.col("tier")))
        .withColumn(
            "tier_reasons",
            F.when(F.col("_l4").isNotNull(), F.col("_l4"))
            .when((F.col("tier") == "L3") & F.col("_l4_failed").isNotNull(), F.col("_l4_failed"))
            .when(F.col("tier") == "L3", F.array(F.lit(no_unit_reason(policy))))
            .otherwise(F.col("tier_reasons")),
        )
        .drop("_l4", "_l4_failed")
    )
    tier_cols = tiered.select("id", "tier", "tier_reasons", "quality_score", "filter_reason")
    kept = join_narrow(docs, tier_cols)
    documents = kept
    if duplicates is not None and all_docs is not None:
        dup_docs = (
            join_narrow(all_docs, duplicates)
            .withColumn("tier", F.lit("L0"))
            .withColumn("tier_reasons", F.array(F.col("duplicate_reason")))
            .withColumn("quality_score", F.lit(None).cast("double"))
            .withColumn("filter_reason", F.lit(None).cast("string"))
            .drop("duplicate_reason")
        )
        documents = kept.unionByName(dup_docs.select(*documents.columns))
    documents = documents.localCheckpoint()
    on_step("documents with tiers (joins)")
    refined = None
    if policy.refiner.enabled:
        from tiers.refiner import refine

        refined = refine(documents.filter(F.col("tier").isin("L3", "L4")).select("id", "text"), policy.refiner)  # lazy: runs where it is written
    counts = [
        {"tier": r["tier"], "source": r["source"], "documents": int(r["documents"]), "tokens": int(r["tokens"] or 0)}
        for r in documents.groupBy("tier", "source")
        .agg(F.count(F.lit(1)).alias("documents"), F.sum("token_count").alias("tokens"))
        .orderBy("tier", "source")
        .collect()
    ]
    unit_counts = (units.count(), rejected.count())
    filter_failures = dict(
        sorted(
            (r["filter_reason"], int(r["count"]))
            for r in tiered.filter(F.col("filter_reason").isNotNull()).groupBy("filter_reason").count().collect()
        )
    )
    on_step("counts")
    return tier_result_of(
        documents=documents,
        tiered=tiered,
        units=units,
        rejected=rejected,
        refined=refined,
        counts=counts,
        thresholds=thresholds,
        unit_counts=unit_counts,
        filter_failures=filter_failures,
        model=model,
        step_seconds=step_seconds,
        started=started,
    )


def tier_result_of(
    *, documents, tiered, units, rejected, refined, counts, thresholds, unit_counts: tuple[int, int], filter_failures, model, step_seconds, started
) -> TierResult:
    """The stage's result and stats (both engines); ``unit_counts``: (verified, rejected) units."""
    thresholds = {k: (None if v is None or math.isinf(v) else v) for k, v in thresholds.items()}  # JSON has no inf
    by_tier = {t: sum(c["documents"] for c in counts if c["tier"] == t) for t in TIERS}
    total = sum(by_tier.values())
    stats = StageStats(
        name="tier",
        docs_in=total,
        docs_out=total,
        seconds=round(time.time() - started, 3),
        details={
            "tiers": by_tier,
            "thresholds": thresholds,
            "l4_units_verified": unit_counts[0],
            "l4_units_rejected": unit_counts[1],
            "quality_model_cv": (model.meta.get("cross_validation", {}) if model else None),
            "filter_failures": filter_failures,
            "step_seconds": step_seconds,
        },
    )
    return TierResult(
        documents=documents, signals=tiered, units=units, rejected_units=rejected, refined=refined, stats=stats, thresholds=thresholds, counts=counts
    )
