"""Spark glue for BETR scoring and decontamination (kernels: :mod:`curation.betr`,
:mod:`curation.embedders`, :mod:`curation.decontamination`).

``sample`` mode (the paper's): a seeded sample of documents is collected to the driver, embedded
with the targets, ranked exactly, labelled (top p% positive) and learned by the classifier; the
classifier then scores every document in one ``mapInArrow`` pass (model shipped with the closure,
batches vectorized as one sparse product), and the sampled documents take their cross-fitted
scores instead (one broadcast join; see :mod:`curation.betr` for why). ``direct`` mode embeds
every document on the executors and scores it by its maximum cosine to any target example
(affordable with static embeddings).

The same pass flags contamination: documents sharing a 13-word n-gram with a test split.
``betr_rank_pct`` is the document's percentile of ``betr_score`` over the whole input (100 = closest),
from 1,001 exact quantiles (:mod:`curation.quantiles`), so no global sort is needed. The per-batch
kernels (``score_batch``, ``finish_batch``) and the sample's fit (``fit_sample``) are shared with
the one-process engine, :mod:`curation.betr_local`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from connectors.accounting import StageStats
from connectors.benchmarks import load_examples
from connectors.filesystem import InputError
from curation.betr import direct_scores, quota_labels, rank_score, top_labels, train_betr_classifier
from curation.decontamination import benchmark_ngrams, matched_ngrams
from curation.embedders import get_embedder
from curation.params import ScoreParams
from curation.quality_model import QualityModel

PASS_DDL = "id string, betr_score double, matched array<bigint>"
SCORE_DDL = "id string, betr_score double, contaminated boolean, contamination_ngrams bigint, betr_rank_pct double"


@dataclass
class ScoreResult:
    scores: object  # id, betr_score, betr_rank_pct, contaminated, contamination_ngrams
    sample: object | None  # pyarrow table: id, best_rank, direct_score, max_sim, mean_log_rank, label
    model: QualityModel | None
    stats: StageStats
    evaluation: dict


def sample_documents(docs, n: int, seed: int):
    """The ``n`` documents with the smallest seeded hash of their id: deterministic, no shuffle of text."""
    from pyspark.sql import functions as F

    keyed = docs.select("id", F.xxhash64(F.col("id"), F.lit(seed)).alias("_k"))
    ids = keyed.orderBy("_k", "id").limit(n).select("id")
    rows = docs.join(ids, "id").select("id", "text").orderBy("id").collect()
    return [r["id"] for r in rows], [r["text"] or "" for r in rows]


def score_batch(texts: list[str], params: ScoreParams, model: QualityModel | None, target_emb: np.ndarray | None, test_ngrams: np.ndarray):
    """(betr_score, matched test n-grams as a list array) of one batch of texts: the kernel both
    engines call per batch."""
    if params.mode == "direct":
        assert target_emb is not None
        emb = get_embedder(params.embedder).embed(texts)
        score = (emb @ target_emb.T).max(axis=1).astype(np.float64) if len(texts) else np.zeros(0)
    else:
        assert model is not None
        score = model.score(texts) if texts else np.zeros(0)
    values, offsets = matched_ngrams(texts, test_ngrams, params.ngram)
    return score, pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, pa.int64()))


def _score_pass(docs, params: ScoreParams, model: QualityModel | None, target_emb: np.ndarray | None, test_ngrams: np.ndarray):
    def per_batch(batches):
        for batch in batches:
            score, matched = score_batch([t or "" for t in batch.column("text").to_pylist()], params, model, target_emb, test_ngrams)
            yield pa.RecordBatch.from_arrays([batch.column("id"), pa.array(score, pa.float64()), matched], names=["id", "betr_score", "matched"])

    return docs.select("id", "text").mapInArrow(per_batch, PASS_DDL)


def with_crossfit_scores(scores, crossfit: pa.Table):
    """Sampled documents take their cross-fitted score (from a model that did not see them);
    every other document keeps the shipped model's score."""
    from pyspark.sql import functions as F

    spark = scores.sparkSession
    table = spark.createDataFrame(crossfit.rename_columns(["_cid", "crossfit_score"]))  # ids are unique after ingest
    joined = scores.join(F.broadcast(table), scores["id"] == table["_cid"], "left")
    return joined.select("id", F.coalesce("crossfit_score", "betr_score").alias("betr_score"), "matched")


