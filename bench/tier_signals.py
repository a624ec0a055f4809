"""Tier signals and tiers, measured: filter removal rates on real web text beside datatrove's own
filters on the same documents (and the published rates), signal throughput per core for
tierlake and datatrove, the quality classifier's held-out AUC on DCLM's human labels, and the
precision of L4 verification on the demo lake's ground truth.

    .venv/bin/python bench/tier_signals.py [--demo work/demo] [--repeats 3]

Needs ../shared/data/webtext (skips what is absent) and, for the datatrove columns, the peer
venv bench/.peers/datatrove (built by bench/dedup.py; built here if missing). Writes
bench/results/tiers.json and the "Tier signals" section of docs/benchmarks.md; prints what
docs/tiers.md quotes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import polars as pl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section  # noqa: E402
from dedup import ensure_peer, machine  # noqa: E402

from curation.heuristic_filters import HeuristicFilters, first_failure  # noqa: E402
from curation.language_id import identify_language  # noqa: E402
from curation.params import QualityModelParams  # noqa: E402
from curation.quality_model import cross_validated_auc  # noqa: E402
from curation.quality_signals import quality_signals  # noqa: E402

WEBTEXT = os.path.join(ROOT, "..", "shared", "data", "webtext")
FAMILIES = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
# FineWeb §3.6 / reference §4: tokens removed by each FineWeb rule on their crawl
PUBLISHED = {
    "fineweb": "~22% of tokens for the three rules together (line punct 10.14%, dup-line chars 12.47%, short lines 3.73%)",
    "c4": "~7% of tokens for C4's rules other than terminal punctuation (FineWeb §3.5)",
    "gopher_quality": "not published as a rate",
    "gopher_repetition": "not published as a rate",
}


def load_dolma() -> list[str]:
    folder = os.path.join(WEBTEXT, "dolma_cc_sample")
    texts = []
    for name in sorted(os.listdir(folder)):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(os.path.join(folder, name), "rt", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    # tierlake's ingest quarantines empty text (reason missing_text) before any filter sees it
    return [t for t in texts if t and t.strip()]


def tierlake_decisions(texts: list[str], repeats: int) -> tuple[dict, dict]:
    quality_signals(texts[:50])  # warm-up: numba loads (or compiles) its kernels on the first call
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sig = quality_signals(texts)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    lang, score = identify_language(texts)
    lid_s = time.perf_counter() - t
    df = pl.from_arrow(sig).with_columns(lang=pl.Series(lang.to_pylist()), lang_score=pl.Series(score.to_numpy()))
    filters = HeuristicFilters()
    out = {}
    for fam in (*FAMILIES, "language"):
        rules = [(n, e) for n, e in filters.rules() if filters.family(n) == fam]
        out[fam] = df.select(first_failure(rules).alias("r"))["r"].to_list()
    return out, {"signals_s": statistics.median(times), "signals_runs": times, "lid_s": lid_s}


def datatrove_decisions(texts: list[str]) -> dict | None:
    try:
        py = ensure_peer("datatrove")
    except Exception as exc:  # noqa: BLE001
        print(f"datatrove peer unavailable: {exc}")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}) + "\n")
    res = subprocess.run([py, os.path.join(ROOT, "bench", "peers", "datatrove_filters.py"), fh.name], capture_output=True, text=True)
    os.unlink(fh.name)
    if res.returncode:
        print("datatrove failed:", res.stderr[-2000:])
        return None
    return json.loads(res.stdout)


def removal(decisions: list, chars: np.ndarray) -> dict:
    removed = np.array([d is not None for d in decisions])
    return {"docs_pct": round(100 * removed.mean(), 2), "chars_pct": round(100 * chars[removed].sum() / chars.sum(), 2)}


def quality_auc() -> dict:
    out = {}
    for name in ("majority_data", "agreement_data"):
        path = os.path.join(WEBTEXT, "dclm_human_quality", f"{name}.jsonl")
        if not os.path.exists(path):
            continue
        rows = [json.loads(line) for line in open(path)]
        texts = [r["text"] for r in rows]
        y = np.array([int(r["label"]) for r in rows])
        out[name] = {"n": len(rows), **cross_validated_auc(texts, y, QualityModelParams())}
    return out


def l4_precision(demo: str) -> dict | None:
    docs_glob = os.path.join(demo, "output", "tiers", "documents", "**", "*.parquet")
    truth_path = os.path.join(demo, "lake", "ground_truth", "documents.parquet")
    if not os.path.exists(truth_path) or not os.path.exists(os.path.join(demo, "output", "tiers")):
        return None
    docs = pl.read_parquet(docs_glob, hive_partitioning=True).filter(pl.col("source") == "mathcourse")
    truth = pl.read_parquet(truth_path).filter(pl.col("kind") == "worked_solution")
    j = docs.join(truth, left_on="id", right_on="key")
    examined = j.filter(pl.col("tier").is_in(["L3", "L4"]))
    l4 = j.filter(pl.col("tier") == "L4")
    correct_examined = examined.filter(pl.col("arith_correct")).height
    return {
        "worked_solutions": j.height,
        "reached_l3": examined.height,
        "l4": l4.height,
        "l4_correct": l4.filter(pl.col("arith_correct")).height,
        "precision": round(l4.filter(pl.col("arith_correct")).height / max(l4.height, 1), 4),
        "recall_of_correct_examined": round(l4.filter(pl.col("arith_correct")).height / max(correct_examined, 1), 4),
        "wrong_examined": examined.filter(~pl.col("arith_correct")).height,
        "wrong_rejected": examined.filter(~pl.col("arith_correct") & (pl.col("tier") == "L3")).height,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default=os.path.join(ROOT, "work", "demo"), help="a finished `make demo` workdir")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    texts = load_dolma() if os.path.exists(os.path.join(WEBTEXT, "dolma_cc_sample")) else []
    if texts:
        chars = np.array([len(t) for t in texts], dtype=np.float64)
        mine, timing = tierlake_decisions(texts, args.repeats)
        theirs = datatrove_decisions(texts)
        rates = {}
        for fam in (*FAMILIES, "language"):
            row = {"tierlake": removal(mine[fam], chars)}
            if theirs and fam in theirs["decisions"]:
                d = theirs["decisions"][fam]
                row["datatrove"] = removal(d, chars)
                a = np.array([x is not None for x in mine[fam]])
                b = np.array([x is not None for x in d])
                row["agreement_pct"] = round(100 * (a == b).mean(), 2)
                row["only_tierlake"], row["only_datatrove"] = int((a & ~b).sum()), int((~a & b).sum())
            rates[fam] = row
        # in pipeline order, each family judged only on what the earlier ones kept (FineWeb's
        # published rates are of this kind: measured after LID, Gopher and C4)
        alive = np.ones(len(texts), bool)
        for fam in ("language", *FAMILIES):
            hit = np.array([x is not None for x in mine[fam]]) & alive
            rates[fam]["sequential_tierlake"] = {
                "docs_pct_of_remaining": round(100 * hit.sum() / max(alive.sum(), 1), 2),
                "chars_pct_of_remaining": round(100 * chars[hit].sum() / max(chars[alive].sum(), 1), 2),
            }
            alive &= ~hit
        all_removed = [next((mine[f][i] for f in ("language", *FAMILIES) if mine[f][i]), None) for i in range(len(texts))]
        rates["all (language + 4 families)"] = {"tierlake": removal(all_removed, chars)}
        mb = chars.sum() / 1e6
        results["dolma_cc_sample"] = {
            "documents": len(texts),
            "mchars": round(mb, 2),
            "rates": rates,
            "throughput": {
                "tierlake_signals_docs_per_s": round(len(texts) / timing["signals_s"], 1),
                "tierlake_signals_mchars_per_s": round(mb / timing["signals_s"], 2),
                "tierlake_signals_runs_s": [round(x, 3) for x in timing["signals_runs"]],
                "tierlake_lid_docs_per_s": round(len(texts) / timing["lid_s"], 1),
                **(
                    {
                        "datatrove_seconds_by_filter": {k: round(v, 3) for k, v in theirs["seconds"].items()},
                        "datatrove_4_filters_docs_per_s": round(len(texts) / sum(theirs["seconds"].values()), 1),
                    }
                    if theirs
                    else {}
                ),
            },
        }
    results["quality_auc"] = quality_auc()
    results["l4"] = l4_precision(args.demo)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "tiers.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print(json.dumps(results, indent=2))
    write_markdown(results, args)


def write_markdown(r: dict, args) -> None:
    lines = [
        f"Command: `.venv/bin/python bench/tier_signals.py --repeats {args.repeats}`  ",
        f"Machine: {r['machine']}  ",
        f"Date: {r['date']}. One process, one core for tierlake's signal kernel (polars may use a second thread for "
        "some expressions); datatrove 0.10.1's filters in its own venv, one process. Same documents for both.",
        "",
    ]
    d = r.get("dolma_cc_sample")
    if d:
        t = d["throughput"]
        lines += [
            f"Data: `../shared/data/webtext/dolma_cc_sample/` ({d['documents']} non-empty raw Common Crawl documents, {d['mchars']} M characters).",
            "",
            "| work | tierlake | datatrove |",
            "|---|---|---|",
            f"| Gopher quality + repetition + C4 + FineWeb signals, docs/s | {t['tierlake_signals_docs_per_s']:,} "
            f"(median of {len(t['tierlake_signals_runs_s'])}; {t['tierlake_signals_mchars_per_s']} M chars/s) | "
            f"{t.get('datatrove_4_filters_docs_per_s', '-')} |",
            f"| fastText language id, docs/s | {t['tierlake_lid_docs_per_s']:,} | - |",
            "",
        ]
        if "datatrove_4_filters_docs_per_s" in t:
            lines.append(
                f"Ratio: tierlake computes all four families' signals "
                f"{t['tierlake_signals_docs_per_s'] / t['datatrove_4_filters_docs_per_s']:.1f}x faster than datatrove runs the four filters."
            )
        lines += [
            "",
            "Removal rates (each family alone on every document; agreement = same keep/remove decision as datatrove):",
            "",
            "| filter family | tierlake docs % | tierlake chars % | datatrove docs % | datatrove chars % | agreement % | in pipeline order: chars % of what is left |",
            "|---|---|---|---|---|---|---|",
        ]
        for fam, row in d["rates"].items():
            dt = row.get("datatrove", {})
            seq = row.get("sequential_tierlake", {})
            lines.append(
                f"| {fam} | {row['tierlake']['docs_pct']} | {row['tierlake']['chars_pct']} | {dt.get('docs_pct', '-')} | "
                f"{dt.get('chars_pct', '-')} | {row.get('agreement_pct', '-')} | {seq.get('chars_pct_of_remaining', '-')} |"
            )
    q = r.get("quality_auc") or {}
    if q:
        lines += [
            "",
            "Quality classifier, 5-fold cross-validated ROC-AUC on DCLM's human labels: "
            + "; ".join(f"{k} (n={v['n']}) {v['auc_mean']:.3f} +- {v['auc_std']:.3f}" for k, v in q.items())
            + ".",
        ]
    if r.get("l4"):
        l4 = r["l4"]
        lines += [
            "",
            f"L4 verification on the demo lake: {l4['l4']} worked solutions verified, precision {l4['precision']} "
            f"({l4['l4_correct']} correct); {l4['wrong_rejected']} of {l4['wrong_examined']} planted wrong solutions rejected.",
        ]
    open_lines = lines
    replace_section(args.markdown, "Tier signals: tierlake vs datatrove filters", "\n".join(open_lines))


if __name__ == "__main__":
    main()
