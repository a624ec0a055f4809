"""Arrow's memory pool under the one-process dedup: jemalloc (tierlake's choice,
connectors/arrow_memory.py) against mimalloc (pyarrow's default on Linux), same corpus, pairs run
alternately so a noisy minute hits both.

    .venv/bin/python bench/arrow_memory_pool.py [--docs 100000] [--pairs 4]

Each run is ``tierlake --quiet dedup`` of bench/dedup.py's generated corpus with its parameters,
``--engine local --threads 2``, the pool named by ``ARROW_DEFAULT_MEMORY_POOL`` (which tierlake
respects). Reports per pool the whole command's wall time, ``run_dedup``'s own seconds and the
stages' sum (stats.json), medians; the outputs of the two pools are compared row for row. Writes
bench/results/arrow-memory-pool.json and the "Arrow memory pool" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_markdown import replace_section  # noqa: E402
from dedup import BANDS, DATA_DIR, NGRAM, NUM_PERM, RESULTS, ROWS, THRESHOLD, machine, run_measured  # noqa: E402

POOLS = ("mimalloc", "jemalloc")


def run_pool(corpus: str, out: str, pool: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [os.path.join(ROOT, ".venv", "bin", "tierlake"), "--quiet", "dedup", os.path.join(corpus, "docs.parquet"), out, "--id-column", "id"]
    cmd += ["--threshold", str(THRESHOLD), "--num-perm", str(NUM_PERM), "--bands", str(BANDS), "--rows", str(ROWS), "--ngram", str(NGRAM)]
    cmd += ["--engine", "local", "--threads", "2"]
    res = run_measured(cmd, 1800.0, env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": pool}, cwd=ROOT)
    if res["status"] != "ok":
        raise SystemExit(f"{pool}: {res['status']}\n{res['log_tail']}")
    with open(os.path.join(out, "stats.json")) as fh:
        stats = json.load(fh)
    return {"wall": res["seconds"], "job": stats["seconds"], "stages": sum(s["seconds"] for s in stats["stages"]), "peak_mb": res["peak_rss_mb"]}


def same_rows(a: str, b: str) -> bool:
    import pyarrow.parquet as pq

    return all(pq.read_table(os.path.join(a, d)).sort_by("id").equals(pq.read_table(os.path.join(b, d)).sort_by("id")) for d in ("kept", "removed"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args(argv)
    from corpus import generate

    corpus = os.path.join(DATA_DIR, f"c{args.docs // 1000}k")
    generate(corpus, args.docs)
    runs: dict[str, list[dict]] = {p: [] for p in POOLS}
    for i in range(args.pairs):
        for pool in POOLS:
            runs[pool].append(run_pool(corpus, os.path.join(DATA_DIR, f"pool-{pool}"), pool))
            r = runs[pool][-1]
            print(f"pair {i + 1} {pool:>8}: wall {r['wall']:.2f} s, run_dedup {r['job']:.2f} s, stages {r['stages']:.2f} s", flush=True)
    identical = same_rows(*(os.path.join(DATA_DIR, f"pool-{p}") for p in POOLS))
    med = {p: {k: statistics.median(r[k] for r in runs[p]) for k in ("wall", "job", "stages", "peak_mb")} for p in POOLS}
    wins = sum(j["wall"] < m["wall"] for m, j in zip(runs["mimalloc"], runs["jemalloc"]))
    command = f".venv/bin/python bench/arrow_memory_pool.py --docs {args.docs} --pairs {args.pairs}"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "arrow-memory-pool.json"), "w") as fh:
        json.dump({"command": command, "machine": machine(), "runs": runs, "medians": med, "identical_outputs": identical}, fh, indent=1)
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"`tierlake --quiet dedup` of bench/dedup.py's {args.docs:,}-document corpus, `--engine local --threads 2`, with "
        "`ARROW_DEFAULT_MEMORY_POOL` naming the pool; the pools alternate, pair after pair. Medians; peak memory is the "
        "largest sum of RSS over the process tree.",
        "",
        "| pool | wall s (median) | runs s | `run_dedup` s | stages s | outside the stages s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in POOLS:
        m = med[p]
        walls = ", ".join(f"{r['wall']:.2f}" for r in runs[p])
        lines.append(f"| {p} | {m['wall']:.2f} | {walls} | {m['job']:.2f} | {m['stages']:.2f} | {m['job'] - m['stages']:.2f} | {m['peak_mb']:.0f} |")
    lines += [
        "",
        f"jemalloc faster in {wins} of {args.pairs} pairs; wall time ratio mimalloc / jemalloc "
        f"{med['mimalloc']['wall'] / med['jemalloc']['wall']:.2f}x. Outputs (kept and removed rows) "
        + ("identical." if identical else "**different**."),
    ]
    replace_section(args.markdown, "Arrow memory pool: jemalloc vs mimalloc", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
