"""Tier policy L0–L4 (Wang et al. 2026, "Data Science and Technology Towards AGI Part I: Tiered
Data Management", arXiv 2602.09003; tier contents per OpenBMB's UltraData/Ultra-FineWeb cards,
``../shared/reference/scoring-and-tiers.md`` §3):

* L0 raw — every ingested document (and where it stays when it is a duplicate or shares a long
  n-gram with a benchmark test split: contaminated documents never reach a selectable tier);
* L1 filtered — passes the heuristic filters (:mod:`curation.heuristic_filters`) and is not a
  duplicate (exact or near);
* L2 selected — L1 with model quality score >= ``l2.threshold`` (or in the top ``l2.top_fraction``
  of L1 by score);
* L3 refined — L2 that also clears a stricter quality bar and is target-aligned (the score column
  named in ``l3.alignment_column`` >= its threshold, or in its top fraction);
* L4 organized — L3 documents holding at least one verified knowledge unit
  (:mod:`curation.knowledge_units`); the units themselves are the L4 data.

A document's ``tier`` is the highest it reached and ``tier_reasons`` says what stopped it going
higher (the filter rule with its value and threshold, the score against its bar), or for L4 the
verification that passed. The assignment is a pure function of stored signal columns, so a new
policy re-tiers a run without recomputing any signal (``tierlake retier``).

Departures: the paper leaves the L3 operation to LLM rewriting; tierlake keeps the original
document at L3 and, only when a refiner endpoint is configured, writes the rewrite beside it.
Top fractions are turned into thresholds on the exact quantile of the eligible documents' scores.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel, Field, model_validator

from curation.heuristic_filters import HeuristicFilters, first_failure
from curation.params import QualityModelParams


class ScoreBar(BaseModel):
    model_config = {"extra": "forbid"}
    threshold: float | None = Field(None, description="minimum score")
    top_fraction: float | None = Field(None, gt=0, le=1, description="or: keep this fraction of the eligible documents")

    @model_validator(mode="after")
    def _one_of(self):
        if self.threshold is not None and self.top_fraction is not None:
            raise ValueError("give threshold or top_fraction, not both")
        return self


class L2Policy(ScoreBar):
    threshold: float | None = 0.5

    @model_validator(mode="before")
    @classmethod
    def _fraction_replaces_default(cls, data):
        if isinstance(data, dict) and data.get("top_fraction") is not None and "threshold" not in data:
            data = {**data, "threshold": None}
        return data


class L3Policy(BaseModel):
    model_config = {"extra": "forbid"}
    quality: ScoreBar = Field(default_factory=lambda: ScoreBar(threshold=0.8))
    alignment_column: str | None = Field("target_similarity", description="score column for target alignment; null = not required")
    alignment: ScoreBar = Field(default_factory=lambda: ScoreBar(top_fraction=0.5))


class RefinerSettings(BaseModel):
    """An OpenAI-compatible chat endpoint that rewrites L3 documents (off by default)."""

    model_config = {"extra": "forbid"}
    enabled: bool = False
    endpoint: str = Field("http://127.0.0.1:8000/v1", description="base URL of an OpenAI-compatible API")
    model: str = "local-model"
    api_key_env: str | None = Field("OPENAI_API_KEY", description="environment variable holding the key (never in the recipe)")
    prompt: str = (
        "Rewrite the following text as a clear, self-contained textbook passage. Keep every fact; add nothing that is not in the text.\n\n{text}"
    )
    max_tokens: int = Field(1024, ge=16)
    timeout_seconds: float = Field(60, gt=0)
    concurrency: int = Field(4, ge=1, le=64)


class L4Policy(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    min_sources: int = Field(2, ge=2, description="independent sources that must agree on a qa/definition unit")


class QualityTraining(BaseModel):
    """Train the quality model inside the run from labelled files (JSONL with ``text``)."""

    model_config = {"extra": "forbid"}
    positive: list[str] = Field(..., min_length=1)
    negative: list[str] = Field(..., min_length=1)
    params: QualityModelParams = Field(default_factory=QualityModelParams)


class TierPolicy(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    filters: HeuristicFilters = Field(default_factory=HeuristicFilters)
    source_filters: dict[str, HeuristicFilters] = Field(
        default_factory=dict,
        description="per-source filter settings replacing `filters` (e.g. math text fails Gopher's 80%-alphabetic-words rule by nature)",
    )
    quality_model: str | None = Field(None, description="folder of a model from `tierlake train-quality`")
    quality_training: QualityTraining | None = Field(None, description="or: train one in the run")
    targets: list[str] = Field(default_factory=list, description="JSONL files of target examples (field `text`, or question+answer)")
    l2: L2Policy = Field(default_factory=L2Policy)
    l3: L3Policy = Field(default_factory=L3Policy)
    refiner: RefinerSettings = Field(default_factory=RefinerSettings)
    l4: L4Policy = Field(default_factory=L4Policy)
    exclude_contaminated: bool = Field(True, description="documents flagged by decontamination stay at L0 (never selected)")

    @model_validator(mode="after")
    def _one_model(self):
        if self.quality_model and self.quality_training:
            raise ValueError("give quality_model or quality_training, not both")
        return self

    def paths(self) -> list[tuple[Any, str, int | None]]:
        """(owner, attribute, index) of every file path in the policy, for resolving relative paths."""
        out: list[tuple[Any, str, int | None]] = [(self, "quality_model", None)] if self.quality_model else []
        out += [(self.targets, "", i) for i in range(len(self.targets))]
        if self.quality_training:
            out += [(self.quality_training.positive, "", i) for i in range(len(self.quality_training.positive))]
            out += [(self.quality_training.negative, "", i) for i in range(len(self.quality_training.negative))]
        return out


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def resolve_bar(bar: ScoreBar, quantile) -> float | None:
    """The bar as a threshold; a top fraction f becomes ``quantile(1 - f)`` of the eligible
    documents' scores (``quantile`` returns None when there are none: nothing passes)."""
    if bar.threshold is not None:
        return bar.threshold
    if bar.top_fraction is None:
        return None
    q = quantile(1 - bar.top_fraction)
    return float("inf") if q is None else float(q)


