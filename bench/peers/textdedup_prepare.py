"""Convert the benchmark Parquet to a datasets save_to_disk folder (text-dedup's --local input)."""

import sys

import datasets

datasets.Dataset.from_parquet(sys.argv[1]).save_to_disk(sys.argv[2])
