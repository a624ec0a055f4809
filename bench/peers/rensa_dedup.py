"""rensa peer: R-MinHash sketches + LSH candidates with rensa's similarity check, through its
documented deduplication API (``RMinHashDeduplicator.add_pairs``: a document is kept unless an
earlier kept one is a candidate whose estimated Jaccard reaches the threshold). Shingles as the
datasketch peer: lower-cased ``\\w+`` words, word n-grams.
Run by the rensa venv's python: IN.jsonl OUT_removed.txt NUM_PERM BANDS ROWS NGRAM THRESHOLD"""

import json
import re
import sys

from rensa import RMinHashDeduplicator

src, out, num_perm, bands, rows, ngram = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
threshold = float(sys.argv[7])
word = re.compile(r"\w+")


def shingled():
    with open(src) as fh:
        for line in fh:
            rec = json.loads(line)
            toks = word.findall(rec["text"].lower())
            yield rec["id"], list({" ".join(toks[i : i + ngram]) for i in range(max(1, len(toks) - ngram + 1))})


pairs = list(shingled())
dedup = RMinHashDeduplicator(threshold=threshold, num_perm=num_perm, use_lsh=True, num_bands=bands)
keep = dedup.add_pairs(pairs)
with open(out, "w") as fh:
    fh.writelines(key + "\n" for (key, _), kept in zip(pairs, keep) if not kept)
