"""Removed ids = input ids not in text-dedup's kept dataset (untimed post-processing)."""

import sys

import datasets

all_ids = set(datasets.load_from_disk(sys.argv[1])["id"])
kept = set(datasets.load_from_disk(sys.argv[2])["id"])
with open(sys.argv[3], "w") as fh:
    fh.write("\n".join(sorted(all_ids - kept)))