def tier_expressions(policy: TierPolicy, thresholds: dict[str, float | None]) -> list[pl.Expr]:
    """Columns ``tier`` and ``tier_reasons`` (list of strings) for L0–L3 from signal columns.

    Expected columns: ``duplicate_reason`` (null unless a duplicate), ``filter_reason`` (the first
    failed filter rule, :func:`filter_reason`, null when all pass),
    ``quality_score`` (null without a model) and the alignment column when one is configured.
    ``thresholds`` holds resolved ``l2``, ``l3_quality`` and ``l3_alignment`` bars."""
    c = pl.col
    fail = c("filter_reason")
    l2, l3q, l3a = thresholds.get("l2"), thresholds.get("l3_quality"), thresholds.get("l3_alignment")
    q = c("quality_score")
    acol = policy.l3.alignment_column
    q_reason_l2 = (
        pl.when(q.is_null())
        .then(pl.lit("quality_score: no quality model configured"))
        .otherwise(pl.lit("quality_score ") + q.round(4).cast(pl.String) + pl.lit(f" < {_fmt(l2)}" if l2 is not None else ""))
    )
    passes_l2 = q.is_not_null() & (q >= l2) if l2 is not None else pl.lit(False)
    l3_fail_q = (
        pl.when(q < l3q).then(pl.lit("l3 quality_score ") + q.round(4).cast(pl.String) + pl.lit(f" < {_fmt(l3q)}"))
        if l3q is not None
        else pl.lit(None, pl.String)
    )
    l3_fail_a: pl.Expr
    if acol:
        a = c(acol)
        l3_fail_a = (
            pl.when(a.is_null())
            .then(pl.lit(f"{acol}: missing"))
            .when(a < l3a)
            .then(pl.lit(f"{acol} ") + a.round(4).cast(pl.String) + pl.lit(f" < {_fmt(l3a) if l3a is not None else l3a}"))
        )
    else:
        l3_fail_a = pl.lit(None, pl.String)
    l3_reasons = pl.concat_list([l3_fail_q, l3_fail_a]).list.drop_nulls()
    contaminated = c("contaminated").fill_null(False) if policy.exclude_contaminated else pl.lit(False)
    contaminated_reason = pl.lit("contaminated: ") + c("contamination_ngrams").cast(pl.String) + pl.lit(" n-grams shared with a benchmark test split")
    return [
        pl.when(c("duplicate_reason").is_not_null())
        .then(pl.lit("L0"))
        .when(contaminated)
        .then(pl.lit("L0"))
        .when(fail.is_not_null())
        .then(pl.lit("L0"))
        .when(~passes_l2)
        .then(pl.lit("L1"))
        .when(l3_reasons.list.len() > 0)
        .then(pl.lit("L2"))
        .otherwise(pl.lit("L3"))
        .alias("tier"),
        pl.when(c("duplicate_reason").is_not_null())
        .then(pl.concat_list([c("duplicate_reason")]))
        .when(contaminated)
        .then(pl.concat_list([contaminated_reason]))
        .when(fail.is_not_null())
        .then(pl.concat_list([fail]))
        .when(~passes_l2)
        .then(pl.concat_list([q_reason_l2]))
        .when(l3_reasons.list.len() > 0)
        .then(l3_reasons)
        .otherwise(pl.concat_list([pl.lit("l4: not examined")]))
        .alias("tier_reasons"),
    ]


def filter_reason(policy: TierPolicy) -> pl.Expr:
    """The first failed heuristic rule, e.g. ``fineweb_line_punct_ratio`` (needs ``source`` when
    the policy has per-source filters)."""
    expr = first_failure(policy.filters.rules())
    if policy.source_filters:
        chained: Any = None  # Then, then ChainedThen
        for source, filters in sorted(policy.source_filters.items()):
            cond = pl.col("source") == source
            chained = (
                pl.when(cond).then(first_failure(filters.rules())) if chained is None else chained.when(cond).then(first_failure(filters.rules()))
            )
        expr = chained.otherwise(expr)
    return expr.alias("filter_reason")


def assign_tiers(signals: pl.DataFrame, policy: TierPolicy, thresholds: dict[str, float | None]) -> pl.DataFrame:
    """``signals`` with ``tier`` and ``tier_reasons`` added (L0–L3; L4 comes from verified units)."""
    if "contaminated" not in signals.columns:
        signals = signals.with_columns(contaminated=pl.lit(False), contamination_ngrams=pl.lit(0, pl.Int64))
    return signals.with_columns(tier_expressions(policy, thresholds))
