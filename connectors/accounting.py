"""Per-stage accounting: documents in = kept + removed (by reason) + quarantined (by reason)."""
from __future__ import annotations

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
    return {str(r[0]): int(r[1]) for r in df.groupBy(column).count().collect()}
