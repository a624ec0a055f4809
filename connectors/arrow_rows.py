"""Gathering rows of large Arrow tables: :func:`take_rows`, ``Table.take`` without its limit.

Arrow's ``take`` on a chunked column first concatenates every chunk into one array, so a table
holding more than 2 GiB of ``string`` data (about 500,000 documents of 4,000 characters) fails
with "offset overflow while concatenating arrays", even when only a few rows are taken, and it
copies the whole column on the way. :func:`take_rows` takes from each record batch only the rows
asked of it and returns a table of blocks, each well under that limit. The one-process engine
uses it wherever it gathers text-bearing rows (docs/engine.md, "Memory of the one-process
engine"). :func:`filter_rows` keeps the record batches that lose no row as they are, instead of
``Table.filter``'s copy of every batch.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

BLOCK_ROWS = 1 << 16
BLOCK_BYTES = 1 << 30


def take_rows(data: pa.Table | pa.ChunkedArray | pa.Array, indices, block_rows: int = BLOCK_ROWS, block_bytes: int = BLOCK_BYTES):
    """``data.take(indices)`` (a table, a chunked array or an array; indices non-null, in range)
    as blocks of at most ``block_rows`` rows and about ``block_bytes`` bytes, so no block's
    strings pass Arrow's 2 GiB offsets; the rows and their order equal ``take``'s."""
    if isinstance(data, pa.Array):
        return data.take(indices)
    if isinstance(data, pa.ChunkedArray):
        return take_rows(pa.table({"v": data}), indices, block_rows, block_bytes).column(0)
    idx = np.asarray(indices.to_numpy(zero_copy_only=False) if isinstance(indices, (pa.Array, pa.ChunkedArray)) else indices, np.int64)
    batches = [b for b in data.to_batches() if b.num_rows]
    if len(batches) <= 1:
        return data.take(pa.array(idx)) if len(idx) else data.slice(0, 0)
    if len(idx) and (idx.min() < 0 or idx.max() >= data.num_rows):
        raise IndexError(f"row index out of range for a table of {data.num_rows} rows")
    starts = np.concatenate([[0], np.cumsum([b.num_rows for b in batches])])
    chunk_of = np.searchsorted(starts, idx, side="right") - 1
    local = idx - starts[chunk_of]
    blocks: list[pa.Table] = []

    def gather(lo: int, hi: int) -> None:
        chunks = chunk_of[lo:hi]
        order = np.argsort(chunks, kind="stable")
        sorted_chunks = chunks[order]
        cuts = np.flatnonzero(np.diff(sorted_chunks)) + 1
        pieces = []
        for group in np.split(order, cuts):
            if len(group):
                pieces.append(batches[int(chunks[group[0]])].take(pa.array(local[lo:hi][group])))
        block = pa.Table.from_batches(pieces, schema=data.schema)
        if block.nbytes > block_bytes and hi - lo > 1:
            mid = (lo + hi) // 2
            gather(lo, mid)
            gather(mid, hi)
            return
        inverse = np.empty(hi - lo, np.int64)
        inverse[order] = np.arange(hi - lo)
        blocks.append(block.take(pa.array(inverse)))

    for lo in range(0, len(idx), block_rows):
        gather(lo, min(lo + block_rows, len(idx)))
    return pa.concat_tables(blocks) if blocks else data.slice(0, 0)


def filter_rows(table: pa.Table, mask) -> pa.Table:
    """``table.filter(mask)`` (a boolean mask without nulls), copying only the record batches that
    lose a row; a batch that keeps every row stays in the result without a copy."""
    keep = np.asarray(mask.to_numpy(zero_copy_only=False) if isinstance(mask, (pa.Array, pa.ChunkedArray)) else mask, bool)
    if len(keep) != table.num_rows:
        raise ValueError(f"a mask of {len(keep)} rows for a table of {table.num_rows}")
    parts = []
    start = 0
    for batch in table.to_batches():
        part = keep[start : start + batch.num_rows]
        start += batch.num_rows
        if part.all():
            parts.append(batch)
        elif part.any():
            parts.append(batch.filter(pa.array(part)))
    return pa.Table.from_batches(parts, schema=table.schema)
