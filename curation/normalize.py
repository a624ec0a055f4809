"""Text normalization for exact-duplicate keys.

Rule (documented in docs/dedup.md): Unicode NFKC, lower-case, every run of whitespace collapsed
to one space, leading/trailing whitespace removed. Digits are *never* replaced by a constant:
datatrove's digit folding made unrelated documents identical (FineWeb pitfall, reference
dedup.md §4), so "Table 3" and "Table 4" stay different.

Vectorized with pyarrow compute (C++), one Arrow batch at a time.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def normalize_text(texts: pa.Array) -> pa.Array:
    """NFKC + lower-case + collapsed whitespace, for a whole Arrow string array."""
    out = pc.utf8_normalize(texts, form="NFKC")
    out = pc.utf8_lower(out)
    out = pc.replace_substring_regex(out, pattern=r"\s+", replacement=" ")
    return pc.utf8_trim_whitespace(out)


def normalized_column(column):
    """Spark Column of normalized text (an Arrow UDF around :func:`normalize_text`)."""
    from pyspark.sql.functions import arrow_udf

    @arrow_udf("string")
    def _normalize(texts: pa.Array) -> pa.Array:
        return normalize_text(texts)

    return _normalize(column)
