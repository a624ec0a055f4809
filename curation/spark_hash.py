"""Spark's ``xxhash64(column, lit(seed))`` of a string column, computed without Spark.

The score stage samples the documents with the smallest seeded hash of their id, and the select
stage orders a pool's documents the same way; the one-process engine must draw the same documents
as the Spark engine. Spark's ``XxHash64`` starts from seed 42 and folds each argument in turn: a
string is hashed as XXH64 of its UTF-8 bytes seeded with the running hash, an integer literal as
XXH64 of its 4 little-endian bytes (``XXH64.hashInt``). The kernel is standard XXH64 (Collet,
xxHash spec) over an Arrow string array's offsets and bytes; tests/test_engines.py checks it against
Spark and against the ``xxhash`` library.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "tierlake-numba-cache"))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
SPARK_HASH_SEED = 42

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@_jit
def _read_le(data, i, width):
    """``width`` bytes of ``data`` from ``i``, little-endian, as uint64."""
    v = np.uint64(0)
    for k in range(width):
        v |= np.uint64(data[i + k]) << np.uint64(8 * k)
    return v


@_jit
def _round(acc, lane):
    return _rotl(acc + lane * _P2, 31) * _P1


@_jit
def _merge(acc, v):
    acc ^= _round(np.uint64(0), v)
    return acc * _P1 + _P4


@_jit
def _fmix(h):
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@_jit
def xxh64(data, start, stop, seed):
    """XXH64 of ``data[start:stop]`` (uint8) with a uint64 seed."""
    n = stop - start
    i = start
    if n >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        limit = stop - 32
        while i <= limit:
            v1 = _round(v1, _read_le(data, i, 8))
            v2 = _round(v2, _read_le(data, i + 8, 8))
            v3 = _round(v3, _read_le(data, i + 16, 8))
            v4 = _round(v4, _read_le(data, i + 24, 8))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = seed + _P5
    h += np.uint64(n)
    while i + 8 <= stop:
        h ^= _round(np.uint64(0), _read_le(data, i, 8))
        h = _rotl(h, 27) * _P1 + _P4
        i += 8
    if i + 4 <= stop:
        h ^= _read_le(data, i, 4) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        i += 4
    while i < stop:
        h ^= np.uint64(data[i]) * _P5
        h = _rotl(h, 11) * _P1
        i += 1
    return _fmix(h)


@_jit
def _hash_strings_int(offsets, data, valid, seed, value):
    out = np.empty(len(offsets) - 1, np.uint64)
    word = np.empty(4, np.uint8)
    for k in range(4):
        word[k] = (value >> (8 * k)) & 0xFF
    for r in range(len(out)):
        h = seed
        if valid[r]:
            h = xxh64(data, offsets[r], offsets[r + 1], h)
        out[r] = xxh64(word, 0, 4, h)
    return out


def spark_xxhash64(strings: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """int64 array equal to Spark's ``F.xxhash64(F.col(c), F.lit(seed))`` for a string column
    (``seed`` an int32, as ``F.lit`` types a small Python int; a null string leaves the running
    hash unchanged, as in Spark)."""
    if not -(2**31) <= seed < 2**31:
        raise ValueError("seed must fit in 32 bits (F.lit types larger ints as long)")
    arr = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    arr = arr.cast(pa.large_string())
    if len(arr) == 0:
        return np.zeros(0, np.int64)
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if validity is not None else np.ones(len(arr), np.bool_)
    return _hash_strings_int(offsets, data, valid, np.uint64(SPARK_HASH_SEED), np.int64(seed & 0xFFFFFFFF)).view(np.int64)
