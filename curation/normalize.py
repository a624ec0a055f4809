"""Text normalization for exact-duplicate keys.

Rule (documented in docs/dedup.md): Unicode NFKC, lower-case, every run of whitespace collapsed
to one space, leading/trailing whitespace removed. Digits are *never* replaced by a constant:
datatrove's digit folding made unrelated documents identical (FineWeb pitfall, reference
dedup.md §4), so "Table 3" and "Table 4" stay different.

Vectorized with pyarrow compute (C++), one Arrow batch at a time; ASCII text stays in the JVM.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

WHITESPACE = "[\t\n\x0b\x0c\r ]+"  # the same class in RE2 (pyarrow) and java.util.regex (Spark)


def normalize_text(texts: pa.Array) -> pa.Array:
    """NFKC + lower-case + collapsed whitespace, for a whole Arrow string array."""
    out = pc.utf8_normalize(texts, form="NFKC")
    out = pc.utf8_lower(out)
    out = pc.replace_substring_regex(out, pattern=WHITESPACE, replacement=" ")
    return pc.utf8_trim_whitespace(out)


def with_normalized(df, text_col: str = "text", out_col: str = "_norm"):
    """``df`` plus ``out_col`` = normalized ``text_col``. NFKC leaves ASCII unchanged, so ASCII
    rows (as many characters as UTF-8 bytes) are normalized by JVM expressions alone and only the
    other rows go through the Arrow UDF around :func:`normalize_text` (Spark would evaluate a
    Python UDF on every row even inside a CASE WHEN, hence the explicit split). Both paths give
    identical strings (tested)."""
    from pyspark.sql import functions as F

    text = F.col(text_col)
    is_ascii = F.coalesce(F.length(text) == F.octet_length(text), F.lit(True))
    ascii_rows = df.where(is_ascii).withColumn(out_col, F.trim(F.regexp_replace(F.lower(text), WHITESPACE, " ")))
    other_rows = df.where(~is_ascii).withColumn(out_col, _normalized_udf(text))
    return ascii_rows.unionByName(other_rows)


def _normalized_udf(column):
    from pyspark.sql.functions import arrow_udf

    @arrow_udf("string")
    def _normalize(texts: pa.Array) -> pa.Array:
        return normalize_text(texts)

    return _normalize(column)
