"""Documents of a finished run, to read: samples per tier and per removal or quarantine reason,
near-duplicate pairs with their Jaccard, the top and bottom BETR scores, and the queries of
``tierlake inspect``. Each sampled document carries the signals that decided its tier (quality
score, BETR score, the heuristic rule that failed with its value against its threshold).

Samples are drawn by a seeded stable hash of the id (the run's seed), read with
:mod:`connectors.run_outputs` (small columns first, texts only for the chosen rows). The report,
the Prefect artifact and the CLI all render what :func:`run_samples` and :func:`query` return.
Reasoning and measurements: docs/inspect.md.
"""

from __future__ import annotations

import json
import os
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field, field_validator

from connectors.filesystem import InputError
from connectors.run_outputs import Dataset, hash_sample
from curation.heuristic_filters import FilterRule
from curation.minhash import pair_jaccard
from tiers.params import TIERS
from tiers.policy import TierPolicy

TIERED = "tiers/documents"
SIGNALS = "tiers/signals"
SCORES = "scores/scores"
REMOVED = "removed"
QUARANTINE = "quarantine"
SMALL_COLUMNS = ["id", "source", "tier", "tier_reasons", "filter_reason", "quality_score", "token_count"]
L0_REASONS = ("exact_duplicate", "near_duplicate", "contaminated")
TEXT_CHARS = 600


class InspectQuery(BaseModel):
    """What ``tierlake inspect`` shows: documents matching every filter given, sorted or sampled."""

    model_config = {"extra": "forbid"}
    tier: str | None = Field(None, description="L0..L4")
    reason: str | None = Field(None, description="a removal, filter, quarantine or tier reason (as the report lists them)")
    source: str | None = None
    sort: Literal["betr_score", "quality_score", "token_count"] | None = Field(
        None, description="highest first (ascending=True: lowest first); without it a seeded sample"
    )
    ascending: bool = False
    n: int = Field(10, ge=1, le=10_000)
    seed: int | None = Field(None, description="sampling seed (default: the run's seed)")
    text_chars: int | None = Field(TEXT_CHARS, ge=1, description="cut texts to this many characters (None: whole)")

    @field_validator("tier")
    @classmethod
    def _tier(cls, v):
        if v is not None and v not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {v!r}")
        return v


class RunNotInspectable(InputError):
    """The folder is not a finished run with tiered outputs (a user error, said in one line)."""


def _cut(text: str | None, chars: int | None) -> str:
    """``text`` cut to ``chars`` characters (None: whole); a missing text is ""."""
    return (text or "")[:chars] if chars else (text or "")


def _recipe_stage(manifest: dict, stage: str) -> dict:
    """The run's recipe section ``stages.<stage>`` ({} when the run had none)."""
    return ((manifest.get("recipe") or {}).get("stages") or {}).get(stage) or {}


def reason_key() -> pl.Expr:
    """A document's reason as one short key: the failed filter rule, else ``exact_duplicate`` /
    ``near_duplicate`` / ``contaminated`` for L0, else the first tier reason without its numbers
    (``quality_score``, ``l3 quality_score``, ``l4: qa no_agreement``)."""
    first = pl.col("tier_reasons").list.first()
    return (
        pl.when(pl.col("filter_reason").is_not_null())
        .then(pl.col("filter_reason"))
        .when(pl.col("tier") == "L0")
        .then(first.str.extract(r"^([A-Za-z_]+)", 1))
        .otherwise(first.str.extract(r"^((?:l[0-9]:? )?[^0-9(<>=]*)", 1).str.strip_chars(" :"))
    ).alias("reason")


def _manifest(root: str) -> dict:
    path = os.path.join(root, "manifest.json")
    if not os.path.exists(path):
        raise RunNotInspectable(f"{root} is not a finished tierlake run: no manifest.json there")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_policy(manifest: dict) -> TierPolicy:
    """The tier policy the run used (its recipe's ``stages.tier``; defaults when it had none)."""
    try:
        return TierPolicy.model_validate(_recipe_stage(manifest, "tier"))
    except ValueError:
        return TierPolicy()


