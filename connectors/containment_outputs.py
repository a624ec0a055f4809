"""The containment stage's files under its output folder: ``edges.parquet`` (child, parent,
ratio, child_rows, verified), ``report.md`` and ``funnel.json``, each written under a temporary
name and renamed (docs/containment.md)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.manifest import write_file_atomic

EDGE_SCHEMA = pa.schema(
    [("child", pa.string()), ("parent", pa.string()), ("ratio", pa.float64()), ("child_rows", pa.int64()), ("verified", pa.bool_())]
)


def write_containment_outputs(output: str, edges: list[dict], funnel: dict, report: str) -> None:
    os.makedirs(output, exist_ok=True)
    table = pa.Table.from_pylist(edges, schema=EDGE_SCHEMA)
    write_file_atomic(os.path.join(output, "edges.parquet"), lambda p: pq.write_table(table, p))
    write_file_atomic(os.path.join(output, "report.md"), lambda p: open(p, "w").write(report))
    write_file_atomic(os.path.join(output, "funnel.json"), lambda p: open(p, "w").write(json.dumps(funnel, indent=2)))
