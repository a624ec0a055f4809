"""Typed YAML recipes: sources, output, stages with parameters, Spark settings, seed.

A wrong recipe fails before any work with the field path, the bad value and what was expected
(:func:`load_recipe` raises :class:`RecipeError`). Relative paths are resolved against the
recipe's folder (or ``base_dir``).
"""

from __future__ import annotations

import os
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from connectors.filesystem import is_s3
from connectors.shards import DEFAULT_SHARD_BYTES
from connectors.sources import IngestParams, SourceSpec
from connectors.spark_session import SparkSettings
from curation.params import ContainmentParams, ExactDedupParams, NearDedupParams, ScoreParams
from flows.errors import RecipeError  # noqa: F401 (re-exported: flows.recipe.RecipeError)
from tiers.params import SelectParams
from tiers.policy import TierPolicy


class ContainmentStage(ContainmentParams):
    enabled: bool = False
    lake: str | None = Field(None, description="lake root of tables to check (folder or s3:// URI)")


class StageParams(BaseModel):
    model_config = {"extra": "forbid"}

    ingest: IngestParams = Field(default_factory=IngestParams)
    exact_dedup: ExactDedupParams = Field(default_factory=ExactDedupParams)
    near_dedup: NearDedupParams = Field(default_factory=NearDedupParams)
    containment: ContainmentStage = Field(default_factory=ContainmentStage)
    score: ScoreParams = Field(default_factory=lambda: ScoreParams(enabled=False))
    tier: TierPolicy = Field(default_factory=lambda: TierPolicy(enabled=False))
    select: SelectParams = Field(default_factory=SelectParams)


class OutputSettings(BaseModel):
    model_config = {"extra": "forbid"}

    path: str = Field(..., min_length=1, description="output root (local folder or s3:// URI)")
    shard_bytes: int = Field(DEFAULT_SHARD_BYTES, ge=1 << 16, description="target uncompressed text bytes per shard")
    overwrite: bool = False
    resume: bool = Field(
        True,
        description="keep stage checkpoints in OUTPUT/_checkpoints: a re-run with the same inputs "
        "and parameters restores completed stages instead of recomputing them",
    )


class Recipe(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(..., min_length=1)
    seed: int = 0
    sources: list[SourceSpec] = Field(..., min_length=1)
    output: OutputSettings
    stages: StageParams = Field(default_factory=StageParams)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    engine: Literal["spark", "local"] = Field(
        "spark",
        description="spark: every stage on Spark (spark settings apply); local: every stage in this process on Arrow tables, for inputs that fit its memory",
    )
    threads: int | None = Field(None, ge=1, description="threads of engine local (default: the cores this process may use)")


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = [f"recipe {path} is not valid:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {given!r})"[:160]
        lines.append(f"  - {loc}: {err['msg']}{shown}")
    return "\n".join(lines)


def _absolute(path: str, base: str) -> str:
    if is_s3(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def parse_recipe(data: dict, origin: str = "<recipe>", base_dir: str = ".") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {origin} must be a YAML mapping, got {type(data).__name__}")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(origin, exc)) from None
    for src in recipe.sources:
        src.path = _absolute(src.path, base_dir)
    recipe.output.path = _absolute(recipe.output.path, base_dir)
    resolve_policy_paths(recipe.stages.tier, base_dir)
    ct = recipe.stages.containment
    if ct.enabled and not ct.lake:
        raise RecipeError(f"recipe {origin} is not valid:\n  - stages.containment.lake: give the lake root to check")
    if ct.lake:
        ct.lake = _absolute(ct.lake, base_dir)
    sc = recipe.stages.score
    sc.targets = [_absolute(p, base_dir) for p in sc.targets]
    sc.decontaminate = [_absolute(p, base_dir) for p in sc.decontaminate]
    sel = recipe.stages.select
    sel.targets = [_absolute(p, base_dir) for p in sel.targets]
    if sel.laws:
        sel.laws = _absolute(sel.laws, base_dir)
        if "://" not in sel.laws and not os.path.exists(sel.laws):
            raise RecipeError(f"recipe {origin} is not valid:\n  - stages.select.laws: {sel.laws} not found (write it with `tierlake probe`)")
    if sel.enabled and not recipe.stages.tier.enabled:
        raise RecipeError(f"recipe {origin} is not valid:\n  - stages.select: selection picks from tiers; enable stages.tier")
    if sel.enabled and sel.alignment_weight > 0 and not sel.targets:
        raise RecipeError(f"recipe {origin} is not valid:\n  - stages.select.targets: alignment_weight > 0 needs target files")
    if sc.enabled and not sc.targets:
        raise RecipeError(
            f"recipe {origin} is not valid:\n  - stages.score.targets: the score stage needs at least one benchmark train/dev file or folder"
        )
    return recipe


def resolve_policy_paths(policy: TierPolicy, base_dir: str) -> None:
    for owner, attr, index in policy.paths():
        if index is None:
            setattr(owner, attr, _absolute(getattr(owner, attr), base_dir))
        else:
            owner[index] = _absolute(owner[index], base_dir)


def load_tier_policy(path: str) -> TierPolicy:
    """A tier policy YAML: either the policy itself or a full recipe (its ``stages.tier``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise RecipeError(f"recipe not found: {path}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a YAML mapping, got {type(data).__name__}")
    if "stages" in data:
        data = (data.get("stages") or {}).get("tier") or {}
    data.setdefault("enabled", True)
    try:
        policy = TierPolicy.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(path, exc)) from None
    resolve_policy_paths(policy, os.path.dirname(os.path.abspath(path)))
    return policy


def load_dedup_params(path: str) -> tuple[ExactDedupParams, NearDedupParams]:
    """The exact and near dedup parameters of a full recipe (``stages.exact_dedup``,
    ``stages.near_dedup``); the defaults for a bare tier policy."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return ExactDedupParams(), NearDedupParams()  # load_tier_policy reports these
    stages = (data.get("stages") or {}) if isinstance(data, dict) else {}
    try:
        return (ExactDedupParams.model_validate(stages.get("exact_dedup") or {}), NearDedupParams.model_validate(stages.get("near_dedup") or {}))
    except ValidationError as exc:
        raise RecipeError(_format_errors(path, exc)) from None


def load_recipe(path: str, base_dir: str | None = None) -> Recipe:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise RecipeError(f"recipe not found: {path}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from None
    return parse_recipe(data, path, base_dir or os.path.dirname(os.path.abspath(path)))
