"""``tierlake probe RUN_DIR OUT --targets ...``: proxy models on a curate run's pools, and laws.

Orchestration only: prepares OUT (pool byte streams in selection order, target and evaluation
streams per benchmark, embedding samples for the OT distance, the probe plan), trains the
planned probes that OUT lacks (:func:`tiers.probe.run_plan`: resumable, on CPU or CUDA), then
fits the laws (:func:`tiers.probe.fit_laws`) and writes ``probes.parquet`` and ``laws.json``.
``--prepare-only`` stops after the plan, so the grid can run on another machine with
``python -m tiers.probe run OUT``; a later ``tierlake probe`` on the same OUT fits what is there.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np

from connectors.benchmarks import load_examples
from connectors.filesystem import InputError
from connectors.pool_streams import encode, hash_ordered_texts, in_hash_order, pool_documents, scores_path
from tiers.params import SelectParams
from tiers.probe import (
    EMBED_FILE,
    EVAL_FILE,
    LAWS_FILE,
    PLAN_FILE,
    POOLS_FILE,
    TARGETS_FILE,
    ProbeParams,
    fit_laws,
    fit_rows,
    load_npz,
    make_plan,
    plan_array_name,
    run_plan,
    save_npz,
    write_json_atomic,
)

ELIGIBLE = SelectParams().tiers  # the pools selection can choose from


def tiered_path(run_dir: str) -> str:
    from flows.select_job import tiered_documents_path

    return tiered_documents_path(run_dir)


def examples_by_benchmark(paths: list[str], role: str) -> dict[str, list[str]]:
    by_bench: dict[str, list[str]] = defaultdict(list)
    for ex in load_examples(paths, role=role):
        by_bench[ex.benchmark].append(ex.text)
    return dict(sorted(by_bench.items()))


def benchmark_streams(examples: dict[str, list[str]], max_bytes: int) -> dict[str, np.ndarray]:
    """One byte stream per benchmark, its examples separated as documents are."""
    return {name: encode(texts, max_bytes) for name, texts in examples.items()}


def prepare(run_dir: str, out: str, targets: list[str], evaluate: list[str], params: ProbeParams) -> dict:
    """Write OUT's inputs and plan (module docstring). Returns the plan."""
    from curation.embedders import get_embedder

    docs = pool_documents(tiered_path(run_dir), ELIGIBLE, params.seed, scores_path(run_dir))
    if docs.is_empty():
        raise InputError(f"{run_dir}: no documents in tiers {ELIGIBLE}")
    os.makedirs(out, exist_ok=True)  # only once the run is readable: a mistake leaves nothing behind
    names, streams, samples = [], {}, []
    for (pool,), group in docs.group_by(["pool"], maintain_order=True):
        texts = group["text"].to_list()
        names.append(pool)
        streams[f"pool{len(names) - 1}"] = encode(texts)
        samples.append(texts[: params.embed_sample])
    target_examples = examples_by_benchmark(targets, "target")
    target_streams = benchmark_streams(target_examples, params.eval_bytes)
    plan = make_plan(names, [len(streams[f"pool{i}"]) for i in range(len(names))], sorted(target_streams), params)
    kept_names = plan["pools"]
    # pools left out (too small to probe) are dropped from the arrays; the plan indexes what is kept
    arrays = {f"pool{i}": streams[f"pool{names.index(n)}"] for i, n in enumerate(kept_names)}
    if params.curve_order == "hash" and any(e["kind"] == "curve" for e in plan["probes"]):
        # the curve probes' streams: the same documents in seeded hash order (a random sample is a prefix)
        for (pool,), group in in_hash_order(docs, params.seed).group_by(["pool"], maintain_order=True):
            if pool in kept_names:
                arrays[f"{plan_array_name(plan, pool)}_hash"] = encode(group["text"].to_list())
    save_npz(os.path.join(out, POOLS_FILE), arrays)
    save_npz(os.path.join(out, TARGETS_FILE), target_streams)
    if evaluate:
        save_npz(os.path.join(out, EVAL_FILE), benchmark_streams(examples_by_benchmark(evaluate, "evaluation"), params.eval_bytes))
    # baselines for validation: the whole curated corpus and the eligible tiers, each in seeded hash order
    save_npz(
        os.path.join(out, "baselines.npz"),
        {
            "natural": encode(hash_ordered_texts(tiered_path(run_dir), None, params.seed)),
            "eligible": encode(hash_ordered_texts(tiered_path(run_dir), ELIGIBLE, params.seed)),
        },
    )
    embedder = get_embedder("static")
    target_texts = [t for texts in target_examples.values() for t in texts]
    rng = np.random.default_rng(params.seed)
    if len(target_texts) > 2000:
        target_texts = [target_texts[i] for i in sorted(rng.choice(len(target_texts), 2000, replace=False))]
    emb = {f"pool{i}": embedder.embed(samples[names.index(n)]) for i, n in enumerate(kept_names)}
    emb["targets"] = embedder.embed(target_texts)
    save_npz(os.path.join(out, EMBED_FILE), emb)
    plan["run_dir"] = os.path.abspath(run_dir)
    plan["targets"], plan["evaluate"] = targets, evaluate
    plan["pool_documents"] = {n: int((docs["pool"] == n).sum()) for n in kept_names}
    plan["order"] = "betr_score" if "betr_score" in docs.columns and docs["betr_score"].null_count() < len(docs) else "hash"
    write_json_atomic(os.path.join(out, PLAN_FILE), plan)
    return plan


