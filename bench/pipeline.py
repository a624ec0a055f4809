"""Per-stage throughput of ``tierlake run`` (the curate flow) on generated demo lakes.

For each size, the demo lake generator (connectors.demo_lake, seed 7) writes a lake of about that
many base documents (plus its planted duplicates, malformed records and tables), and
``examples/demo.yaml`` runs on it as a user runs it (a fresh ``tierlake --quiet run`` process:
local Spark, Prefect without a server). Per stage: documents in, seconds, documents/s and
tokens/s from the run's manifest; end to end: the stages' sum and the whole command's wall time,
whose difference is the fixed cost (interpreter and imports, Prefect's temporary server, the
JVM's start, writing the report and manifest). Medians over ``--repeat`` runs. A stage that
splits its time (``step_seconds`` in the manifest's stage details; the tier stage) gets a table of
where its time goes.

    .venv/bin/python bench/pipeline.py --docs 20000,100000 --repeat 3

Writes bench/results/pipeline.json and the "Curate: per-stage throughput" section of
docs/benchmarks.md. The one-process engine covers dedup only (``tierlake dedup --engine local``;
bench/dedup.py), so this measures the Spark engine.
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402  (one description of the machine for every bench)


def run_once(workdir: str, recipe: str) -> dict:
    shutil.rmtree(os.path.join(workdir, "output"), ignore_errors=True)  # no stage checkpoints from the last run
    started = time.time()
    proc = subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "tierlake"), "--quiet", "run", recipe, "--base-dir", workdir, "--overwrite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.time() - started
    if proc.returncode:
        raise SystemExit(f"tierlake run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(os.path.join(workdir, "output", "manifest.json")) as fh:
        manifest = json.load(fh)
    stages = {
        s["name"]: {"docs_in": s["docs_in"], "tokens_in": s["tokens_in"], "seconds": s["seconds"], "steps": s["details"].get("step_seconds") or {}}
        for s in manifest["stages"]
        if s["name"] != "containment"
    }
    return {"wall": wall, "stages": stages, "documents": manifest["totals"]["docs_in"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="20000,100000", help="base documents per lake, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(HERE, ".data", "pipeline"))
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--render-only", action="store_true", help="rewrite the docs section from bench/results/pipeline.json")
    args = ap.parse_args(argv)
    if args.render_only:
        with open(os.path.join(HERE, "results", "pipeline.json")) as fh:
            saved = json.load(fh)
        render(saved["results"], saved["command"], saved["machine"], args.markdown)
        return 0
    from connectors.demo_lake import generate_demo_lake

    results = []
    recipe = os.path.join(ROOT, "examples", "demo.yaml")
    for size in (int(s) for s in args.docs.split(",")):
        workdir = os.path.join(args.workdir, f"n{size}")
        generate_demo_lake(os.path.join(workdir, "lake"), seed=7, n_docs=size)
        runs = []
        for i in range(args.repeat):
            runs.append(run_once(workdir, recipe))
            print(
                f"{size:>8} run {i + 1}: wall {runs[-1]['wall']:.1f} s, stages "
                + ", ".join(f"{k} {v['seconds']:.1f}" for k, v in runs[-1]["stages"].items()),
                flush=True,
            )
        stages = {}
        for name in runs[0]["stages"]:
            secs = statistics.median(r["stages"][name]["seconds"] for r in runs)
            first = runs[0]["stages"][name]
            stages[name] = {
                "docs_in": first["docs_in"],
                "tokens_in": first["tokens_in"],
                "seconds": secs,
                "docs_per_s": first["docs_in"] / secs if secs else None,
                "tokens_per_s": first["tokens_in"] / secs if secs and first["tokens_in"] else None,
                "steps": {step: statistics.median(r["stages"][name]["steps"].get(step, 0.0) for r in runs) for step in first["steps"]},
            }
        total = statistics.median(sum(s["seconds"] for s in r["stages"].values()) for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        results.append(
            {
                "base_docs": size,
                "documents": runs[0]["documents"],
                "runs": args.repeat,
                "stages": stages,
                "stages_seconds": total,
                "wall_seconds": wall,
                "fixed_seconds": wall - total,
                "end_to_end_docs_per_s": runs[0]["documents"] / total,
            }
        )
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    command = f"bench/pipeline.py --docs {args.docs} --repeat {args.repeat}"
    with open(os.path.join(HERE, "results", "pipeline.json"), "w") as fh:
        json.dump({"machine": machine(), "command": command, "results": results}, fh, indent=1)
    render(results, command, machine(), args.markdown)
    return 0


def render(results: list[dict], command: str, machine_text: str, markdown: str) -> None:
    runs = results[0]["runs"] if results else 0
    lines = [
        f"Command: `.venv/bin/python {command}`  ",
        f"Machine: {machine_text} (shared and noisy: medians of {runs}).  ",
        "`examples/demo.yaml` (local Spark, "
        "Prefect without a server) on the demo lake generator's output at each size, as a fresh `tierlake --quiet run`. "
        "Documents/s is each stage's documents in over its seconds in the manifest; the fixed cost is the command's "
        "wall time minus the stages (imports, Prefect's temporary server, JVM start, report and manifest). The "
        "one-process engine covers dedup only (bench/dedup.py), so these are the Spark engine's figures; issue 21's "
        "bar is 2,000 documents/s per stage. Tokens/s only where the manifest counts the stage's tokens in.",
        "",
    ]
    lines += ["| documents | stage | documents in | seconds | documents/s | tokens/s |", "|---|---|---|---|---|---|"]
    for r in results:
        for name, s in r["stages"].items():
            tokens = f"{s['tokens_per_s']:,.0f}" if s["tokens_per_s"] else "–"
            lines.append(f"| {r['documents']:,} | {name} | {s['docs_in']:,} | {s['seconds']:.1f} | {s['docs_per_s']:,.0f} | {tokens} |")
        lines.append(
            f"| {r['documents']:,} | **stages, end to end** | {r['documents']:,} | {r['stages_seconds']:.1f} | "
            f"**{r['end_to_end_docs_per_s']:,.0f}** | |"
        )
        lines.append(f"| {r['documents']:,} | whole command (fixed cost {r['fixed_seconds']:.1f} s) | | {r['wall_seconds']:.1f} | | |")
    split = [(r, name, s) for r in results for name, s in r["stages"].items() if s.get("steps")]
    if split:
        lines += [
            "",
            "Where a stage's time goes (the stage's own split, `step_seconds` in the manifest: Spark is lazy, so a step is "
            "the work up to the checkpoint or action that makes it run; medians):",
            "",
            "| documents | stage | step | seconds | share of the stage |",
            "|---|---|---|---|---|",
        ]
        for r, name, s in split:
            for step, secs in s["steps"].items():
                lines.append(f"| {r['documents']:,} | {name} | {step} | {secs:.1f} | {100 * secs / s['seconds']:.0f}% |")
    replace_section(markdown, "Curate: per-stage throughput", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
