"""Per-stage throughput of ``tierlake run`` (the curate flow) on generated demo lakes, on both
engines side by side.

For each size, the demo lake generator (connectors.demo_lake, seed 7) writes a lake of about that
many base documents (plus its planted duplicates, malformed records and tables), and
``examples/demo.yaml`` runs on it as a user runs it (a fresh ``tierlake --quiet run`` process,
Prefect without a server), once per engine and repeat, interleaved: ``--engine spark`` (local
Spark) and ``--engine local`` (every stage in the one process). The engines' outputs are compared
(every dataset's rows, the manifest's totals, tiers and mix) and the verdict is printed. Per stage: documents in, seconds, documents/s and
tokens/s from the run's manifest; end to end: the stages' sum and the whole command's wall time,
whose difference is the fixed cost (interpreter and imports, Prefect's temporary server, the
JVM's start, writing the report and manifest). Medians over ``--repeat`` runs. A stage that
splits its time (``step_seconds`` in the manifest's stage details; the tier stage) gets a table of
where its time goes.

    .venv/bin/python bench/pipeline.py --docs 20000,100000 --repeat 3

Writes bench/results/pipeline.json and the "Curate: per-stage throughput" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402  (one description of the machine for every bench)

ENGINES = ("spark", "local")


def engine_recipe(workdir: str, engine: str) -> str:
    """examples/demo.yaml writing to ``output-<engine>`` under ``workdir``."""
    import yaml

    with open(os.path.join(ROOT, "examples", "demo.yaml")) as fh:
        data = yaml.safe_load(fh)
    data["output"]["path"] = f"output-{engine}"
    path = os.path.join(workdir, f"demo-{engine}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def same_outputs(a: str, b: str) -> list[str]:
    """What differs between two runs' outputs: datasets whose rows differ (sorted by their key;
    shard boundaries may differ), and the manifest's totals, tiers and mix."""
    import pyarrow.parquet as pq

    ma, mb = (json.load(open(os.path.join(root, "manifest.json"))) for root in (a, b))
    differ = [k for k in ("totals", "tiers", "selection") if ma.get(k) != mb.get(k)]
    if sorted(ma["outputs"]) != sorted(mb["outputs"]):
        return differ + ["datasets"]
    for name in ma["outputs"]:
        ta, tb = pq.read_table(os.path.join(a, name)), pq.read_table(os.path.join(b, name))
        keys = next(
            k for k in (["unit_id"], ["id", "repeat"], ["id"], ["source", "source_file", "source_line", "reason"]) if set(k) <= set(ta.column_names)
        )
        order = [(k, "ascending") for k in keys]
        if ta.column_names != tb.column_names or not ta.sort_by(order).equals(tb.sort_by(order)):
            differ.append(name)
    return differ


def run_once(workdir: str, recipe: str, engine: str) -> dict:
    shutil.rmtree(os.path.join(workdir, f"output-{engine}"), ignore_errors=True)  # no stage checkpoints from the last run
    started = time.time()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [os.path.join(ROOT, ".venv", "bin", "tierlake"), "--quiet", "run", recipe, "--base-dir", workdir, "--overwrite", "--engine", engine],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        # this run's own resource use: the command and the processes it waited for (kB on Linux)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        wall = time.time() - started
        peak_mb = usage.ru_maxrss / 1024
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"tierlake run failed ({proc.returncode}):\n{err.read().decode(errors='replace')[-3000:]}")
    with open(os.path.join(workdir, f"output-{engine}", "manifest.json")) as fh:
        manifest = json.load(fh)
    stages = {
        s["name"]: {
            "docs_in": s["docs_in"],
            "tokens_in": s["tokens_in"],
            "seconds": s["seconds"],
            "steps": s["details"].get("step_seconds") or {},
            "spark": s["details"].get("spark"),
        }
        for s in manifest["stages"]
        if s["name"] != "containment"
    }
    return {"wall": wall, "stages": stages, "documents": manifest["totals"]["docs_in"], "peak_mb": peak_mb}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="20000,100000", help="base documents per lake, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engines", default="spark,local", help="engines to run, comma-separated")
    ap.add_argument("--workdir", default=os.path.join(HERE, ".data", "pipeline"))
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--render-only", action="store_true", help="rewrite the docs section from bench/results/pipeline.json")
    ap.add_argument(
        "--prose-scale",
        type=float,
        default=1.0,
        help="multiply the sentences of the lake's prose documents (1: the demo, ~1,200 characters a document; 4: ~3,500)",
    )
    ap.add_argument(
        "--tag", default="", help="a separate results file (pipeline-TAG.json) and docs section, e.g. for a 1M-document run on one engine"
    )
    args = ap.parse_args(argv)
    results_path = os.path.join(HERE, "results", f"pipeline-{args.tag}.json" if args.tag else "pipeline.json")
    if args.render_only:
        with open(results_path) as fh:
            saved = json.load(fh)
        render(saved["results"], saved["command"], saved["machine"], args.markdown, args.tag)
        return 0
    from connectors.demo_lake import generate_demo_lake

    results = []
    engines = [e for e in args.engines.split(",") if e]
    for size in (int(s) for s in args.docs.split(",")):
        workdir = os.path.join(args.workdir, f"n{size}" + (f"-prose{args.prose_scale:g}" if args.prose_scale != 1 else ""))
        generate_demo_lake(os.path.join(workdir, "lake"), seed=7, n_docs=size, prose_scale=args.prose_scale)
        recipes = {e: engine_recipe(workdir, e) for e in engines}
        runs: dict[str, list[dict]] = {e: [] for e in engines}
        for i in range(args.repeat):
            for engine in engines:
                runs[engine].append(run_once(workdir, recipes[engine], engine))
                last = runs[engine][-1]
                print(
                    f"{size:>8} {engine:>5} run {i + 1}: wall {last['wall']:.1f} s, stages "
                    + ", ".join(f"{k} {v['seconds']:.1f}" for k, v in last["stages"].items()),
                    flush=True,
                )
        differ = same_outputs(*(os.path.join(workdir, f"output-{e}") for e in engines)) if len(engines) == 2 else None
        if differ is not None:
            print(f"{size:>8} outputs of the two engines: " + ("identical" if not differ else f"DIFFER in {differ}"), flush=True)
        chars = mean_characters(os.path.join(workdir, f"output-{engines[0]}", "documents"))
        for engine in engines:
            results.append({**summarize(size, engine, runs[engine], args.repeat, differ), "mean_characters": chars})
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    command = f"bench/pipeline.py --docs {args.docs} --repeat {args.repeat} --engines {args.engines}"
    command += (f" --prose-scale {args.prose_scale:g}" if args.prose_scale != 1 else "") + (f" --tag {args.tag}" if args.tag else "")
    with open(results_path, "w") as fh:
        json.dump({"machine": machine(), "command": command, "results": results}, fh, indent=1)
    render(results, command, machine(), args.markdown, args.tag)
    return 0


