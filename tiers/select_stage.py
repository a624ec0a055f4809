"""The selection stage: tiered documents -> pools (source × tier) -> the mix for a token budget
(:mod:`tiers.mix_optimizer`) -> the selected documents, repeated per their pool's epochs. The
stage's logic is written once over :class:`SelectFrames`, the six frame operations it needs;
:class:`SparkFrames` does them in Spark, :class:`tiers.select_local.ArrowFrames` in polars for the
one-process engine.

Pools: every (source, tier) with tier in ``params.tiers`` (L0 — duplicates, filtered, leaked — is
never eligible). Each pool's QQT utility b and decay τ come from ``params.qqt.pools`` (fitted
values, by pool name ``source/tier``), else from the tier prior ``params.qqt.tier_prior``: the
published T-MARS bucket fit (Goyal et al. 2024: top-10% b = −0.160, τ = 6.73 … top-40% b = −0.085,
τ = 2.27) mapped L4 → L1. Without fitted (a, d) the law is placed at the budget (a = 8·1e5 / T,
the T-MARS fit's value of a·n/1e5 at 32M samples), so predicted accuracies are relative, for
comparing mixes, not absolute — the manifest says which parameters were used.

Alignment: up to ``embed_sample`` documents per pool (deterministic hash order) and the target
examples are embedded (:mod:`curation.embedders`), pools quantized to weighted centroids, and the
OT distance of a mix to the targets enters the objective with weight ``alignment_weight``.

Fitted laws (``laws``: a ``laws.json`` from ``tierlake probe``): the objective becomes the
predicted target loss of :class:`tiers.probe.FittedLaws` (per-pool QQT laws fitted on proxy-model
probes plus projektor's predictor), the priors and ``alignment_weight`` are unused, and the mix
document says ``basis: fitted laws``; without laws it says ``basis: priors`` and that the predicted
accuracy is relative. Laws count bytes: pool sizes are their texts' UTF-8 bytes and the budget is
converted with the eligible pools' bytes per token.

BETR order: when the run scored documents (``betr_score``), a pool's documents are taken best
first: ``keep_top`` keeps the top fraction of a pool's tokens by score (BETR's "keep the top X%"),
and the fractional last pass takes the best-scored documents up to its token share instead of a
hash sample. Without scores the fractional pass is a hash sample.

Materialization: pool i with epochs e_i = w_i·T / S_i contributes every document ⌊e_i⌋ times and
one more time for the fraction e_i − ⌊e_i⌋ of its tokens (best-scored first, or when unscored a
per-document hash uniform u < e_i − ⌊e_i⌋ — deterministic for the seed, an unbiased token sample).
Each output row carries ``pool`` and ``repeat``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from connectors.accounting import StageStats
from connectors.spark_frames import join_narrow
from tiers.mix_optimizer import MixResult, PoolSpec, optimize_mix
from tiers.params import SelectParams


@dataclass
class SelectResult:
    documents: Any  # selected rows (a document repeated per its pool's epochs) + pool, repeat
    mix: list[dict]  # per pool: share, planned tokens, epochs, selected documents and tokens
    result: MixResult
    pools: list[PoolSpec]
    stats: StageStats
    parameters: dict


def pool_specs(rows: list[dict], params: SelectParams) -> list[PoolSpec]:
    """PoolSpecs (with their QQT law) from per-(source, tier) rows of documents, tokens and bytes."""
    pools = []
    for r in rows:
        name = f"{r['source']}/{r['tier']}"
        law = params.qqt.pools.get(name) or params.qqt.tier_prior.get(r["tier"])
        if law is None:
            raise ValueError(f"no QQT law for pool {name}: give qqt.pools['{name}'] or qqt.tier_prior['{r['tier']}']")
        if (r["tokens"] or 0) > 0:
            pools.append(
                PoolSpec(
                    name=name,
                    size=float(r["tokens"]),
                    b=law.b,
                    tau=law.tau,
                    documents=int(r["documents"]),
                    meta={
                        "source": r["source"],
                        "tier": r["tier"],
                        "bytes": float(r["bytes"] or 0),
                        "law": "fitted" if name in params.qqt.pools else "tier prior",
                    },
                )
            )
    return pools


def pool_rows(keys, tiers: list[str]) -> list[dict]:
    """(source, tier) rows of documents, tokens and UTF-8 bytes in ``tiers`` (one Spark job) from
    the narrow frame (its ``_bytes`` column is each text's UTF-8 length)."""
    from pyspark.sql import functions as F

    rows = (
        keys.where(F.col("tier").isin(tiers))
        .groupBy("source", "tier")
        .agg(F.count(F.lit(1)).alias("documents"), F.sum("token_count").alias("tokens"), F.sum("_bytes").alias("bytes"))
        .orderBy("source", "tier")
        .collect()
    )
    return [r.asDict() for r in rows]


def _hash_uniform(column: str, seed: int):
    """A deterministic uniform in [0, 1) per value of ``column`` (xxhash64 with the seed)."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.col(column), F.lit(seed)).bitwiseAND(F.lit(0xFFFFFFFF)).cast("double") / float(1 << 32)


def pool_samples(docs, keys, pools: list[PoolSpec], limit: int, seed: int) -> dict[str, list[str]]:
    """Up to ``limit`` texts per pool, the lowest hash values first (deterministic). The ranking
    runs on the narrow frame ``keys``; only the chosen ids fetch their text (:func:`join_narrow`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("source", "tier").orderBy(F.xxhash64(F.col("id"), F.lit(seed)), F.col("id"))
    names = [p.name for p in pools]
    chosen = (
        keys.withColumn("pool", F.concat_ws("/", "source", "tier"))
        .where(F.col("pool").isin(names))
        .withColumn("_rank", F.row_number().over(w))
        .where(F.col("_rank") <= limit)
        .select("id", "pool", "_rank")
    )
    texts = docs.select("id", F.substring("text", 1, 8192).alias("text"))
    rows = join_narrow(texts, chosen.localCheckpoint()).select("pool", "_rank", "text").collect()
    out: dict[str, list[str]] = {n: [] for n in names}
    for r in sorted(rows, key=lambda r: (r["pool"], r["_rank"])):
        out[r["pool"]].append(r["text"] or "")
    return out


def best_first(keys):
    """Each eligible document's pool, and when scored its tokens before it in best-first order
    (``_before``: betr_score descending, ties by id) and its pool's tokens (``_pool_tokens``).
    ``keys`` is the narrow frame (no text): the window sorts and buffers a pool's rows in one task."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = keys.withColumn("pool", F.concat_ws("/", "source", "tier"))
    if "betr_score" not in keys.columns:
        return keys
    order = Window.partitionBy("pool").orderBy(F.col("betr_score").desc_nulls_last(), F.col("id"))
    before = F.coalesce(F.sum("token_count").over(order.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    pool_tokens = keys.groupBy("pool").agg(F.sum("token_count").alias("_pool_tokens"))
    return keys.withColumn("_before", before).join(F.broadcast(pool_tokens), "pool")


def keep_top_by_score(keys, keep_top: dict[str, float]):
    """BETR's "keep the top X%": drop a pool's documents below its top fraction of tokens."""
    from pyspark.sql import functions as F

    if not keep_top:
        return keys
    if "betr_score" not in keys.columns:
        raise ValueError("keep_top needs BETR scores (the score stage, or a run with scores/)")
    ranked = best_first(keys)
    default = keep_top.get("*", 1.0)
    frac = F.lit(default)
    for name, value in keep_top.items():
        if name != "*":
            frac = F.when(F.col("pool") == name, F.lit(value)).otherwise(frac)
    return ranked.where(F.col("_before") < frac * F.col("_pool_tokens")).select(*keys.columns)


def materialize(docs, keys, pools: list[PoolSpec], epochs: np.ndarray, seed: int):
    """Rows of every pool repeated ⌊e⌋ times plus the fractional pass: the best-scored documents up
    to that share of the pool's tokens when ``betr_score`` is there, else a hash sample. The copies
    are chosen on the narrow frame ``keys``; the documents' text is joined to them once."""
    from pyspark.sql import functions as F

    spark = docs.sparkSession
    plan = spark.createDataFrame([(p.name, float(e)) for p, e in zip(pools, epochs)], "pool string, epochs double")
    ranked = best_first(keys)
    frac = F.col("epochs") - F.floor("epochs")
    # best first: a document is in the partial pass when its middle token falls inside the pass's share
    extra = (F.col("_before") + 0.5 * F.col("token_count") < frac * F.col("_pool_tokens")) if "betr_score" in keys.columns else (F.col("_u") < frac)
    carried = [c for c in ("betr_score",) if c in keys.columns and c not in docs.columns]  # joined to the narrow frame only
    copies = (
        ranked.join(F.broadcast(plan), "pool")
        .withColumn("_u", _hash_uniform("id", seed))
        .withColumn("_copies", (F.floor("epochs") + extra.cast("int")).cast("int"))
        .where(F.col("_copies") > 0)
        .select("id", "pool", *carried, "_copies")
    )
    columns = ["pool", *docs.columns, *carried, "repeat"]
    # the copies (narrow) go to the documents' text, not the text to them; materialized once, as
    # join_narrow reads them twice (their size, then the join)
    picked = join_narrow(docs, copies.localCheckpoint())
    return picked.withColumn("repeat", F.explode(F.sequence(F.lit(1), F.col("_copies")))).select(*columns)


class SelectFrames(Protocol):
    """The frame operations of the select stage (one implementation per engine)."""

    @property
    def columns(self) -> list[str]: ...

    def with_scores(self, scores) -> SelectFrames: ...  # left join of (id, betr_score)

    def count(self, tiers: list[str] | None = None) -> int: ...

    def keep_top(self, keep_top: dict[str, float]) -> SelectFrames: ...  # BETR's "keep the top X%" per pool

    def pool_rows(self, tiers: list[str]) -> list[dict]: ...  # source, tier, documents, tokens, bytes; sorted

    def samples(self, pools: list[PoolSpec], limit: int, seed: int) -> dict[str, list[str]]: ...  # embedding sample

    def materialize(self, pools: list[PoolSpec], epochs: np.ndarray, seed: int) -> Any: ...  # the selected rows

    @staticmethod
    def selected_by_pool(selected) -> dict[str, dict]: ...  # rows, documents, tokens per pool


class SparkFrames:
    """The select stage's frame operations on a Spark DataFrame (the one-process engine's are
    :class:`tiers.select_local.ArrowFrames`; the stage's logic is the same for both).

    Joins, windows and filters run on ``keys``, a narrow frame of the documents (id, source, tier,
    tokens, text bytes, BETR score); the documents' text (``docs``) is read for the embedding sample
    and joined once, to the chosen copies. A window or join over whole documents would shuffle
    every text (docs/engine.md, "What Spark does per stage")."""

    def __init__(self, docs, keys=None):
        from pyspark.sql import functions as F

        self.docs = docs
        narrow = [c for c in ("id", "source", "tier", "token_count", "betr_score") if c in docs.columns]
        self.keys = keys if keys is not None else docs.select(*narrow, F.octet_length("text").alias("_bytes"))

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.docs.columns, *(c for c in self.keys.columns if c != "_bytes")]))

    def with_scores(self, scores) -> SparkFrames:
        return SparkFrames(self.docs, self.keys.join(scores.select("id", "betr_score"), "id", "left"))

    def count(self, tiers: list[str] | None = None) -> int:
        from pyspark.sql import functions as F

        return int((self.keys if tiers is None else self.keys.where(F.col("tier").isin(tiers))).count())

    def keep_top(self, keep_top: dict[str, float]) -> SparkFrames:
        return SparkFrames(self.docs, keep_top_by_score(self.keys, keep_top))

    def pool_rows(self, tiers: list[str]) -> list[dict]:
        return pool_rows(self.keys, tiers)

    def samples(self, pools: list[PoolSpec], limit: int, seed: int) -> dict[str, list[str]]:
        return pool_samples(self.docs, self.keys, pools, limit, seed)

    def materialize(self, pools: list[PoolSpec], epochs: np.ndarray, seed: int):
        return materialize(self.docs, self.keys, pools, epochs, seed).cache()

    @staticmethod
    def selected_by_pool(selected) -> dict[str, dict]:
        """Per pool of the selection: rows, distinct documents, tokens."""
        from pyspark.sql import functions as F

        return {
            r["pool"]: r.asDict()
            for r in selected.groupBy("pool")
            .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("id").alias("documents"), F.sum("token_count").alias("tokens"))
            .collect()
        }


