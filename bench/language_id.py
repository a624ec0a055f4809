"""Language id: tierlake's compiled fastText predict (curation/fasttext_jit.py) against
fasttext-predict's C++ ``predict`` (one call per document, the GIL held), side by side on the same
texts in one run, with their answers compared label for label and probability for probability.

    .venv/bin/python bench/pipeline.py --docs 20000 --repeat 1      # makes the demo run it reads
    .venv/bin/python bench/language_id.py [--repeat 3]

Texts: the documents of the ``bench/pipeline.py`` demo run (bench/.data/pipeline/n20000) and, when
``../shared/data`` is there, real web pages (Dolma's Common Crawl sample, DCLM's human-quality
pages), Python standard-library modules and WikiText-2 paragraphs. Each is run in 2,048-document
slices (as the tier stage does) on one thread, and the compiled kernel also on two threads (it
releases the GIL). Medians; writes docs/benchmarks.md ("Language id").
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402

from curation.document_signals import BATCH_ROWS  # noqa: E402
from curation.language_id import identify_language, identify_language_reference  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def demo_texts() -> pa.Array | None:
    files = sorted(glob.glob(os.path.join(ROOT, "bench", ".data", "pipeline", "n20000", "output-*", "documents", "*.parquet")))
    first = sorted({os.path.dirname(f) for f in files})[:1]
    files = [f for f in files if os.path.dirname(f) in first]
    return pq.read_table(files, columns=["text"]).column("text").combine_chunks() if files else None


def real_texts(per_file: int = 20000) -> pa.Array | None:
    texts: list[str] = []
    for path in sorted(glob.glob(os.path.join(SHARED, "webtext", "*", "*"))) + [os.path.join(SHARED, "text", "python_stdlib", "modules.jsonl")]:
        if not os.path.isfile(path):
            continue
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh):
                if i >= per_file:
                    break
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts.append(record["text"])
    wiki = os.path.join(SHARED, "text", "wikitext2", "valid.txt")
    if os.path.exists(wiki):
        texts += [p for p in open(wiki, encoding="utf-8").read().split("\n\n") if p.strip()]
    texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    return pa.array(texts, pa.large_string()) if texts else None


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def measure(name: str, texts: pa.Array, repeat: int) -> dict:
    slices = [texts.slice(s, BATCH_ROWS) for s in range(0, len(texts), BATCH_ROWS)]
    identify_language(texts.slice(0, 16))  # load (or compile) the kernel and the model
    identify_language_reference(texts.slice(0, 16))
    got = [identify_language(s) for s in slices]
    want = [identify_language_reference(s) for s in slices]
    same_labels = all(g[0].equals(w[0]) for g, w in zip(got, want))
    same_scores = all(g[1].to_pylist() == w[1].to_pylist() for g, w in zip(got, want))

    def two_threads() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(identify_language, slices))

    reference = timed(lambda: [identify_language_reference(s) for s in slices], repeat)
    compiled = timed(lambda: [identify_language(s) for s in slices], repeat)
    threads = timed(two_threads, repeat)
    chars = int(np.mean(pa.compute.utf8_length(texts).to_numpy(zero_copy_only=False)))
    langs = len(set(pa.concat_arrays([w[0] for w in want]).to_pylist()))
    row = {
        "texts": name,
        "documents": len(texts),
        "mean_characters": chars,
        "languages": langs,
        "reference_s": reference,
        "compiled_s": compiled,
        "compiled_2_threads_s": threads,
        "identical": same_labels and same_scores,
    }
    print(
        f"{name}: {len(texts):,} documents, fasttext-predict {reference:.2f} s, compiled {compiled:.2f} s "
        f"({reference / compiled:.1f}x), compiled on 2 threads {threads:.2f} s; identical: {row['identical']}",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args(argv)
    rows = []
    demo = demo_texts()
    if demo is None:
        print("skipped the demo texts: no bench/pipeline.py run under bench/.data/pipeline/n20000")
    else:
        rows.append(measure("demo lake (the documents a bench/pipeline.py run kept)", demo, args.repeat))
    real = real_texts()
    if real is None:
        print(f"skipped the real texts: {SHARED} is absent")
    else:
        rows.append(measure("real text (Dolma CC, DCLM pages, Python stdlib, WikiText-2)", real, args.repeat))
    if not rows:
        return 0
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "language-id.json"), "w") as fh:
        json.dump({"machine": machine(), "repeat": args.repeat, "rows": rows}, fh, indent=1)
    lines = [
        f"Command: `.venv/bin/python bench/language_id.py --repeat {args.repeat}`  ",
        f"Machine: {machine()} (shared and noisy: medians of {args.repeat}).  ",
        "fastText's `lid.176.ftz` through fasttext-predict's C++ `predict` (one call per document, the GIL held: "
        "the tier stage ran it in worker processes) and through tierlake's compiled predict "
        "(`curation/fasttext_jit.py`, numba over the Arrow batch, the GIL released: the tier stage runs it on its "
        "threads). Both in 2,048-document slices on the same texts in one run; **identical** means every label and "
        "every probability equal (float equality).",
        "",
        "| texts | documents | mean characters | languages found | fasttext-predict, 1 thread | compiled, 1 thread | ratio | compiled, 2 threads | identical |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['texts']} | {r['documents']:,} | {r['mean_characters']:,} | {r['languages']} | {r['reference_s']:.2f} s | "
            f"{r['compiled_s']:.2f} s | {r['reference_s'] / r['compiled_s']:.1f}× | {r['compiled_2_threads_s']:.2f} s | "
            f"{'yes' if r['identical'] else '**no**'} |"
        )
    replace_section(args.markdown, "Language id: compiled fastText predict vs fasttext-predict", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
