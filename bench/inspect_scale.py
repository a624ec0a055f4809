"""The report's samples and `tierlake inspect` on a 1M-document run: report size and command latency.

A curate run of 1M documents takes hours on this 2-core machine (issue 21), so the run folder is
made from a real run's outputs: the demo run's tiered documents, signals, BETR scores, removals,
quarantine and manifest, repeated with distinct ids (``id#k``) to ``--documents`` rows and written
as the run writes them (one Parquet row group per shard of ~5,000 documents, hive ``tier=``
folders). What is timed reads only these outputs, so it sees the same files, row groups and
columns as on a run of that size. Every command is timed as a user runs it: a fresh
``tierlake inspect`` process (interpreter start and imports included), median of 3.

    python bench/inspect_scale.py work/demo/output work/inspect-1m --documents 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import polars as pl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.bench_markdown import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIERLAKE = os.path.join(os.path.dirname(sys.executable), "tierlake")
ROWS_PER_SHARD = 5_000


def _write(frame: pl.DataFrame, folder: str, prefix: str = "part") -> None:
    os.makedirs(folder, exist_ok=True)
    for i, start in enumerate(range(0, frame.height, ROWS_PER_SHARD)):
        frame.slice(start, ROWS_PER_SHARD).write_parquet(
            os.path.join(folder, f"{prefix}-{i:05d}.parquet"), compression="snappy", row_group_size=ROWS_PER_SHARD
        )


def build(run: str, out: str, documents: int) -> dict:
    """Write a run folder of ``documents`` tiered documents from the run in ``run``."""
    tiered = pl.read_parquet(os.path.join(run, "tiers", "documents", "**", "*.parquet"), hive_partitioning=True)
    copies = -(-documents // tiered.height)

    def repeat(frame: pl.DataFrame, columns: tuple[str, ...] = ("id",)) -> pl.DataFrame:
        parts = [frame.with_columns(*[pl.col(c).cast(pl.String) + f"#{k}" for c in columns]) for k in range(copies)]
        return pl.concat(parts)

    if os.path.exists(out):
        shutil.rmtree(out)
    big = repeat(tiered).head(documents)
    for (tier,), rows in big.group_by(["tier"], maintain_order=True):
        _write(rows.drop("tier"), os.path.join(out, "tiers", "documents", f"tier={tier}"))
    keep = set(big["id"])
    signals = repeat(pl.read_parquet(os.path.join(run, "tiers", "signals", "*.parquet"))).filter(pl.col("id").is_in(keep))
    _write(signals, os.path.join(out, "tiers", "signals"))
    scores = repeat(pl.read_parquet(os.path.join(run, "scores", "scores", "*.parquet"))).filter(pl.col("id").is_in(keep))
    _write(scores, os.path.join(out, "scores", "scores"))
    removed = repeat(pl.read_parquet(os.path.join(run, "removed", "*.parquet")), ("id", "duplicate_of")).filter(pl.col("id").is_in(keep))
    _write(removed, os.path.join(out, "removed"))
    shutil.copytree(os.path.join(run, "quarantine"), os.path.join(out, "quarantine"))
    with open(os.path.join(run, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    manifest["run_id"] = f"{manifest['run_id']}-x{copies}"
    manifest["tiers"] = [
        {"tier": t, "source": s, "documents": n, "tokens": int(tok)}
        for t, s, n, tok in big.group_by("tier", "source").agg(pl.len(), pl.col("token_count").sum()).sort("tier", "source").iter_rows()
    ]
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    return {
        "documents": big.height,
        "copies": copies,
        "shards": len(os.listdir(os.path.join(out, "tiers", "signals"))),
        "bytes_on_disk": sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs),
    }


def timed(argv: list[str], repeats: int = 3) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
        out = proc.stdout
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a finished run to repeat (the demo's: work/demo/output)")
    ap.add_argument("out", help="folder for the large run (rewritten)")
    ap.add_argument("--documents", type=int, default=1_000_000)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "inspect-scale.json"))
    args = ap.parse_args(argv)
    started = time.perf_counter()
    info = build(args.run, args.out, args.documents)
    info["build_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"built {info['documents']:,} documents ({info['shards']} shards per table, "
        f"{info['bytes_on_disk'] / 1e6:.0f} MB) in {info['build_seconds']} s",
        flush=True,
    )

    report_s, _ = timed([TIERLAKE, "report", args.out, "--quiet"])
    size = os.path.getsize(os.path.join(args.out, "report.html"))
    print(f"tierlake report: {report_s:.2f} s, report.html {size / 1e6:.2f} MB", flush=True)
    queries = {
        "--list-reasons": ["--list-reasons"],
        "sample (default 10)": [],
        "--tier L2": ["--tier", "L2"],
        "--reason near_duplicate": ["--reason", "near_duplicate"],
        "--reason gopher_short_doc": ["--reason", "gopher_short_doc"],
        "--source forum --tier L3": ["--source", "forum", "--tier", "L3"],
        "--sort betr_score": ["--sort", "betr_score"],
        "--reason malformed_json (quarantine)": ["--reason", "malformed_json"],
    }
    rows = []
    for label, extra in queries.items():
        seconds, out = timed([TIERLAKE, "inspect", args.out, "--json", *extra])
        rows.append({"query": label, "seconds": round(seconds, 3), "documents": len(out.splitlines())})
        print(f"inspect {label}: {seconds:.2f} s ({rows[-1]['documents']} lines)", flush=True)
    startup, _ = timed([sys.executable, "-c", "import flows.cli, tiers.samples"])
    result = {
        **info,
        "report_seconds": round(report_s, 2),
        "report_bytes": size,
        "inspect": rows,
        "import_seconds": round(startup, 2),
        "machine": f"{os.cpu_count()} cores",
    }
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    table = "\n".join(
        f"| `tierlake inspect RUN --json {' '.join(queries[r['query']])}`".rstrip() + f" | {r['seconds']:.2f} | {r['documents']} |" for r in rows
    )
    replace_section(
        args.markdown,
        "Report samples and tierlake inspect at 1M documents",
        f"""
Command: `python bench/inspect_scale.py work/demo/output work/inspect-1m --documents {args.documents}` on this
machine ({result["machine"]}). The run folder holds {info["documents"]:,} tiered documents made from the demo
run's outputs repeated {info["copies"]}× with distinct ids ({info["shards"]} Parquet shards of ≤ {ROWS_PER_SHARD:,}
documents per table, {info["bytes_on_disk"] / 1e6:.0f} MB), because a 1M-document curate run takes hours on 2
cores (issue 21); the commands read only these outputs. Each time is a fresh process as a user runs it
(interpreter start and imports, {result["import_seconds"]:.2f} s of it, included), median of 3.

`tierlake report` (plots + sampled documents): {report_s:.2f} s; `report.html` {size / 1e6:.2f} MB.

| command | seconds | lines printed |
|---|---|---|
{table}
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