def qqt_curves(
    pools: list[PoolSpec], shares: np.ndarray, budget: float, a: float, d: float, tau_convention: Literal["scaled", "plain"], points: int = 40
) -> dict:
    """Predicted accuracy against training tokens for the chosen shares and for each pool alone
    (the report's QQT plot): budgets from budget/30 to 30·budget."""
    from tiers.qqt import mixture_error

    budgets = np.geomspace(budget / 30, budget * 30, points)
    sizes = [p.size for p in pools]
    bs, taus = [p.b for p in pools], [p.tau for p in pools]
    mix = [1 - mixture_error(n, shares, sizes, a, bs, taus, d, tau_convention) for n in budgets]
    alone = {}
    for i, p in enumerate(pools):
        one = np.zeros(len(pools))
        one[i] = 1.0
        alone[p.name] = [1 - mixture_error(n, one, sizes, a, bs, taus, d, tau_convention) for n in budgets]
    return {"budgets": budgets.tolist(), "mix": mix, "pools": alone}


def load_laws(path: str):
    """(laws dict, :class:`tiers.probe.FittedLaws`) from a ``laws.json`` and the embedding sample
    beside it (``embeddings.npz``, no pickle)."""
    import json
    import os

    from tiers.probe import EMBED_FILE, FittedLaws, load_npz

    try:
        with open(path, encoding="utf-8") as f:
            laws = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"laws file not found: {path} (write it with `tierlake probe`)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a laws.json ({exc})") from None
    if not isinstance(laws, dict) or not laws.get("qqt"):
        raise ValueError(f"{path}: no fitted QQT laws in it (write it with `tierlake probe`)")
    emb_path = os.path.join(os.path.dirname(os.path.abspath(path)), EMBED_FILE)
    embeddings = load_npz(emb_path) if laws.get("projektor") and os.path.exists(emb_path) else None
    return laws, FittedLaws(laws, embeddings)


