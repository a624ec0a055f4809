"""datasketch peer: MinHash.bulk (xxh32) + MinHashLSH (query then insert) + union-find.
Run by the datasketch venv's python: IN.jsonl OUT_removed.txt NUM_PERM BANDS ROWS NGRAM"""

import json
import re
import sys

from datasketch import MinHash, MinHashLSH
from xxhash import xxh32_intdigest

src, out, num_perm, bands, rows, ngram = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
word = re.compile(r"\w+")
ids, shingle_lists = [], []
with open(src) as fh:
    for line in fh:
        rec = json.loads(line)
        toks = word.findall(rec["text"].lower())
        grams = {" ".join(toks[i : i + ngram]).encode() for i in range(max(1, len(toks) - ngram + 1))}
        ids.append(rec["id"])
        shingle_lists.append(list(grams))
sigs = MinHash.bulk(shingle_lists, num_perm=num_perm, hashfunc=xxh32_intdigest)
lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
parent = list(range(len(ids)))


def find(x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


for i, m in enumerate(sigs):
    for j in lsh.query(m):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    lsh.insert(i, m)
with open(out, "w") as fh:
    for i in range(len(ids)):
        if find(i) != i:
            fh.write(ids[i] + "\n")
