"""Spark glue: one ``mapInArrow`` pass computes every per-document signal column.

Per Arrow batch: the heuristic signals (:mod:`curation.quality_signals`, polars + numpy),
fastText language id (:mod:`curation.language_id`, compiled), the quality model's score
(:mod:`curation.quality_model`, one sparse product) and the lexical target similarity
(:mod:`curation.target_similarity`). The text crosses to Python once for all of them. The
one-process engine (:mod:`tiers.stage_local`) calls the same ``signals_batch`` per slice.
"""

from __future__ import annotations

import pyarrow as pa

from curation.hashing_jit import hashed_ngram_counts_shared
from curation.quality_signals import SIGNAL_COLUMNS, quality_signals

BATCH_ROWS = 2048


def signals_schema() -> pa.Schema:
    probe = quality_signals(["probe text"])
    fields = [pa.field("id", pa.string()), pa.field("source", pa.string())] + [probe.schema.field(c) for c in SIGNAL_COLUMNS]
    fields += [
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float64()),
        pa.field("quality_score", pa.float64()),
        pa.field("target_similarity", pa.float64()),
    ]
    return pa.schema(fields)


def _spark_schema(schema: pa.Schema) -> str:
    names = {pa.string(): "string", pa.float64(): "double", pa.int64(): "bigint", pa.bool_(): "boolean"}
    return ", ".join(f"`{f.name}` {names[f.type]}" for f in schema)


def signals_batch(part, quality_model=None, target_similarity=None, language: bool = True, schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Every signal column of one batch (id, source, text): the kernel both engines call."""
    from curation.language_id import identify_language

    texts = part.column("text")
    sig = quality_signals(texts)
    n = part.num_rows
    if language:
        lang, lang_score = identify_language(texts)
    else:
        lang, lang_score = pa.nulls(n, pa.string()), pa.nulls(n, pa.float64())
    q_counts = t_counts = None
    if quality_model and target_similarity:  # one tokenization for both when they read the same n-grams
        qs, ts = quality_model.ngram_space(), target_similarity.ngram_space()
        if qs is not None and qs[1:] == ts[1:]:
            q_counts, t_counts = hashed_ngram_counts_shared(texts, (qs[0], ts[0]), qs[1], qs[2])
    q = pa.array(quality_model.score(texts, counts=q_counts)) if quality_model else pa.nulls(n, pa.float64())
    t = pa.array(target_similarity.score(texts, counts=t_counts)) if target_similarity else pa.nulls(n, pa.float64())
    cols = [part.column("id"), part.column("source")] + [sig.column(c).combine_chunks() for c in SIGNAL_COLUMNS] + [lang, lang_score, q, t]
    return pa.RecordBatch.from_arrays(cols, schema=schema or signals_schema())


def compute_signals(docs, quality_model=None, target_similarity=None, language: bool = True):
    """DataFrame (id, source, signal columns, lang, lang_score, quality_score, target_similarity) for
    ``docs`` (id, text). Models are plain numpy objects shipped to the tasks with the closure."""
    schema = signals_schema()

    def per_batch(batches):
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                yield signals_batch(batch.slice(start, BATCH_ROWS), quality_model, target_similarity, language, schema)

    return docs.select("id", "source", "text").mapInArrow(per_batch, _spark_schema(schema))