def frequent_ngrams(scores, max_doc_frequency: int) -> np.ndarray:
    """Test n-grams matched in more than ``max_doc_frequency`` documents (sorted int64)."""
    from pyspark.sql import functions as F

    rows = scores.select(F.explode("matched").alias("h")).groupBy("h").count().filter(F.col("count") > max_doc_frequency).select("h").collect()
    return np.sort(np.array([r["h"] for r in rows], dtype=np.int64))


QUANTILE_PROBS = [i / 1000 for i in range(1001)]


def finish_batch(ids, score, matched, qs: np.ndarray | None, exempt: np.ndarray) -> pa.RecordBatch:
    """One batch of the stage's output: ``betr_rank_pct`` from the 1,001 quantiles ``qs`` and the
    contamination flag from the matched n-grams that are not ``exempt`` (both engines)."""
    s = np.asarray(score, np.float64)
    pct = np.searchsorted(qs, s, side="right") / 10.0 if qs is not None and len(qs) else np.zeros(len(s))
    flat = matched.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = np.diff(matched.offsets.to_numpy())
    owner = np.repeat(np.arange(len(s)), lengths)
    counted = ~np.isin(flat, exempt) if len(exempt) else np.ones(len(flat), bool)
    counts = np.bincount(owner[counted], minlength=len(s)).astype(np.int64)
    return pa.RecordBatch.from_arrays(
        [ids, pa.array(s, pa.float64()), pa.array(counts > 0), pa.array(counts), pa.array(np.minimum(pct, 100.0))],
        names=["id", "betr_score", "contaminated", "contamination_ngrams", "betr_rank_pct"],
    )


def finish_scores(scores, exempt: np.ndarray):
    """``betr_rank_pct`` (0-100, higher = closer) from 1,001 exact quantiles of ``betr_score``
    (:mod:`curation.quantiles`' rule), and the contamination flag."""
    qs = np.asarray(scores.approxQuantile("betr_score", QUANTILE_PROBS, 0.0), np.float64)

    def per_batch(batches):
        for batch in batches:
            yield finish_batch(batch.column("id"), batch.column("betr_score").to_numpy(zero_copy_only=False), batch.column("matched"), qs, exempt)

    return scores.mapInArrow(per_batch, SCORE_DDL)


@dataclass
class ScoringSetup:
    """What both engines load before scoring: targets embedded, test n-grams, the evaluation dict."""

    test_ngrams: np.ndarray
    embedder: object
    target_emb: np.ndarray
    evaluation: dict
    target_benchmark: np.ndarray  # each target example's benchmark name


def sample_labels(emb: np.ndarray, params: ScoreParams, setup: ScoringSetup, direct: dict) -> tuple[np.ndarray, dict[str, int]]:
    """The sample's labels: the top ``top_p`` by best rank under any example, or, with
    ``balance: benchmarks`` and several target benchmarks, round-robin over the benchmarks
    (:func:`curation.betr.quota_labels`). Also the positives each benchmark took (empty when
    not balanced)."""
    names = sorted(set(setup.target_benchmark.tolist()))
    if params.balance == "none" or len(names) < 2:
        return top_labels(rank_score(direct["best_rank"]), params.top_p, tiebreak=direct["max_sim"]), {}
    per_benchmark = [direct_scores(emb, setup.target_emb[setup.target_benchmark == name]) for name in names]
    labels, owner = quota_labels(per_benchmark, params.top_p)
    return labels, {name: int((owner == b).sum()) for b, name in enumerate(names)}


def prepare_scoring(params: ScoreParams) -> ScoringSetup:
    targets = load_examples(params.targets, role="target") if params.targets else []
    if not targets:
        raise ValueError("the score stage needs targets (benchmark train/dev files)")
    tests = load_examples(params.decontaminate, role="decontaminate") if params.decontaminate else []
    test_ngrams = benchmark_ngrams([e.text for e in tests], params.ngram)
    embedder = get_embedder(params.embedder)
    target_emb = embedder.embed([e.text for e in targets])
    evaluation: dict = {
        "targets": len(targets),
        "target_benchmarks": sorted({e.benchmark for e in targets}),
        "decontamination_examples": len(tests),
        "decontamination_ngrams": int(len(test_ngrams)),
        "mode": params.mode,
        "embedder": params.embedder,
    }
    return ScoringSetup(test_ngrams, embedder, target_emb, evaluation, np.array([e.benchmark for e in targets]))


