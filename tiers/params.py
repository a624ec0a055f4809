"""The parameters of the selection stage, as pydantic models: the one place their fields,
defaults and checks are defined, read by the stage, the flows, recipes and the CLI. Importing it
costs pydantic alone. Reasoning and measurements: docs/selection.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

TIERS = ("L0", "L1", "L2", "L3", "L4")

# T-MARS bucket fit (selection.md §2.5), best bucket first, as a prior per tier
TMARS_PRIOR = {"L4": (-0.160, 6.73), "L3": (-0.125, 8.55), "L2": (-0.100, 5.27), "L1": (-0.085, 2.27)}


class PoolLaw(BaseModel):
    model_config = {"extra": "forbid"}
    b: float = Field(..., lt=0, description="QQT utility (negative)")
    tau: float = Field(..., gt=0, description="repetitions for the utility to halve")


class QQTSettings(BaseModel):
    model_config = {"extra": "forbid"}
    a: float | None = Field(None, gt=0, description="fitted scale; default places the law at the budget")
    d: float = Field(0.1, ge=0, description="irreducible error")
    tau_convention: Literal["scaled", "plain"] = "scaled"
    tier_prior: dict[str, PoolLaw] = Field(default_factory=lambda: {t: PoolLaw(b=b, tau=tau) for t, (b, tau) in TMARS_PRIOR.items()})
    pools: dict[str, PoolLaw] = Field(default_factory=dict, description="fitted laws by pool name 'source/tier'")


class SelectParams(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = False
    budget_tokens: float = Field(1e6, gt=0, description="training budget in tokens")
    tiers: list[str] = Field(default_factory=lambda: ["L1", "L2", "L3", "L4"])
    max_epochs: float = Field(4.0, ge=1, description="no pool repeated more often than this")
    alignment_weight: float = Field(0.0, ge=0, description="weight of the OT distance to the targets")
    targets: list[str] = Field(default_factory=list, description="target example files (benchmark train/dev)")
    embedder: str = "static"
    embed_sample: int = Field(2000, ge=10, description="documents embedded per pool for OT")
    quantize_pool: int | None = Field(64, ge=2)
    quantize_target: int | None = Field(256, ge=2)
    steps: int = Field(100, ge=1)
    seed: int = 0
    qqt: QQTSettings = Field(default_factory=QQTSettings)
    laws: str | None = Field(None, description="laws.json from `tierlake probe`: choose the mix from fitted laws")
    keep_top: dict[str, float] = Field(
        default_factory=dict,
        description="per pool ('source/tier', or '*' for every pool): keep this top fraction of its tokens by betr_score (needs the score stage)",
    )

    @field_validator("keep_top")
    @classmethod
    def _keep_top(cls, v):
        bad = {k: x for k, x in v.items() if not 0 < x <= 1}
        if bad:
            raise ValueError(f"keep_top fractions must be in (0, 1], got {bad}")
        return v

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v):
        bad = [t for t in v if t not in TIERS or t == "L0"]
        if bad or not v:
            raise ValueError(f"tiers must be a non-empty subset of L1..L4 (L0 is never selected), got {v}")
        return v