def _rule(policy: TierPolicy, source: str, reason: str) -> FilterRule | None:
    filters = policy.source_filters.get(source, policy.filters)
    return next((r for r in filters.rule_specs() if r.name == reason), None)


class RunDocuments:
    """One run's tiered documents; the small columns are read per question, only for the tiers
    it asks about, and texts only for the rows shown."""

    def __init__(self, root: str, manifest: dict | None = None):
        self.root = root
        self.manifest = manifest if manifest is not None else _manifest(root)
        self.seed = int(self.manifest.get("seed") or 0)
        self.policy = run_policy(self.manifest)
        self.tiered = Dataset.open(root, TIERED)
        if not self.tiered:
            raise RunNotInspectable(f"{root} has no tiered documents ({TIERED}/): run the tier stage first")
        self._scores: pl.DataFrame | None = None
        self._index: pl.DataFrame | None = None

    @property
    def index(self) -> pl.DataFrame:
        """Every document's small columns, its BETR score and reason key (read once, on demand)."""
        if self._index is None:
            self._index = self.with_betr(self.tiered.scan(SMALL_COLUMNS)).with_columns(reason_key())
        return self._index

    def with_betr(self, rows: pl.DataFrame, all_rows: bool = True) -> pl.DataFrame:
        """``rows`` with their ``betr_score`` (null when unscored). ``all_rows``: read every score
        once and keep it (for the whole index); else look up only these rows' ids."""
        scores = pl.DataFrame(schema={"id": pl.String, "betr_score": pl.Float64})
        if self._scores is not None:
            scores = self._scores
        elif ds := Dataset.open(self.root, SCORES):
            found = ds.scan(["id", "betr_score"]) if all_rows else ds.lookup("id", rows["id"].to_list(), ["betr_score"])
            if found.height:
                scores = found.select("id", "betr_score")
            if all_rows:
                self._scores = scores
        return rows.join(scores, on="id", how="left", maintain_order="left")

    def is_filter_rule(self, reason: str) -> bool:
        return any(reason in {r.name for r in f.rule_specs()} for f in [self.policy.filters, *self.policy.source_filters.values()])

    # --- reading -----------------------------------------------------------------------------
    def texts(self, rows: pl.DataFrame) -> list[str]:
        """The whole texts of rows located by ``_file`` and ``_row``."""
        fetched = self.tiered.fetch(rows.select("_file", "_row"), ["text"])
        return [t or "" for t in fetched["text"].to_list()] if fetched.height else []

    def _signal_values(self, ids: list[str], columns: list[str]) -> dict[str, dict]:
        values = Dataset.open(self.root, SIGNALS).lookup("id", ids, [*columns, "lang"])
        return {r["id"]: r for r in values.to_dicts()} if values.height else {}

    def _decisions(self, rows: pl.DataFrame) -> list[str]:
        """Why each row stopped where it did, with the deciding value against its threshold."""
        out = []
        failing = rows.filter(pl.col("filter_reason").is_not_null())
        rules = {(s, r): _rule(self.policy, s, r) for s, r in failing.select("source", "filter_reason").unique().iter_rows()}
        columns = sorted({r.column for r in rules.values() if r})
        values = self._signal_values(failing["id"].to_list(), columns) if columns else {}
        for r in rows.iter_rows(named=True):
            reasons = "; ".join(r["tier_reasons"] or [])
            if r["filter_reason"]:
                rule = rules.get((r["source"], r["filter_reason"]))
                v = values.get(r["id"], {})
                out.append(f"{r['filter_reason']}: " + (rule.explain(v.get(rule.column), v.get("lang")) if rule else reasons))
            else:
                out.append(reasons)
        return out

    def documents(self, rows: pl.DataFrame, text_chars: int | None = TEXT_CHARS) -> list[dict]:
        """Display records (id, source, tier, reason, decided, scores, text) for rows located by
        ``_file`` and ``_row``; their other columns are read with the text (same row groups)."""
        if rows.is_empty():
            return []
        full = self.tiered.fetch(rows.select("_file", "_row"), [*SMALL_COLUMNS, "text"])
        full = self.with_betr(full, all_rows=False).with_columns(reason_key())
        decided = self._decisions(full)
        keep = ["id", "source", "tier", "reason", "quality_score", "betr_score", "token_count"]
        return [
            {**{k: r.get(k) for k in keep}, "decided": d, "text": _cut(r["text"], text_chars)} for r, d in zip(full.iter_rows(named=True), decided)
        ]

    # --- queries -----------------------------------------------------------------------------
    def select(self, q: InspectQuery) -> pl.DataFrame:
        """The rows (``_file``, ``_row`` and the small columns) ``q`` shows, reading only the
        tiers it names and the columns its filters need."""
        rule = q.reason is not None and self.is_filter_rule(q.reason)
        tiers = [q.tier] if q.tier else (["L0"] if rule or q.reason in L0_REASONS else None)  # those stop at L0
        columns = ["id"] + (["source"] if q.source else []) + (["filter_reason"] if q.reason else [])
        if q.reason and not rule:
            columns += ["tier_reasons", "tier"]
        if q.sort and q.sort != "betr_score":
            columns.append(q.sort)
        df = self.tiered.scan(columns, tier=tiers)
        if df.is_empty():
            return df
        if q.source:
            df = df.filter(pl.col("source") == q.source)
        if rule:
            df = df.filter(pl.col("filter_reason") == q.reason)
        elif q.reason:
            df = df.filter((reason_key() == q.reason) | pl.col("tier_reasons").list.join(" | ").str.contains(q.reason, literal=True))
        if q.sort:
            if q.sort == "betr_score":
                df = self.with_betr(df)
            return df.filter(pl.col(q.sort).is_not_null()).sort([q.sort, "id"], descending=[not q.ascending, False]).head(q.n)
        return hash_sample(df, [], q.n, self.seed if q.seed is None else q.seed)

    def near_pairs(self, n: int, seed: int, text_chars: int | None = TEXT_CHARS) -> list[dict]:
        """Sampled near-duplicate pairs (removed document, the kept one) with their shingle Jaccard."""
        removed = Dataset.open(self.root, REMOVED)
        if not removed:
            return []
        pairs = removed.scan(["id", "reason", "duplicate_of"]).filter(pl.col("reason") == "near_duplicate")
        pairs = hash_sample(pairs.select("id", "duplicate_of"), [], n, seed)
        left = pairs.join(self.index, on="id", how="inner").select(pl.col("id"), "duplicate_of", "_file", "_row", "source")
        right = self.index.select(
            pl.col("id").alias("duplicate_of"), pl.col("_file").alias("_f2"), pl.col("_row").alias("_r2"), pl.col("source").alias("kept_source")
        )
        both = left.join(right, on="duplicate_of", how="inner").sort("id")
        if both.is_empty():
            return []
        a = self.texts(both.select("_file", "_row"))
        b = self.texts(both.select(pl.col("_f2").alias("_file"), pl.col("_r2").alias("_row")))
        near = _recipe_stage(self.manifest, "near_dedup")
        jac = pair_jaccard(pl.Series(a).to_arrow(), pl.Series(b).to_arrow(), int(near.get("ngram", 5)), near.get("unit", "word"))
        return [
            {
                "removed_id": r["id"],
                "removed_source": r["source"],
                "kept_id": r["duplicate_of"],
                "kept_source": r["kept_source"],
                "jaccard": float(j),
                "removed_text": _cut(x, text_chars),
                "kept_text": _cut(y, text_chars),
            }
            for r, x, y, j in zip(both.iter_rows(named=True), a, b, jac)
        ]

    def quarantine_reasons(self) -> dict[str, int]:
        ds = Dataset.open(self.root, QUARANTINE)
        if not ds:
            return {}
        return dict(ds.scan(["reason"]).group_by("reason").len().sort("reason").iter_rows())

    def quarantine(self, n: int, seed: int, reason: str | None = None, source: str | None = None, text_chars: int | None = TEXT_CHARS) -> list[dict]:
        ds = Dataset.open(self.root, QUARANTINE)
        if not ds:
            return []
        df = ds.scan(["source", "source_file", "source_line", "reason", "detail"])
        if reason:
            df = df.filter(pl.col("reason") == reason)
        if source:
            df = df.filter(pl.col("source") == source)
        df = df.with_columns(_key=pl.format("{}:{}", pl.col("source_file"), pl.col("source_line")))
        df = hash_sample(df, ["reason"], n, seed, id_column="_key")
        raw = ds.fetch(df.select("_file", "_row"), ["raw"])["raw"].to_list() if df.height else []
        return [
            {
                "file": r["source_file"],
                "line": r["source_line"],
                "source": r["source"],
                "reason": r["reason"],
                "detail": r["detail"],
                "text": _cut(x, text_chars),
            }
            for r, x in zip(df.iter_rows(named=True), raw)
        ]