def fit_sample(ids: list[str], texts: list[str], params: ScoreParams, setup: ScoringSetup) -> tuple[QualityModel, pa.Table, np.ndarray | None]:
    """Sample mode on the sampled documents (sorted by id): embed, rank against the targets,
    label the top p%, train the bagged, cross-fitted classifier. Returns (model, sample table,
    cross-fitted scores); adds the classifier's figures to ``setup.evaluation``."""
    if len(ids) < 2:  # the classifier needs a positive and a negative document
        raise InputError(
            f"the score stage's sample mode needs at least 2 documents to train its classifier, "
            f"the input has {len(ids)}; use mode direct (--mode direct) for an input this small"
        )
    t = time.time()
    emb = setup.embedder.embed(texts)  # type: ignore[attr-defined]
    embed_s = time.time() - t
    t = time.time()
    direct = direct_scores(emb, setup.target_emb)
    rank_s = time.time() - t
    score = rank_score(direct["best_rank"])
    labels, taken = sample_labels(emb, params, setup, direct)
    model, metrics, crossfit = train_betr_classifier(
        texts,
        labels,
        params.top_p,
        params.classifier.model_copy(update={"seed": params.seed, "embedder": params.embedder}),
        params.holdout,
        params.folds,
    )
    if taken:
        metrics["positives_by_benchmark"] = taken
    setup.evaluation.update(metrics, embed_docs_per_s=round(len(texts) / max(embed_s, 1e-9), 1), rank_seconds=round(rank_s, 3))
    sample_table = pa.table(
        {
            "id": ids,
            "best_rank": direct["best_rank"],
            "direct_score": score,
            "max_sim": direct["max_sim"],
            "mean_log_rank": direct["mean_log_rank"],
            "label": labels,
            "crossfit_score": crossfit if crossfit is not None else pa.nulls(len(ids), pa.float64()),
        }
    )
    return model, sample_table, crossfit


def sample_classifier(params: ScoreParams, setup: ScoringSetup, draw) -> tuple[QualityModel | None, pa.Table | None, np.ndarray | None]:
    """(model, sample table, cross-fitted scores) in sample mode, from the documents
    ``draw(n, seed)`` returns as (ids, texts); (None, None, None) in direct mode."""
    if params.mode != "sample":
        return None, None, None
    ids, texts = draw(params.sample, params.seed)
    return fit_sample(ids, texts, params, setup)


def score_stage(docs, params: ScoreParams) -> ScoreResult:
    from pyspark.sql import functions as F

    started = time.time()
    setup = prepare_scoring(params)
    evaluation = setup.evaluation
    model, sample_table, crossfit = sample_classifier(params, setup, lambda n, seed: sample_documents(docs, n, seed))
    scores = _score_pass(docs, params, model, setup.target_emb, setup.test_ngrams)
    if sample_table is not None and crossfit is not None:
        scores = with_crossfit_scores(scores, sample_table.select(["id", "crossfit_score"]))
    scores = scores.localCheckpoint()
    exempt = frequent_ngrams(scores, params.max_ngram_doc_frequency) if len(setup.test_ngrams) else np.zeros(0, np.int64)
    evaluation["decontamination_exempt_ngrams"] = int(len(exempt))
    scores = finish_scores(scores, exempt).localCheckpoint()
    agg = scores.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("contaminated").cast("long")).alias("c")).first()
    n, n_contaminated = int(agg["n"]), int(agg["c"] or 0)
    evaluation["contaminated"] = n_contaminated
    stats = StageStats(name="score", docs_in=n, docs_out=n, seconds=round(time.time() - started, 3), details=evaluation)
    return ScoreResult(scores=scores, sample=sample_table, model=model, stats=stats, evaluation=evaluation)