def select_stage(docs, params: SelectParams, embedder=None, seed: int | None = None, scores=None) -> SelectResult:
    """``docs``: tiered documents (id, text, source, tier, token_count); ``scores``: the score
    stage's (id, betr_score), joined when ``docs`` lacks betr_score."""
    import pyarrow as pa

    started = time.time()
    seed = params.seed if seed is None else seed
    if isinstance(docs, pa.Table):
        from tiers.select_local import ArrowFrames

        frames: SelectFrames = ArrowFrames(docs)
    else:
        frames = SparkFrames(docs)
    missing = {"id", "text", "source", "tier", "token_count"} - set(frames.columns)
    if missing:
        raise ValueError(f"selection needs tiered documents; missing columns {sorted(missing)}")
    if scores is not None and "betr_score" not in frames.columns:
        frames = frames.with_scores(scores)
    total = frames.count()
    eligible_before = frames.count(params.tiers) if params.keep_top else None
    frames = frames.keep_top(params.keep_top)
    pools = pool_specs(frames.pool_rows(params.tiers), params)
    if not pools:
        raise ValueError(f"no documents in tiers {params.tiers}: nothing to select")
    a = params.qqt.a if params.qqt.a is not None else 8e5 / params.budget_tokens
    laws_doc = None
    if params.laws:
        laws_doc, fitted = load_laws(params.laws)
        by_name = {p.name: p for p in pools}
        absent = [n for n in fitted.pools if n not in by_name]
        if absent:
            raise ValueError(f"{params.laws} has laws for pools this run lacks: {absent} (probe this run's pools)")
        chosen = [by_name[n] for n in fitted.pools]
        for p in chosen:
            p.meta["law"] = "fitted (probes)"
        others = [p for p in pools if p.name not in set(fitted.pools)]
        for p in others:
            p.meta["law"] = "no fitted law: not selected"
        law_sizes = np.array([p.meta["bytes"] for p in chosen])
        law_budget = params.budget_tokens * law_sizes.sum() / sum(p.size for p in chosen)
        res = optimize_mix(
            chosen,
            params.budget_tokens,
            a,
            params.qqt.d,
            max_epochs=params.max_epochs,
            steps=params.steps,
            laws=fitted,
            law_budget=law_budget,
            law_sizes=law_sizes,
        )
        pools = chosen + others
        pad = np.zeros(len(others))
        res.shares, res.tokens, res.epochs = (np.concatenate([v, pad]) for v in (res.shares, res.tokens, res.epochs))
    else:
        distance = None
        if params.alignment_weight > 0:
            if not params.targets:
                raise ValueError("alignment_weight > 0 needs select.targets (benchmark train/dev files)")
            from connectors.targets import load_target_texts
            from curation.embedders import get_embedder
            from tiers.ot_mixture import MixtureOT

            embedder = embedder or get_embedder(params.embedder)
            samples = frames.samples(pools, params.embed_sample, seed)
            pool_emb = [embedder.embed(samples[p.name]) for p in pools]
            target_emb = embedder.embed(load_target_texts(params.targets))
            distance = MixtureOT(pool_emb, target_emb, params.quantize_pool, params.quantize_target, seed=seed)
        res = optimize_mix(
            pools,
            params.budget_tokens,
            a,
            params.qqt.d,
            distance,
            params.alignment_weight,
            params.max_epochs,
            params.steps,
            tau_convention=params.qqt.tau_convention,
        )
    selected = frames.materialize(pools, res.epochs, seed)
    got = frames.selected_by_pool(selected)
    mix = []
    for row, p in zip(res.rows(pools), pools):
        g = got.get(p.name)
        mix.append(
            {
                **row,
                "source": p.meta["source"],
                "tier": p.meta["tier"],
                "law": p.meta["law"],
                "pool_documents": p.documents,
                "pool_bytes": p.meta["bytes"],
                "selected_rows": int(g["rows"]) if g else 0,
                "selected_documents": int(g["documents"]) if g else 0,
                "selected_tokens": int(g["tokens"] or 0) if g else 0,
            }
        )
    eligible = sum(p.documents for p in pools)
    unique = sum(m["selected_documents"] for m in mix)
    removed = {"not_selected": eligible - unique}
    if eligible_before is not None:
        removed["below_keep_top"] = eligible_before - eligible
        removed["tier_not_eligible"] = total - eligible_before
    else:
        removed["tier_not_eligible"] = total - eligible
    basis = "fitted laws" if laws_doc else "priors"
    stats = StageStats(
        name="select",
        docs_in=total,
        docs_out=unique,
        tokens_out=sum(m["selected_tokens"] for m in mix),
        removed=removed,
        seconds=round(time.time() - started, 3),
        details={
            "budget_tokens": params.budget_tokens,
            "rows_with_repeats": sum(m["selected_rows"] for m in mix),
            "basis": basis,
            "predicted_accuracy": res.predicted_accuracy,
            "predicted_loss": res.predicted_loss,
            "alignment_ot": res.alignment_ot,
            "uniform_ot": res.uniform_ot,
            "order": "betr_score" if "betr_score" in frames.columns else "hash",
        },
    )
    parameters = {"basis": basis, "max_epochs": params.max_epochs, "seed": seed, "keep_top": params.keep_top, "order": stats.details["order"]}
    if laws_doc:
        parameters.update(
            {
                "laws": params.laws,
                "unit": laws_doc.get("unit", "bytes"),
                "law_budget": float(law_budget),
                "recipe": laws_doc.get("recipe"),
                "benchmarks": laws_doc.get("benchmarks"),
                "projektor": bool(laws_doc.get("projektor")),
            }
        )
        parameters["evidence"] = law_evidence(laws_doc)
    else:
        parameters.update(
            {
                "a": a,
                "a_source": "fitted" if params.qqt.a is not None else "placed at the budget (relative)",
                "d": params.qqt.d,
                "tau_convention": params.qqt.tau_convention,
                "alignment_weight": params.alignment_weight,
                "note": "the mix follows priors (the T-MARS bucket fit per tier), not laws fitted on this "
                "corpus: run `tierlake probe` and select with --laws",
            }
        )
        parameters["curves"] = qqt_curves(pools, res.shares, params.budget_tokens, a, params.qqt.d, params.qqt.tau_convention)
    return SelectResult(documents=selected, mix=mix, result=res, pools=pools, stats=stats, parameters=parameters)