def write_probes_parquet(out: str, rows: list[dict]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [
        {
            **{k: v for k, v in r.items() if k not in ("shares", "parts", "losses")},
            "shares": json.dumps(r["shares"], sort_keys=True),
            "parts": json.dumps(r["parts"], sort_keys=True),
            **{f"loss_{b}": v for b, v in sorted(r["losses"].items())},
        }
        for r in rows
    ]
    columns = list(dict.fromkeys(k for rec in records for k in rec))  # curve rows carry columns others lack
    table = pa.Table.from_pylist([{k: rec.get(k) for k in columns} for rec in records])
    path = os.path.join(out, "probes.parquet")
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def read_probes_parquet(path: str) -> list[dict]:
    """The probe rows of a ``probes.parquet`` (:func:`write_probes_parquet`), as probes.jsonl holds them."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for r in rows:
        r["losses"] = {k.removeprefix("loss_"): r.pop(k) for k in list(r) if k.startswith("loss_")}
        r["shares"], r["parts"] = json.loads(r["shares"]), json.loads(r["parts"])
    return rows


def run_probe(
    run_dir: str | None,
    out: str,
    targets: list[str],
    evaluate: list[str],
    params: ProbeParams,
    prepare_only: bool = False,
    progress=None,
    step_progress=None,
) -> dict:
    """Prepare (unless OUT is prepared), train what is missing, fit. Returns a summary dict."""
    plan_path = os.path.join(out, PLAN_FILE)
    if not os.path.exists(plan_path):
        if not run_dir:
            raise InputError(f"{out} holds no probe plan: give RUN_DIR to prepare it")
        if not targets:
            raise InputError("--targets is required: probes are scored on target benchmark text (dev/validation splits)")
        plan = prepare(run_dir, out, targets, evaluate, params)
    else:
        with open(plan_path, encoding="utf-8") as f:
            plan = json.load(f)
    if prepare_only:
        return {"plan": plan, "prepared": True, "probes": len(plan["probes"])}
    rows = run_plan(out, params.device, progress, step_progress=step_progress)
    rows = fit_rows(plan, rows)
    laws = fit_laws(plan, rows, load_npz(os.path.join(out, EMBED_FILE)), seed=params.seed)
    laws["probes_file"] = write_probes_parquet(out, rows)
    write_json_atomic(os.path.join(out, LAWS_FILE), laws)
    return {"plan": plan, "laws": laws, "probes": len(rows)}
