"""Dedup benchmark: tierlake against rensa 0.5, datasketch, text-dedup 0.4.x and datatrove, same data, same
parameters, one invocation.

    .venv/bin/python bench/dedup.py [--sizes 20000,100000,400000] [--repeat 3]
        [--peers tierlake,tierlake-local,rensa,datasketch,textdedup,datatrove]

tierlake runs twice: ``tierlake`` is ``tierlake dedup`` on Spark (local[2]), ``tierlake-local``
is ``tierlake dedup --engine local`` (one process, no JVM; same kept and removed ids). With
``--repeat N`` every peer runs N times per size, in rotation, and the median wall time is
reported (these machines are shared and noisy).

Each peer runs in its own virtual environment under bench/.peers/ (built here when missing) as a
separate process; wall time is the whole command (start-up included), peak memory is the
largest sum of RSS over the peer's process tree (sampled from /proc every 0.2 s). Corpus:
bench/corpus.py (~300-word documents, 20% planted near-duplicates with exact Jaccard in [0.5, 1]).
Parameters for all: 112 permutations as 14 bands x 8 rows, word 5-grams, threshold 0.8.

Accuracy against exact Jaccard: a duplicate group is an original and its copies with J >= 0.8;
removing up to (group size - 1) members of a group is correct, whichever member is kept; every
other removal is a false positive. Writes bench/results/dedup-<size>.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
from bench_markdown import replace_section  # bench/ is on sys.path when run as a script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS_DIR = os.path.join(HERE, ".peers")
DATA_DIR = os.path.join(HERE, ".data")
RESULTS = os.path.join(HERE, "results")
NUM_PERM, BANDS, ROWS, NGRAM, THRESHOLD = 112, 14, 8, 5, 0.8

PEER_INSTALL = {
    "datasketch": ["datasketch==2.0.0", "xxhash", "numpy"],
    "textdedup": ["text-dedup==0.4.0"],
    "datatrove": ["datatrove[processing]==0.10.1", "orjson", "spacy"],
    "rensa": ["rensa==0.5.0"],
}


def ensure_peer(name: str) -> str:
    venv = os.path.join(PEERS_DIR, name)
    py = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".ready")
    if not os.path.exists(marker):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *PEER_INSTALL[name]], check=True)
        open(marker, "w").close()
    return py


def _tree_rss(pid: int) -> int:
    """Sum of RSS (bytes) of pid and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_measured(cmd: list[str], timeout: float, env: dict | None = None, cwd: str | None = None) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            stop.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        subprocess.run(["pkill", "-TERM", "-P", str(proc.pid)], check=False)
        proc.kill()
        out, _ = proc.communicate()
        status = f"timeout after {timeout:.0f} s"
    stop.set()
    t.join()
    errors = [ln for ln in (out or "").splitlines() if ("Error" in ln or "Exception" in ln) and not ln.startswith("\tat ")][:20]
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak[0] / 2**20,
        "status": status,
        "log_errors": errors,
        "log_tail": (out or "")[-1500:],
    }


# ------------------------------------------------------------------ peers


def peer_tierlake(corpus: str, work: str, timeout: float, engine: str = "spark") -> tuple[dict, set[str]]:
    out = os.path.join(work, f"tierlake-{engine}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        os.path.join(ROOT, ".venv", "bin", "tierlake"),
        "--quiet",
        "dedup",
        os.path.join(corpus, "docs.parquet"),
        out,
        "--id-column",
        "id",
        "--threshold",
        str(THRESHOLD),
        "--num-perm",
        str(NUM_PERM),
        "--bands",
        str(BANDS),
        "--rows",
        str(ROWS),
        "--ngram",
        str(NGRAM),
        "--engine",
        engine,
    ]
    cmd += ["--master", "local[2]"] if engine == "spark" else ["--threads", "2"]
    res = run_measured(cmd, timeout, cwd=ROOT)
    removed = set()
    if res["status"] == "ok":
        removed = set(pq.read_table(os.path.join(out, "removed"), columns=["id"]).column(0).to_pylist())
        res["stages"] = {s["name"]: s["seconds"] for s in json.load(open(os.path.join(out, "stats.json")))["stages"]}
    return res, removed


