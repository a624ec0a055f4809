"""Exact containment ratios on Spark, for tables too large to hash in the driver.

Same definition and canonical values as :func:`curation.containment.row_hashes` (numbers as
doubles, so int 5 = double 5.0; null distinct from ''), hashed with Spark's 64-bit ``xxhash64``:
ratio = 1 − |distinct(A) left-anti B| / |distinct(A)|, two Spark jobs per pair. Tables are read
with Spark's own readers: Parquet files, Hive-partitioned datasets (``basePath`` so partition values
become columns), CSV (header, inferred types) and Delta tables through their active Parquet files.
"""

from __future__ import annotations

import posixpath

from connectors.lake_catalog import TableInfo
from curation.containment import normalize_name

NULL_MARK = "\x00null\x00"


def spark_table(spark, info: TableInfo):
    paths = [f[0] for f in info.files]
    if info.format == "csv":
        # RFC 4180, as the catalog reads it: quoted values may hold line breaks, "" is a quote
        reader = spark.read.option("header", True).option("inferSchema", True).option("multiLine", True).option("escape", '"')
        return reader.csv(paths)
    if info.format == "parquet_dataset":
        marker = "/" + info.path + "/"
        first = paths[0]
        base = first[: first.index(marker) + len(marker) - 1] if marker in first else posixpath.dirname(first)
        return spark.read.option("basePath", base).parquet(*paths)
    return spark.read.parquet(*paths)


def row_hash_column(df, columns: list[str]):
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, DoubleType, FloatType, IntegralType

    types = {f.name: f.dataType for f in df.schema.fields}
    parts = []
    for c in columns:
        col = F.col(f"`{c}`")
        if isinstance(types[c], (IntegralType, DoubleType, FloatType, DecimalType)):
            col = col.cast("double")
        parts.append(F.coalesce(col.cast("string"), F.lit(NULL_MARK)))
    return F.xxhash64(*parts).alias("h")


def spark_ratio(spark, child: TableInfo, parent: TableInfo) -> tuple[float, int]:
    """(exact ratio, child's distinct rows) of child ⊑ parent on child's columns."""
    a_df, b_df = spark_table(spark, child), spark_table(spark, parent)
    a_cols = sorted(a_df.columns, key=normalize_name)
    by_norm = {normalize_name(c): c for c in b_df.columns}
    b_cols = [by_norm[normalize_name(c)] for c in a_cols]
    a = a_df.select(row_hash_column(a_df, a_cols)).distinct()
    b = b_df.select(row_hash_column(b_df, b_cols)).distinct()
    n = a.count()
    if n == 0:
        return 1.0, 0
    missing = a.join(b, "h", "left_anti").count()
    return (n - missing) / n, n
