"""The static embedder against WordLlama's own ``embed``, side by side on the same real text.

    RAYON_NUM_THREADS=1 .venv/bin/python bench/embedder_speed.py [--docs 4000]

Texts: web pages and Wikipedia articles from ../shared/data (as bench/betr_topic.py reads them),
each cut at the embedder's 32,768 characters. The peer is WordLlama's ``embed`` as tierlake called
it before (length-sorted batches under a character budget; a plain batch of 256 pads every text
to the longest and runs out of memory on these pages). One core: one BLAS thread (threadpoolctl) and one
tokenizer thread (set RAYON_NUM_THREADS=1 before the run, as the command does). Median of 3
passes each; checks that both give the same vectors. Writes the "Static embedder" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section  # noqa: E402
from betr_topic import real_text  # noqa: E402
from dedup import machine  # noqa: E402


def wordllama_batched(model, cut: list[str], batch_size: int = 256, char_budget: int = 1 << 18) -> np.ndarray:
    """tierlake's embedder before 2026-12-05: WordLlama's ``embed`` on length-sorted batches under
    a character budget (WordLlama pads a batch to its longest text)."""
    out = np.zeros((len(cut), model.embedding.shape[1]), np.float32)
    order = np.argsort(np.fromiter((len(t) for t in cut), np.int64, len(cut)), kind="stable")
    i = 0
    while i < len(cut):
        longest = len(cut[order[min(i + batch_size, len(cut)) - 1]])
        rows = max(1, min(batch_size, char_budget // max(longest, 1)))
        idx = order[i : i + rows]
        out[idx] = model.embed([cut[j] for j in idx], norm=True, batch_size=len(idx))
        i += rows
    return out


def main() -> int:
    from threadpoolctl import threadpool_limits

    from curation.embedders import get_embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=4000)
    args = ap.parse_args()
    texts = (real_text(1500, 400, random.Random(0)) * 4)[: args.docs]
    ours = get_embedder("static")
    cut = [t[: ours.max_chars] for t in texts]
    runs = {
        "WordLlama embed(norm=True), length-sorted batches (tierlake before)": lambda: wordllama_batched(ours.model, cut),
        "tierlake StaticEmbedder (token counts x matrix)": lambda: ours.embed(texts),
    }
    speed, vectors = {}, {}
    with threadpool_limits(1):
        for name, fn in runs.items():
            times = []
            for _ in range(3):
                started = time.perf_counter()
                vectors[name] = fn()
                times.append(time.perf_counter() - started)
            speed[name] = len(texts) / statistics.median(times)
            print(f"{name}: {speed[name]:,.0f} documents/s", flush=True)
    a, b = (np.nan_to_num(v) for v in vectors.values())
    diff = float(np.abs(a - b).max())
    names = list(runs)
    print(f"max |difference| {diff:.2e}; speed-up {speed[names[1]] / speed[names[0]]:.2f}x")
    rows = "\n".join(f"| {n} | {speed[n]:,.0f} |" for n in names)
    replace_section(
        os.path.join(ROOT, "docs", "benchmarks.md"),
        "Static embedder",
        f"""
Command: `RAYON_NUM_THREADS=1 .venv/bin/python bench/embedder_speed.py --docs {args.docs}` on {machine()};
one core (one BLAS thread, one tokenizer thread), median of 3. Texts: {len(texts):,} web pages and Wikipedia
articles from ../shared/data (mean {np.mean([len(t) for t in texts]):,.0f} characters).

| embedder | documents/s |
|---|---|
{rows}

Same vectors (largest absolute difference {diff:.1e}); speed-up {speed[names[1]] / speed[names[0]]:.2f}x.
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