def peer_datasketch(corpus: str, work: str, timeout: float) -> tuple[dict, set[str]]:
    py = ensure_peer("datasketch")
    out = os.path.join(work, "datasketch_removed.txt")
    res = run_measured(
        [
            py,
            os.path.join(HERE, "peers", "datasketch_dedup.py"),
            os.path.join(corpus, "docs.jsonl"),
            out,
            str(NUM_PERM),
            str(BANDS),
            str(ROWS),
            str(NGRAM),
        ],
        timeout,
    )
    removed = set(open(out).read().split()) if res["status"] == "ok" else set()
    return res, removed


def peer_rensa(corpus: str, work: str, timeout: float) -> tuple[dict, set[str]]:
    py = ensure_peer("rensa")
    out = os.path.join(work, "rensa_removed.txt")
    res = run_measured(
        [
            py,
            os.path.join(HERE, "peers", "rensa_dedup.py"),
            os.path.join(corpus, "docs.jsonl"),
            out,
            str(NUM_PERM),
            str(BANDS),
            str(ROWS),
            str(NGRAM),
            str(THRESHOLD),
        ],
        timeout,
    )
    removed = set(open(out).read().split()) if res["status"] == "ok" else set()
    return res, removed


def peer_textdedup(corpus: str, work: str, timeout: float) -> tuple[dict, set[str]]:
    py = ensure_peer("textdedup")
    hf = os.path.join(corpus, "hf_dataset")
    if not os.path.exists(hf):  # input conversion is not timed
        subprocess.run([py, os.path.join(HERE, "peers", "textdedup_prepare.py"), os.path.join(corpus, "docs.parquet"), hf], check=True)
    out = os.path.join(work, "textdedup_out")
    shutil.rmtree(out, ignore_errors=True)
    # text-dedup's own CLI, as its README runs it; 2 processes for the 2 cores; xxh3 (its faster hash)
    res = run_measured(
        [
            py,
            "-m",
            "text_dedup.minhash",
            "--path",
            hf,
            "--local",
            "--output",
            out,
            "--column",
            "text",
            "--num_perm",
            str(NUM_PERM),
            "--b",
            str(BANDS),
            "--r",
            str(ROWS),
            "--ngram",
            str(NGRAM),
            "--threshold",
            str(THRESHOLD),
            "--hash_func",
            "xxh3",
            "--num_proc",
            "2",
            "--cache_dir",
            os.path.join(work, "textdedup_cache"),
        ],
        timeout,
        cwd=work,
    )
    removed = set()
    if res["status"] == "ok":
        removed_file = os.path.join(work, "textdedup_removed.txt")
        subprocess.run([py, os.path.join(HERE, "peers", "textdedup_removed.py"), hf, out, removed_file], check=True)
        removed = set(open(removed_file).read().split())
    return res, removed


def peer_datatrove(corpus: str, work: str, timeout: float) -> tuple[dict, set[str]]:
    py = ensure_peer("datatrove")
    parts = os.path.join(corpus, "jsonl_parts")
    if not os.path.exists(parts):  # 4 input files so datatrove's 2 workers both have work (untimed)
        os.makedirs(parts + ".tmp", exist_ok=True)
        with open(os.path.join(corpus, "docs.jsonl")) as fh:
            lines = fh.readlines()
        for k in range(4):
            with open(os.path.join(parts + ".tmp", f"part-{k}.jsonl"), "w") as out_fh:
                out_fh.writelines(lines[k::4])
        os.rename(parts + ".tmp", parts)
    out = os.path.join(work, "datatrove_out")
    shutil.rmtree(out, ignore_errors=True)
    res = run_measured([py, os.path.join(HERE, "peers", "datatrove_dedup.py"), parts, out, str(BANDS), str(ROWS), str(NGRAM)], timeout)
    removed = set()
    if res["status"] == "ok":
        removed = set(open(os.path.join(out, "removed.txt")).read().split())
    return res, removed