def query(root: str, q: InspectQuery) -> list[dict]:
    """The documents ``tierlake inspect`` prints for ``q``; quarantined records when ``q.reason``
    is a quarantine reason."""
    run = RunDocuments(root)
    seed = run.seed if q.seed is None else q.seed
    if q.reason and q.tier is None and q.reason in run.quarantine_reasons():
        return [
            {
                "id": f"{r['file']}:{r['line']}",
                "source": r["source"],
                "tier": None,
                "reason": r["reason"],
                "decided": f"quarantined: {r['reason']}" + (f" ({r['detail']})" if r["detail"] else ""),
                "text": r["text"],
            }
            for r in run.quarantine(q.n, seed, q.reason, q.source, q.text_chars)
        ]
    return run.documents(run.select(q), q.text_chars)


def reasons(root: str) -> dict[str, int]:
    """Every reason present in the run with its document count (tier reasons and quarantine)."""
    run = RunDocuments(root)
    index = run.tiered.scan(["tier", "filter_reason", "tier_reasons"]).with_columns(reason_key())
    out = {f"{t}: {r}": c for t, r, c in index.group_by("tier", "reason").len().sort("tier", "reason").iter_rows()}
    out.update({f"quarantine: {r}": c for r, c in run.quarantine_reasons().items()})
    return out


