"""Document and table signals: normalization, dedup, containment, filters, scoring.

Kernels are plain numpy/pyarrow functions (tested directly); the ``*_spark`` functions apply
them to DataFrames in vectorized batches.
"""
