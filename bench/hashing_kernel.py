"""Hashed word n-gram features: scikit-learn's HashingVectorizer against tierlake's compiled kernel
(curation/hashing_jit.py), on the same texts in one run.

    .venv/bin/python bench/hashing_kernel.py [--repeat 3]

Texts: the documents of a ``bench/pipeline.py`` demo run (bench/.data/pipeline/n20000) and the real
web pages under ../shared/data/webtext (skipped, and said so, when either is absent). Features as
the quality model reads them (2^20 columns, word 1-2-grams, 100,000 characters). For each: the
matrices are compared entry for entry, then documents/s on one thread and on two (2,048-document
slices on a thread pool, as the one-process engine runs them), medians of ``--repeat``. Writes
bench/results/hashing-kernel.json and the "Hashed n-gram features" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402

from curation.hashing_jit import hashed_ngram_counts, sklearn_vectorizer  # noqa: E402

N_FEATURES, NGRAM_MAX, MAX_CHARS, SLICE = 1 << 20, 2, 100_000, 2048


def corpora() -> dict[str, list[str]]:
    out = {}
    docs = sorted(glob.glob(os.path.join(HERE, ".data", "pipeline", "n20000", "output-*", "documents", "*.parquet")))
    if docs:
        folder = os.path.dirname(docs[0])
        out["demo documents"] = pq.read_table(folder).column("text").to_pylist()
    else:
        print("skipped demo documents: run bench/pipeline.py --docs 20000 first")
    web = []
    for path in sorted(glob.glob(os.path.join(ROOT, "..", "shared", "data", "webtext", "*", "*.json*"))):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                web.append(record.get("text") or "")
    if web:
        out["real web pages"] = web
    else:
        print("skipped real web pages: ../shared/data/webtext is absent")
    return out


def sklearn_features(texts: list[str]):
    return sklearn_vectorizer(N_FEATURES, NGRAM_MAX).transform([t[:MAX_CHARS] for t in texts])


def kernel_features(texts: list[str]):
    return hashed_ngram_counts(pa.array(texts, pa.large_string()), N_FEATURES, NGRAM_MAX, MAX_CHARS)


def timed(fn, texts: list[str], threads: int, repeat: int) -> float:
    slices = [texts[i : i + SLICE] for i in range(0, len(texts), SLICE)]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        if threads == 1:
            for part in slices:
                fn(part)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fn, slices))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args(argv)
    kernel_features(["warm up the compiled kernel"])
    rows = []
    for name, texts in corpora().items():
        a, b = sklearn_features(texts).tocsr(), kernel_features(texts)
        equal = bool(np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))
        row = {"corpus": name, "documents": len(texts), "mean_chars": int(np.mean([len(t) for t in texts])), "equal": equal}
        for threads in (1, 2):
            for label, fn in (("sklearn", sklearn_features), ("kernel", kernel_features)):
                row[f"{label}_{threads}t_docs_per_s"] = len(texts) / timed(fn, texts, threads, args.repeat)
        rows.append(row)
        print(row, flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    command = f"bench/hashing_kernel.py --repeat {args.repeat}"
    with open(os.path.join(HERE, "results", "hashing-kernel.json"), "w") as fh:
        json.dump({"machine": machine(), "command": command, "rows": rows}, fh, indent=1)
    lines = [
        f"Command: `.venv/bin/python {command}`  ",
        f"Machine: {machine()} (medians of {args.repeat}).  ",
        f"Hashed word 1-{NGRAM_MAX}-gram counts, {N_FEATURES:,} columns, the first {MAX_CHARS:,} characters (the quality "
        "model's features; the target similarity and BETR's classifier differ only in columns and characters): "
        "scikit-learn's `HashingVectorizer` against `curation.hashing_jit.hashed_ngram_counts`, on 2,048-document "
        "slices, one thread and two. Equal: the two matrices match entry for entry.",
        "",
        "| texts | documents | mean characters | equal | scikit-learn, 1 thread | kernel, 1 thread | scikit-learn, 2 threads | kernel, 2 threads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['documents']:,} | {r['mean_chars']:,} | {'yes' if r['equal'] else 'NO'} | "
            f"{r['sklearn_1t_docs_per_s']:,.0f} | **{r['kernel_1t_docs_per_s']:,.0f}** | {r['sklearn_2t_docs_per_s']:,.0f} | "
            f"**{r['kernel_2t_docs_per_s']:,.0f}** |"
        )
    replace_section(args.markdown, "Hashed n-gram features", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