def mean_characters(documents: str) -> float:
    """Mean characters of the run's documents (its ``documents`` output: every ingested one)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    text = pq.read_table(documents, columns=["text"]).column("text")
    return float(pc.mean(pc.utf8_length(text)).as_py() or 0.0)


def summarize(size: int, engine: str, runs: list[dict], repeat: int, differ: list[str] | None) -> dict:
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
            # what Spark ran (connectors/spark_metrics.py): counts and bytes of the first run, Python seconds' median
            "spark": spark_work_summary([r["stages"][name].get("spark") for r in runs]),
        }
    total = statistics.median(sum(s["seconds"] for s in r["stages"].values()) for r in runs)
    wall = statistics.median(r["wall"] for r in runs)
    return {
        "base_docs": size,
        "engine": engine,
        "documents": runs[0]["documents"],
        "runs": repeat,
        "stages": stages,
        "stages_seconds": total,
        "stages_seconds_runs": [round(sum(s["seconds"] for s in r["stages"].values()), 3) for r in runs],
        "wall_seconds": wall,
        "fixed_seconds": wall - total,
        "peak_mb": max(r.get("peak_mb", 0.0) for r in runs),
        "end_to_end_docs_per_s": runs[0]["documents"] / total,
        "outputs_differ_from_other_engine": differ,
    }


def spark_work_summary(works: list[dict | None]) -> dict | None:
    """The first run's jobs, stages, tasks and bytes (they barely move between runs) with the
    median of the runs' Python seconds; None for the one-process engine or an older manifest."""
    works = [w for w in works if w and "jobs" in w]
    if not works:
        return None
    return {**works[0], "python_code_seconds": statistics.median(w["python_code_seconds"] for w in works)}


