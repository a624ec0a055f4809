"""datatrove peer: the four-stage MinHash pipeline of datatrove's examples/minhash_deduplication.py,
on LocalPipelineExecutor with 2 workers. Args: INPUT_DIR (JSONL parts) OUT BANDS ROWS NGRAM.
Removed ids come from the filter stage's exclusion_writer."""

import glob
import gzip
import json
import os
import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

if __name__ == "__main__":
    src, out, bands, rows, ngram = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    config = MinhashConfig(n_grams=ngram, num_buckets=bands, hashes_per_bucket=rows)
    tasks = len(glob.glob(os.path.join(src, "*.jsonl")))
    reader = JsonlReader(src, glob_pattern="*.jsonl")
    stages = [
        LocalPipelineExecutor(
            pipeline=[reader, MinhashDedupSignature(output_folder=f"{out}/signatures", config=config)],
            tasks=tasks,
            workers=2,
            logging_dir=f"{out}/logs/signatures",
        ),
        LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=f"{out}/signatures", output_folder=f"{out}/buckets", config=config)],
            tasks=bands,
            workers=2,
            logging_dir=f"{out}/logs/buckets",
        ),
        LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove_ids", config=config)],
            tasks=1,
            workers=1,
            logging_dir=f"{out}/logs/clusters",
        ),
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(src, glob_pattern="*.jsonl"),
                MinhashDedupFilter(input_folder=f"{out}/remove_ids", exclusion_writer=JsonlWriter(f"{out}/removed")),
                JsonlWriter(output_folder=f"{out}/deduplicated"),
            ],
            tasks=tasks,
            workers=2,
            logging_dir=f"{out}/logs/filter",
        ),
    ]
    for stage in stages:
        stage.run()
    ids = []
    for f in sorted(glob.glob(f"{out}/removed/*")):
        opener = gzip.open if f.endswith(".gz") else open
        with opener(f, "rt") as fh:
            ids += [json.loads(line)["id"] for line in fh]
    with open(os.path.join(out, "removed.txt"), "w") as fh:
        fh.write("\n".join(ids))
