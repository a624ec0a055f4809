"""Per-stage accounting: documents in = kept + removed (by reason) + quarantined (by reason)."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field, model_validator


class StageStats(BaseModel):
    """What one stage did. ``removed`` and ``quarantined`` map reason -> document count."""

    name: str
    docs_in: int = Field(ge=0)
    docs_out: int = Field(ge=0)
    tokens_in: int = Field(0, ge=0)
    tokens_out: int = Field(0, ge=0)
    removed: dict[str, int] = Field(default_factory=dict)
    quarantined: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    details: dict = Field(default_factory=dict)

    @property
    def output_counts(self) -> tuple[int, int]:
        """(documents, tokens) this stage passed on: the next stage's ``known_in``."""
        return self.docs_out, self.tokens_out

    @model_validator(mode="after")
    def _counts_add_up(self):
        total = self.docs_out + sum(self.removed.values()) + sum(self.quarantined.values())
        if total != self.docs_in:
            raise ValueError(
                f"stage {self.name}: documents in ({self.docs_in}) != kept ({self.docs_out}) + removed "
                f"({sum(self.removed.values())}) + quarantined ({sum(self.quarantined.values())})"
            )
        return self


def count_by(df, column: str) -> dict[str, int]:
    """{value: count} of a small-cardinality column (one Spark job)."""
    return dict(sorted((str(r[0]), int(r[1])) for r in df.groupBy(column).count().collect()))


def removal_stats(name: str, docs, removed, started: float, details: dict | None = None, known_in: tuple[int, int] | None = None) -> StageStats:
    """StageStats of a stage that removes rows of ``docs`` listed in ``removed`` (a Spark frame with
    ``reason`` and ``token_count``): two small Spark jobs over cached frames, one when the input's
    (documents, tokens) are ``known_in`` — the previous stage's output counts."""
    from pyspark.sql import functions as F

    if known_in is None:
        agg = docs.agg(F.count(F.lit(1)), F.sum("token_count")).first()
        known_in = (int(agg[0]), int(agg[1] or 0))
    counts = (
        {}
        if removed is None
        else {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in removed.groupBy("reason").agg(F.count(F.lit(1)), F.sum("token_count")).collect()}
    )
    return stats_from_counts(name, known_in, counts, started, details or {})


def removal_stats_arrow(name: str, known_in: tuple[int, int], removed, started: float, details: dict) -> StageStats:
    """:func:`removal_stats` from an Arrow table of removals (``reason``, ``token_count``): the
    local engine's accounting."""
    counts = {}
    if removed is not None and removed.num_rows:
        agg = removed.group_by("reason").aggregate([("id", "count"), ("token_count", "sum")])
        counts = {str(r): (int(n), int(t or 0)) for r, n, t in zip(*(agg.column(c).to_pylist() for c in ("reason", "id_count", "token_count_sum")))}
    return stats_from_counts(name, known_in, counts, started, details)


def stats_from_counts(name: str, known_in: tuple[int, int], counts: dict[str, tuple[int, int]], started: float, details: dict) -> StageStats:
    """StageStats from the input's (documents, tokens) and reason -> (documents, tokens) removed:
    both engines' accounting ends here, so docs_out = docs_in - removed is computed once."""
    docs_in, tokens_in = known_in
    removed = {reason: n for reason, (n, _) in sorted(counts.items())}
    return StageStats(
        name=name,
        docs_in=docs_in,
        docs_out=docs_in - sum(removed.values()),
        tokens_in=tokens_in,
        tokens_out=tokens_in - sum(t for _, t in counts.values()),
        removed=removed,
        seconds=round(time.time() - started, 3),
        details=details,
    )