def render(results: list[dict], command: str, machine_text: str, markdown: str, tag: str = "") -> None:
    runs = results[0]["runs"] if results else 0
    lines = [
        f"Command: `.venv/bin/python {command}`  ",
        f"Machine: {machine_text} (shared and noisy: medians of {runs}).  ",
        "`examples/demo.yaml` (Prefect without a server) on the demo lake generator's output at each size, as a fresh "
        "`tierlake --quiet run` per engine and repeat, the engines interleaved: `--engine spark` (local Spark) and "
        "`--engine local` (every stage in the one process, on Arrow tables). Documents/s is each stage's documents in "
        "over its seconds in the manifest; the fixed cost is the command's wall time minus the stages (imports, "
        "Prefect's temporary server, the JVM's start with Spark, report and manifest). Issue 21's bars: every stage "
        "≥ 2,000 documents/s with the one-process engine, end to end ≥ 1,000. Tokens/s only where the manifest counts "
        "the stage's tokens in.",
        "",
    ]
    lengths = {r["documents"]: r["mean_characters"] for r in results if r.get("mean_characters")}
    if lengths:
        lines += [
            "Mean document length: "
            + ", ".join(f"{c:,.0f} characters at {n:,} documents" for n, c in lengths.items())
            + " (the demo generator's mix; `--prose-scale` lengthens its prose documents).",
            "",
        ]
    for r in results:
        if r.get("outputs_differ_from_other_engine") is not None and r["engine"] == "local":
            differ = r["outputs_differ_from_other_engine"]
            lines.append(
                f"- {r['documents']:,} documents: the two engines' outputs are "
                + ("**identical** (every dataset's rows, the manifest's totals, tiers and mix)." if not differ else f"**different** in {differ}.")
            )
    lines += ["", "| documents | engine | stage | documents in | seconds | documents/s | tokens/s |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for name, st in r["stages"].items():
            tokens = f"{st['tokens_per_s']:,.0f}" if st["tokens_per_s"] else "–"
            lines.append(
                f"| {r['documents']:,} | {r['engine']} | {name} | {st['docs_in']:,} | {st['seconds']:.1f} | {st['docs_per_s']:,.0f} | {tokens} |"
            )
        each = r.get("stages_seconds_runs")
        lines.append(
            f"| {r['documents']:,} | {r['engine']} | **stages, end to end**"
            + (" (runs: " + ", ".join(f"{x:.1f} s" for x in each) + ")" if each and len(each) > 1 else "")
            + f" | {r['documents']:,} | {r['stages_seconds']:.1f} | **{r['end_to_end_docs_per_s']:,.0f}** | |"
        )
        lines.append(
            f"| {r['documents']:,} | {r['engine']} | whole command (fixed cost {r['fixed_seconds']:.1f} s"
            + (f"; peak RSS {r['peak_mb']:,.0f} MB, the largest process of the run" if r.get("peak_mb") else "")
            + f") | | {r['wall_seconds']:.1f} | | |"
        )
    pairs = {}
    for r in results:
        pairs.setdefault(r["documents"], {})[r["engine"]] = r
    both = [(n, p) for n, p in pairs.items() if "spark" in p and "local" in p]
    if both:
        lines += ["", "One-process engine against Spark, same lake and run (Spark's seconds over the local engine's):", ""]
        names = list(both[0][1]["spark"]["stages"])
        lines += ["| documents | " + " | ".join(names) + " | stages | whole command |", "|---|" + "---|" * (len(names) + 2)]
        for n, p in both:
            sp, lo = p["spark"], p["local"]
            cells = [f"{sp['stages'][k]['seconds'] / lo['stages'][k]['seconds']:.1f}×" for k in names]
            lines.append(
                f"| {n:,} | "
                + " | ".join(cells)
                + f" | {sp['stages_seconds'] / lo['stages_seconds']:.1f}× | {sp['wall_seconds'] / lo['wall_seconds']:.1f}× |"
            )
    split = [(r, name, st) for r in results for name, st in r["stages"].items() if st.get("steps")]
    if split:
        lines += [
            "",
            "Where a stage's time goes (the stage's own split, `step_seconds` in the manifest; on Spark a step is the work "
            "up to the checkpoint or action that makes it run; medians):",
            "",
            "| documents | engine | stage | step | seconds | share of the stage |",
            "|---|---|---|---|---|---|",
        ]
        for r, name, st in split:
            for step, secs in st["steps"].items():
                lines.append(f"| {r['documents']:,} | {r['engine']} | {name} | {step} | {secs:.1f} | {100 * secs / st['seconds']:.0f}% |")
    work = [(r, name, st["spark"]) for r in results for name, st in r["stages"].items() if st.get("spark")]
    if work:
        mb = 1 << 20
        lines += [
            "",
            "What Spark ran per stage (`details.spark` in the manifest, connectors/spark_metrics.py; the stage's own jobs "
            "and its checkpoint's; Spark stages skipped because their shuffle output existed are not counted; bytes as "
            "Spark's SQL metrics print them, to three figures; Python seconds summed over tasks):",
            "",
            "| documents | stage | jobs | Spark stages | tasks | shuffle written, MB | text and columns sent to Python, MB "
            "| returned from Python, MB | Python code, task-seconds |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r, name, w in work:
            lines.append(
                f"| {r['documents']:,} | {name} | {w['jobs']} | {w['stages']} | {w['tasks']} | {w['shuffle_write_bytes'] / mb:,.1f} "
                f"| {w['python_sent_bytes'] / mb:,.1f} | {w['python_returned_bytes'] / mb:,.1f} | {w['python_code_seconds']:.1f} |"
            )
        for n in dict.fromkeys(r["documents"] for r, _, _ in work):
            rows = [w for r, _, w in work if r["documents"] == n]
            lines.append(
                f"| {n:,} | **all stages** | {sum(w['jobs'] for w in rows)} | {sum(w['stages'] for w in rows)} | {sum(w['tasks'] for w in rows)} "
                f"| {sum(w['shuffle_write_bytes'] for w in rows) / mb:,.1f} | {sum(w['python_sent_bytes'] for w in rows) / mb:,.1f} "
                f"| {sum(w['python_returned_bytes'] for w in rows) / mb:,.1f} | {sum(w['python_code_seconds'] for w in rows):.1f} |"
            )
    replace_section(markdown, "Curate: per-stage throughput" + (f" ({tag})" if tag else ""), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
