"""BETR scoring and decontamination of one in-memory Arrow table, without Spark: the score stage of
the one-process engine.

Same algorithm and kernels as :mod:`curation.betr_stage` (sample by the seeded xxhash64 of the
id, :func:`curation.betr_stage.fit_sample`, :func:`curation.betr_stage.score_batch` per slice,
cross-fitted scores for the sampled documents, frequent test n-grams exempt,
:func:`curation.betr_stage.finish_batch` with exact quantiles); only the glue differs: slices of
the table go to a thread pool instead of Spark tasks. Scores, flags and percentiles equal the
Spark engine's (tests/test_engines.py). See docs/engine.md.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.accounting import StageStats
from connectors.arrow_rows import take_rows
from curation.betr_stage import QUANTILE_PROBS, ScoreResult, finish_batch, prepare_scoring, sample_classifier, score_batch
from curation.dedup_local import map_slices, slice_of
from curation.params import ScoreParams
from curation.quantiles import exact_quantiles
from curation.spark_hash import spark_xxhash64


def sample_documents_local(docs: pa.Table, n: int, seed: int) -> tuple[list[str], list[str]]:
    """The ``n`` documents with the smallest seeded hash of their id (ties by id), sorted by id:
    :func:`curation.betr_stage.sample_documents` without Spark."""
    ids = docs.column("id")
    keys = pa.table({"k": spark_xxhash64(ids, seed), "id": ids})
    order = pc.sort_indices(keys, sort_keys=[("k", "ascending"), ("id", "ascending")])[:n]
    picked = take_rows(docs.select(["id", "text"]), order)
    picked = picked.take(pc.sort_indices(picked, sort_keys=[("id", "ascending")]))
    return picked.column("id").to_pylist(), [t or "" for t in picked.column("text").to_pylist()]


def score_stage_local(docs: pa.Table, params: ScoreParams, threads: int = 1) -> ScoreResult:
    """:func:`curation.betr_stage.score_stage` on a table; ``scores`` is an Arrow table in the
    input's row order."""
    started = time.time()
    setup = prepare_scoring(params)
    evaluation = setup.evaluation
    model, sample_table, crossfit = sample_classifier(params, setup, lambda n, seed: sample_documents_local(docs, n, seed))
    text = docs.column("text")

    def one_slice(start: int, stop: int):
        values = [t or "" for t in slice_of(text, start, stop).to_pylist()]
        return score_batch(values, params, model, setup.target_emb, setup.test_ngrams)

    parts = map_slices(docs.num_rows, one_slice, threads, "BETR scores")
    score = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    matched = pa.concat_arrays([p[1] for p in parts]) if parts else pa.array([], pa.list_(pa.int64()))
    if sample_table is not None and crossfit is not None:  # sampled documents take their cross-fitted score
        at = pc.index_in(docs.column("id"), value_set=sample_table.column("id")).combine_chunks()
        hit = at.is_valid()
        score = score.copy()
        score[np.flatnonzero(hit.to_numpy(zero_copy_only=False))] = np.asarray(crossfit, np.float64)[at.filter(hit).to_numpy()]
    flat = matched.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    exempt = np.zeros(0, np.int64)
    if len(setup.test_ngrams):
        values, counts = np.unique(flat, return_counts=True)
        exempt = values[counts > params.max_ngram_doc_frequency]
    evaluation["decontamination_exempt_ngrams"] = int(len(exempt))
    qs = exact_quantiles(score, QUANTILE_PROBS)
    batch = finish_batch(docs.column("id").combine_chunks(), score, matched, qs, exempt)
    scores = pa.Table.from_batches([batch])
    evaluation["contaminated"] = int(pc.sum(batch.column("contaminated").cast(pa.int64())).as_py() or 0)
    n = docs.num_rows
    stats = StageStats(name="score", docs_in=n, docs_out=n, seconds=round(time.time() - started, 3), details=evaluation)
    return ScoreResult(scores=scores, sample=sample_table, model=model, stats=stats, evaluation=evaluation)