def run_samples(root: str, manifest: dict | None = None, per_group: int = 3, pairs: int = 3, extremes: int = 5) -> dict | None:
    """The report's samples: per tier, per reason (within each tier), near-duplicate pairs,
    quarantine rows per reason and the top and bottom BETR-scored documents; None when the run
    has no tiered documents. ``manifest``: the run's, when it is not on disk yet."""
    try:
        run = RunDocuments(root, manifest)
    except RunNotInspectable:
        return None
    seed = run.seed
    idx = run.index
    by_tier = hash_sample(idx, ["tier"], per_group, seed)
    by_reason = hash_sample(idx.filter(pl.col("reason").is_not_null()), ["tier", "reason"], per_group, seed)
    scored = idx.filter(pl.col("betr_score").is_not_null())
    top = scored.sort(["betr_score", "id"], descending=[True, False]).head(extremes)
    bottom = scored.sort(["betr_score", "id"]).head(extremes)
    counts = {(t, r): c for t, r, c in idx.group_by("tier", "reason").len().iter_rows()}
    reason_groups = []
    for (tier, reason), rows in by_reason.group_by(["tier", "reason"], maintain_order=True):
        reason_groups.append({"tier": tier, "reason": reason, "documents": counts[(tier, reason)], "samples": run.documents(rows)})
    tier_counts = dict(idx.group_by("tier").len().iter_rows())
    return {
        "seed": seed,
        "tiers": [
            {"tier": t, "documents": tier_counts.get(t, 0), "samples": run.documents(by_tier.filter(pl.col("tier") == t))}
            for t in TIERS
            if tier_counts.get(t)
        ],
        "reasons": reason_groups,
        "near_pairs": run.near_pairs(pairs, seed),
        "quarantine": run.quarantine(per_group, seed),
        "betr_top": run.documents(top),
        "betr_bottom": run.documents(bottom),
    }