def law_evidence(laws: dict) -> dict:
    """Predicted vs measured loss of every probe and each pool's fitted curve per unique size (for
    mix.json and the report)."""
    from tiers.qqt import predict_points

    points = {}
    for name, pts in laws.get("qqt_points", {}).items():
        law = laws["qqt"][name]
        curves = {}
        for u in sorted(set(pts["unique"])):
            seen = [s for s, uu in zip(pts["seen"], pts["unique"]) if uu == u]
            grid = np.geomspace(min(seen), max(seen), 24)
            curves[str(int(u))] = {"seen": grid.tolist(), "predicted": predict_points(law, np.full(len(grid), u), grid).tolist()}
        points[name] = {**pts, "curves": curves}
    out = {
        "qqt": points,
        "qqt_heldout": {k: {x: v[x] for x in ("points", "r2", "mae")} for k, v in laws.get("qqt_heldout", {}).items()},
        "laws": {k: {x: v[x] for x in ("a", "b", "tau", "d")} for k, v in laws.get("qqt", {}).items()},
    }
    pk = laws.get("projektor")
    if pk:
        out["projektor"] = {"form": pk["form"], "heldout_r2": pk["heldout_r2"], "points": pk["points"]}
    return out


def mix_basis(mix: dict) -> str:
    """Whether a mix follows fitted laws or priors, with its prediction, in one phrase."""
    if mix.get("basis") == "fitted laws":
        return f"from fitted laws: predicted target loss {mix['predicted_loss']:.4f} bits/byte"
    acc = mix.get("predicted_accuracy")
    return "mix follows priors (T-MARS fit per tier, not fitted on this corpus; `tierlake probe` fits laws)" + (
        f": relative predicted accuracy {acc:.4f}" if acc is not None else ""
    )
