"""Where the tier stage's signals pass spends its time, kernel by kernel, in one thread.

    .venv/bin/python bench/pipeline.py --docs 20000 --repeat 1      # makes the demo run it reads
    .venv/bin/python bench/signal_kernels_profile.py [bench/.data/pipeline/n20000]

Runs the per-batch kernels of ``curation.document_signals.compute_signals`` (2,048-document Arrow
slices, as the Spark tasks do) on the documents of a ``bench/pipeline.py`` demo run, outside Spark,
one BLAS and tokenizer thread: heuristic signals, language id, the run's quality model and the
lexical target similarity; then language id on two threads, compiled and through fasttext-predict. Prints
seconds and documents/s per kernel (median of 3 passes), to
compare with the stage's ``signals and filters`` step in docs/benchmarks.md ("Curate: per-stage
throughput"), where Spark's cost is the difference.
"""

from __future__ import annotations

import glob
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from curation.document_signals import BATCH_ROWS  # noqa: E402
from curation.language_id import identify_language  # noqa: E402
from curation.quality_model import QualityModel  # noqa: E402
from curation.quality_signals import quality_signals  # noqa: E402
from curation.target_similarity import TargetSimilarity  # noqa: E402
from tiers.stage import load_target_texts  # noqa: E402


def main() -> int:
    run = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", ".data", "pipeline", "n20000")
    outputs = sorted(glob.glob(os.path.join(run, "output*", "manifest.json")))  # output-spark, output-local (or output)
    output = os.path.dirname(outputs[0]) if outputs else os.path.join(run, "output")
    files = sorted(glob.glob(os.path.join(output, "documents", "*.parquet")))
    if not files:
        print(f"skipped: no demo run under {run} (run bench/pipeline.py --docs 20000 --repeat 1 first)")
        return 0
    texts = pa.concat_tables([pq.read_table(f, columns=["text"]) for f in files]).column("text").combine_chunks()
    model = QualityModel.load(os.path.join(output, "models", "quality"))
    similarity = TargetSimilarity(load_target_texts([os.path.join(run, "lake", "targets", f) for f in ("math_train.jsonl", "qa_dev.jsonl")]))
    kernels = {
        "heuristic signals (quality_signals)": quality_signals,
        "language id": identify_language,
        "quality model": model.score,
        "target similarity": similarity.score,
    }
    chars = int(np.mean([len(t) for t in texts.to_pylist()]))
    print(f"{len(texts):,} documents (mean {chars:,} characters), {BATCH_ROWS}-document slices, one thread")
    total = 0.0
    with threadpool_limits(1):
        for name, kernel in kernels.items():
            kernel(texts.slice(0, 64))  # compile / warm up
            times = []
            for _ in range(3):
                started = time.perf_counter()
                for start in range(0, len(texts), BATCH_ROWS):
                    kernel(texts.slice(start, BATCH_ROWS))
                times.append(time.perf_counter() - started)
            seconds = float(np.median(times))
            total += seconds
            print(f"{name}: {seconds:.2f} s, {len(texts) / seconds:,.0f} documents/s", flush=True)
    print(f"all kernels: {total:.2f} s, {len(texts) / total:,.0f} documents/s on one thread")
    language_id_across_cores(texts)
    return 0


def language_id_across_cores(texts: pa.Array) -> None:
    """Language id of the same slices on two threads: the compiled predict the tier stage runs
    (the GIL released) and fasttext-predict's (the GIL held). Medians of 3."""
    from concurrent.futures import ThreadPoolExecutor

    from curation.language_id import identify_language_reference

    slices = [texts.slice(start, BATCH_ROWS) for start in range(0, len(texts), BATCH_ROWS)]
    for name, kernel in (("compiled", identify_language), ("fasttext-predict", identify_language_reference)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(kernel, slices))
            times.append(time.perf_counter() - started)
        seconds = float(np.median(times))
        print(f"language id ({name}), two threads: {seconds:.2f} s, {len(texts) / seconds:,.0f} documents/s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