def peer_tierlake_local(corpus: str, work: str, timeout: float) -> tuple[dict, set[str]]:
    return peer_tierlake(corpus, work, timeout, engine="local")


PEERS = {
    "tierlake": peer_tierlake,
    "tierlake-local": peer_tierlake_local,
    "rensa": peer_rensa,
    "datasketch": peer_datasketch,
    "textdedup": peer_textdedup,
    "datatrove": peer_datatrove,
}


# ------------------------------------------------------------------ accuracy


def score(corpus: str, removed: set[str]) -> dict:
    pairs = pq.read_table(os.path.join(corpus, "pairs.parquet")).to_pylist()
    groups: dict[str, set[str]] = {}
    for p in pairs:
        if p["jaccard"] >= THRESHOLD:
            groups.setdefault(p["orig"], {p["orig"]}).add(p["copy"])
    member_of = {m: g for g, ms in groups.items() for m in ms}
    correct = 0
    per_group: dict[str, int] = {}
    for r in removed:
        g = member_of.get(r)
        if g is not None and per_group.get(g, 0) < len(groups[g]) - 1:
            per_group[g] = per_group.get(g, 0) + 1
            correct += 1
    expected = sum(len(ms) - 1 for ms in groups.values())
    precision = correct / len(removed) if removed else 1.0
    recall = correct / expected if expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"removed": len(removed), "expected_removals": expected, "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000,400000")
    ap.add_argument("--peers", default="tierlake,tierlake-local,rensa,datasketch,textdedup,datatrove")
    ap.add_argument("--repeat", type=int, default=1, help="runs per peer and size; the median wall time is reported")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per peer and size, seconds")
    ap.add_argument("--skip", default="", help="PEER@SIZE pairs not to run, comma-separated (recorded as skipped)")
    ap.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from corpus import generate

    os.makedirs(RESULTS, exist_ok=True)
    all_results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        corpus = os.path.join(DATA_DIR, f"c{size // 1000}k")
        summary = generate(corpus, size)
        work = os.path.join(DATA_DIR, f"work{size // 1000}k")
        os.makedirs(work, exist_ok=True)
        rows: dict[str, dict] = {}
        runs: dict[str, list[dict]] = {}
        skip = {tuple(x.split("@")) for x in args.skip.split(",") if x}
        peers = args.peers.split(",")
        for peer in peers:
            if (peer, str(size)) in skip:
                rows[peer] = {"status": "skipped (--skip)", "seconds": 0.0, "peak_rss_mb": 0.0}
        for attempt in range(args.repeat):  # in rotation, so a noisy minute does not hit one peer's runs only
            for peer in peers:
                if peer in rows and rows[peer]["status"].startswith("skipped"):
                    continue
                print(f"[{size}] {peer} run {attempt + 1}/{args.repeat} ...", flush=True)
                res, removed = PEERS[peer](corpus, work, args.timeout)
                if res["status"] == "ok" and attempt == 0:
                    res.update(score(corpus, removed))
                runs.setdefault(peer, []).append(res)
                print(
                    f"[{size}] {peer}: {res['status']} {res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB, "
                    f"P={res.get('precision')} R={res.get('recall')} F1={res.get('f1')}",
                    flush=True,
                )
                if res["status"] != "ok":
                    rows[peer] = res  # a failed or timed-out peer is not run again
                    break
        for peer, results in runs.items():
            if peer in rows:
                continue
            times = sorted(r["seconds"] for r in results)
            res = dict(results[0])
            res["runs_seconds"] = [round(r["seconds"], 2) for r in results]
            res["seconds"] = statistics.median(times)
            res["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
            res["docs_per_s"] = summary["documents"] / res["seconds"]
            rows[peer] = res
        rows = {p: rows[p] for p in peers if p in rows}
        all_results[size] = {"corpus": summary, "peers": rows}
        with open(os.path.join(RESULTS, f"dedup-{size}{results_suffix(peers)}.json"), "w") as fh:
            json.dump(all_results[size], fh, indent=2)
    write_markdown(all_results, args)


TIERLAKE = {"tierlake": "tierlake (Spark engine)", "tierlake-local": "tierlake (local engine)"}
PEER_NAMES = {"textdedup": "text-dedup"}


def other_peers(peers: list[str]) -> list[str]:
    return [PEER_NAMES.get(p, p) for p in peers if p not in TIERLAKE]


def results_suffix(peers: list[str]) -> str:
    """A run of a subset of the peers keeps its own results file (and docs section), so it does
    not overwrite the figures of a run of other peers."""
    return "" if set(peers) == set(PEERS) else "-" + "-".join(p for p in peers if p not in TIERLAKE)


def write_markdown(results: dict, args) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"## Dedup: tierlake vs {', '.join(other_peers(args.peers.split(',')))}",
        "",
        f"Command: `.venv/bin/python bench/dedup.py --sizes {args.sizes} --peers {args.peers} --repeat {args.repeat}"
        + (f" --skip {args.skip}" if args.skip else "")
        + "`  ",
        f"Machine: {machine()}  ",
        f"Date: {time.strftime('%Y-%m-%d')}. Parameters for every peer: {NUM_PERM} permutations as {BANDS} bands x {ROWS} rows, "
        f"word {NGRAM}-grams, threshold {THRESHOLD}. tierlake: `tierlake dedup` with exact-Jaccard verification on, "
        "`--engine spark` (local[2] Spark) and `--engine local` (one process, 2 threads, no JVM). "
        f"Wall time of the whole command, start-up included (JVM and Spark for the Spark engine); the median of {args.repeat} "
        "run(s) per peer and size, run in rotation (every run in the JSON under bench/results/). "
        "Peak memory: the largest sum of RSS over the process tree.",
        "",
        "| documents | peer | status | wall s (median) | runs s | docs/s | peak MB | precision | recall | F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        for peer, res in r["peers"].items():
            name = TIERLAKE.get(peer, peer)
            if res["status"].startswith("skipped"):
                lines.append(f"| {size:,} | {name} | skipped | - | - | - | - | - | - | - |")
                continue
            lines.append(
                f"| {size:,} | {name} | {res['status']} | {res['seconds']:.1f} | "
                f"{', '.join(f'{x:.1f}' for x in res.get('runs_seconds', [res['seconds']]))} | {res.get('docs_per_s', 0):,.0f} | "
                f"{res['peak_rss_mb']:.0f} | {res.get('precision', '-')} | {res.get('recall', '-')} | {res.get('f1', '-')} |"
            )
    lines += ["", "Ratios (median wall time of the fastest peer / tierlake's):", ""]
    for size, r in results.items():
        peers = {p: v for p, v in r["peers"].items() if v["status"] == "ok"}
        others = {p: v["seconds"] for p, v in peers.items() if p not in TIERLAKE}
        if not others:
            continue
        best = min(others, key=others.get)
        for engine in TIERLAKE:
            if engine in peers:
                lines.append(
                    f"- {size:,} documents, {TIERLAKE[engine]}: fastest peer {best} {others[best]:.1f} s; "
                    f"tierlake {peers[engine]['seconds']:.1f} s -> {others[best] / peers[engine]['seconds']:.2f}x"
                )
    for engine in TIERLAKE:
        sizes = [s for s, r in results.items() if r["peers"].get(engine, {}).get("status") == "ok"]
        if len(sizes) > 1:
            lines += ["", f"Scaling, {TIERLAKE[engine]} (wall time ratio for the larger corpus):", ""]
            for small, large in zip(sizes, sizes[1:]):
                t0, t1 = (results[s]["peers"][engine]["seconds"] for s in (small, large))
                lines.append(f"- {small:,} -> {large:,} documents ({large / small:.0f}x): {t1 / t0:.2f}x the time")
    os.makedirs(os.path.dirname(args.markdown), exist_ok=True)
    replace_section(args.markdown, lines[2][3:], "\n".join(lines[4:]))


if __name__ == "__main__":
    main()
