"""Run datatrove's Gopher quality, Gopher repetition, C4 (as FineWeb: terminal punctuation off) and
FineWeb filters on a JSONL of texts; print per-document decisions and the time per filter as JSON.
Runs inside the datatrove peer venv (bench/.peers/datatrove)."""

import json
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

texts = [json.loads(line)["text"] for line in open(sys.argv[1])]
filters = {
    "gopher_quality": GopherQualityFilter(),
    "gopher_repetition": GopherRepetitionFilter(),
    "c4": C4QualityFilter(filter_no_terminal_punct=False),
    "fineweb": FineWebQualityFilter(),
}
out = {"decisions": {}, "seconds": {}}
for name, f in filters.items():
    f.filter(Document(text="warm up the tokenizer.", id="w"))
    t = time.perf_counter()
    res = []
    for i, text in enumerate(texts):
        r = f.filter(Document(text=text, id=str(i)))
        ok, reason = (r, None) if isinstance(r, bool) else r
        res.append(None if ok else (reason or name))
    out["seconds"][name] = time.perf_counter() - t
    out["decisions"][name] = res
json.dump(out, sys.stdout)
