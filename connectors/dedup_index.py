"""A saved dedup index, so a new batch is deduplicated against earlier runs without recomputing them.

Layout under DIR::

    index.json          parameters that must match (num_perm, seed, bands, rows, ngram, unit) and the runs
    exact/part-RUN.parquet    (id, key)        exact-dedup keys of kept documents
    bands/part-RUN.parquet    (id, band, key)  LSH band rows of kept documents
    texts/part-RUN.parquet    (id, text)       texts of kept documents, for exact-Jaccard verification

Each run appends one part per folder (written under a temporary name and renamed), then rewrites
index.json atomically: a crashed run leaves no half part that later runs would read.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from connectors.filesystem import InputError, is_s3


class DedupIndex:
    def __init__(self, root: str, params: dict):
        if is_s3(root):
            raise InputError("the dedup index must be a local folder (s3:// indexes are not supported yet)")
        self.root = os.path.abspath(root)
        self.params = params
        self.meta_path = os.path.join(self.root, "index.json")
        self.meta: dict[str, Any] = {"params": params, "runs": []}
        if os.path.exists(self.meta_path):
            with open(self.meta_path) as fh:
                self.meta = json.load(fh)
            saved = self.meta.get("params", {})
            diff = {k: (saved.get(k), v) for k, v in params.items() if saved.get(k) != v}
            if diff:
                detail = ", ".join(f"{k}: index has {old!r}, this run {new!r}" for k, (old, new) in diff.items())
                raise InputError(
                    f"dedup index {self.root} was built with other parameters ({detail}); run with the index's values (e.g. --bands/--rows) or use a new --index folder"
                )

    @property
    def empty(self) -> bool:
        return not self.meta["runs"]

    def frames(self, spark):
        """(keys, bands, texts) DataFrames of every indexed run, or None when the index is empty."""
        if self.empty:
            return None

        def read(name):
            return spark.read.parquet(*[os.path.join(self.root, name, f"part-{r['run_id']}.parquet") for r in self.meta["runs"]])

        return read("exact"), read("bands"), read("texts")

    def tables(self):
        """(keys, bands, texts) Arrow tables of every indexed run (the local engine), or None when empty."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.empty:
            return None

        def read(name):
            return pa.concat_tables([pq.read_table(os.path.join(self.root, name, f"part-{r['run_id']}.parquet")) for r in self.meta["runs"]])

        return read("exact"), read("bands"), read("texts")

    def append(self, run_id: str, keys, bands, texts) -> dict:
        """Add one run's kept documents (Spark DataFrames, or Arrow tables from the local engine);
        returns the run record (documents added)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        counts = {}
        for name, df in (("exact", keys), ("bands", bands), ("texts", texts)):
            folder = os.path.join(self.root, name)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".part-{run_id}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(df, pa.Table):
                os.makedirs(tmp)
                pq.write_table(df, os.path.join(tmp, "part-0.parquet"), compression="zstd")
            else:
                df.coalesce(1).write.option("compression", "zstd").parquet(tmp)
            files = [f for f in os.listdir(tmp) if f.endswith(".parquet")]
            final = os.path.join(folder, f"part-{run_id}.parquet")
            os.rename(os.path.join(tmp, files[0]), final)
            shutil.rmtree(tmp, ignore_errors=True)
            counts[name] = pq.ParquetFile(final).metadata.num_rows
        record = {"run_id": run_id, "documents": counts["exact"], "band_rows": counts["bands"]}
        self.meta["runs"].append(record)
        tmp_meta = self.meta_path + ".tmp"
        with open(tmp_meta, "w") as fh:
            json.dump(self.meta, fh, indent=2)
        os.replace(tmp_meta, self.meta_path)
        return record
