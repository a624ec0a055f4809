"""connectors.arrow_rows.take_rows: Table.take's rows and order, gathered batch by batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from connectors.arrow_rows import filter_rows, take_rows

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("n", pa.int64())])


def _chunked_table(rng, chunks=7):
    parts = []
    for c in range(chunks):
        n = int(rng.integers(0, 300))
        columns = {"id": [f"c{c}-{i}" for i in range(n)], "text": ["w" * int(k) for k in rng.integers(0, 50, n)], "n": np.arange(n)}
        parts.append(pa.table(columns, schema=SCHEMA))
    return pa.concat_tables(parts)


@pytest.mark.parametrize("block_rows,block_bytes", [(1 << 16, 1 << 30), (37, 1 << 30), (1000, 2_000), (5, 1)])
def test_take_rows_equals_take_in_rows_and_order(block_rows, block_bytes):
    rng = np.random.default_rng(3)
    table = _chunked_table(rng)
    assert table.column("text").num_chunks > 1
    for indices in (rng.integers(0, table.num_rows, 500), np.arange(table.num_rows)[::-1], np.array([], np.int64), np.array([4, 4, 4])):
        got = take_rows(table, pa.array(indices, pa.int64()), block_rows, block_bytes)
        want = table.take(pa.array(indices, pa.int64()))
        assert got.schema == table.schema and got.to_pylist() == want.to_pylist()
    column = take_rows(table.column("text"), np.array([3, 1, 2]), block_rows, block_bytes)
    assert column.to_pylist() == table.column("text").take([3, 1, 2]).to_pylist()


def test_take_rows_blocks_stay_under_the_byte_bound():
    """Each block of the result is at most block_bytes (unless one row alone is larger): the
    property that keeps a gather of more than 2 GiB of strings under Arrow's int32 offsets."""
    rng = np.random.default_rng(4)
    table = _chunked_table(rng)
    got = take_rows(table, np.arange(table.num_rows), 10_000, 4_000)
    sizes = [b.nbytes for b in got.to_batches()]
    assert len(sizes) > 1 and max(sizes) <= 4_000 + 200


def test_take_rows_refuses_an_index_out_of_range():
    table = _chunked_table(np.random.default_rng(5))
    with pytest.raises(IndexError):
        take_rows(table, [table.num_rows])


def test_filter_rows_equals_filter_and_keeps_whole_batches_without_a_copy():
    rng = np.random.default_rng(6)
    table = _chunked_table(rng)
    mask = np.ones(table.num_rows, bool)
    mask[rng.integers(0, table.num_rows, 5)] = False
    got = filter_rows(table, pa.array(mask))
    assert got.schema == table.schema and got.to_pylist() == table.filter(pa.array(mask)).to_pylist()
    untouched = [
        b
        for b, lo in zip(table.to_batches(), np.cumsum([0] + [b.num_rows for b in table.to_batches()]))
        if b.num_rows and mask[lo : lo + b.num_rows].all()
    ]
    addresses = {b.column(1).buffers()[2].address for b in got.to_batches()}
    assert untouched and all(b.column(1).buffers()[2].address in addresses for b in untouched)
    assert filter_rows(table, np.zeros(table.num_rows, bool)).num_rows == 0
    with pytest.raises(ValueError):
        filter_rows(table, [True])
