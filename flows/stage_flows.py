"""One Prefect flow per stage — ingest, dedup (ingest + exact + near, optionally against a saved
index), containment, score, tier, select — each a thin wrapper over the stage's job (``flows/*_job.py``).

Orchestration only. Each flow:

* keys its result by a hash of the stage, its parameters and the fingerprints (path, size, mtime)
  of its input files (:func:`stage_key`); when ``OUTPUT/_stage.json`` holds the same key and
  ``OUTPUT/stats.json`` exists, the stage is complete and a re-run returns its stats without
  running (``force=True`` runs anyway). The marker is written after stats.json, so a crash
  mid-stage leaves no marker and the re-run redoes that stage only;
* runs the job in-process (``spark_mode="local"``: Spark local[*] or ``master``) or as a Spark
  application through ``spark-submit`` (``spark_mode="submit"``, :mod:`flows.spark_submit`);
* publishes the stage's stats as a Prefect table artifact, and retries once on failure.
"""
from __future__ import annotations

import json
import os

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from connectors.checkpoints import stage_key as _stage_key
from connectors.manifest import now_iso, write_file_atomic

MARKER = "_stage.json"


def stage_key(stage: str, params: dict, inputs: list[str]) -> str:
    """The stage's result key: its name, parameters and input files' fingerprints
    (:func:`connectors.checkpoints.stage_key`, the same key the curate flow's checkpoints use)."""
    return _stage_key(stage, params, None, inputs)


def completed(output: str, key: str) -> dict | None:
    """The stored stats when ``output`` holds a finished run of exactly this stage key."""
    marker, stats = os.path.join(output, MARKER), os.path.join(output, "stats.json")
    if not (os.path.exists(marker) and os.path.exists(stats)):
        return None
    with open(marker) as fh:
        if json.load(fh).get("key") != key:
            return None
    with open(stats) as fh:
        return json.load(fh)


def mark_completed(output: str, stage: str, key: str) -> None:
    text = json.dumps({"stage": stage, "key": key, "finished_at": now_iso()}, indent=2)
    write_file_atomic(os.path.join(output, MARKER), lambda tmp: open(tmp, "w").write(text))


def _artifact(stage: str, stats: dict) -> None:
    rows = [{"metric": k, "value": v} for k, v in stats.items() if isinstance(v, (int, float, str)) and k != "run_id"]
    for s in stats.get("stages", []):
        rows += [{"metric": f"{s['name']}: documents in", "value": s["docs_in"]},
                 {"metric": f"{s['name']}: documents out", "value": s["docs_out"]}]
        rows += [{"metric": f"{s['name']}: removed {k}", "value": v} for k, v in sorted(s["removed"].items())]
        rows += [{"metric": f"{s['name']}: quarantined {k}", "value": v} for k, v in sorted(s["quarantined"].items())]
    try:
        create_table_artifact(key=f"{stage}-stats", table=rows, description=f"tierlake {stage} stage")
    except Exception:  # artifacts are a convenience; never fail a run over them
        pass


@task(name="run-stage", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def run_stage(stage: str, argv: list[str], output: str, key: str, spark_mode: str = "local",
              master: str | None = None, force: bool = False) -> dict:
    """Run ``tierlake <stage> argv`` unless ``output`` already holds this key's result."""
    log = get_run_logger()
    done = None if force else completed(output, key)
    if done is not None:
        log.info("%s: already complete for key %s… in %s — skipped", stage, key[:12], output)
        return {**done, "skipped": True}
    if os.path.exists(os.path.join(output, MARKER)):
        os.remove(os.path.join(output, MARKER))
    if spark_mode == "submit":
        from flows.spark_submit import submit

        submit(stage, argv, master=master or "local[*]")
    else:
        from flows.cli import main

        code = main(["--quiet", stage, *argv, *(["--master", master] if master else [])])
        if code != 0:
            raise RuntimeError(f"tierlake {stage} failed with exit code {code} (see the log above)")
    with open(os.path.join(output, "stats.json")) as fh:
        stats = json.load(fh)
    mark_completed(output, stage, key)
    log.info("%s: done in %s s -> %s", stage, stats.get("seconds"), output)
    return stats


def _dedup_params(recipe_path: str | None) -> dict:
    from flows.recipe import load_recipe

    if not recipe_path:
        return {}
    stages = load_recipe(recipe_path).stages
    return {"exact": stages.exact_dedup.model_dump(), "near": stages.near_dedup.model_dump()}


@flow(name="ingest", log_prints=True)
def ingest_flow(input_path: str, output: str, text_column: str = "text", id_column: str | None = None,
                spark_mode: str = "local", master: str | None = None, force: bool = False) -> dict:
    """Read one input into documents + quarantine."""
    argv = [input_path, output, "--text-column", text_column] + (["--id-column", id_column] if id_column else [])
    key = stage_key("ingest", {"argv": argv}, [input_path])
    stats = run_stage("ingest", argv, output, key, spark_mode, master, force)
    _artifact("ingest", stats)
    return stats


def dedup_argv(input_path: str, output: str, threshold: float, num_perm: int, bands: int | None, rows: int | None,
               text_column: str) -> list[str]:
    """The dedup command line; LSH banding only when given, else chosen from the threshold
    (``NearDedupParams.banding``), so a flow's threshold moves its banding as the CLI's does."""
    argv = [input_path, output, "--threshold", str(threshold), "--num-perm", str(num_perm), "--text-column", text_column]
    if (bands is None) != (rows is None):
        raise ValueError("give both bands and rows, or neither (then they follow the threshold)")
    if bands is not None:
        argv += ["--bands", str(bands), "--rows", str(rows)]
    return argv


@flow(name="dedup", log_prints=True)
def dedup_flow(input_path: str, output: str, index_dir: str | None = None, threshold: float = 0.8,
               num_perm: int = 112, bands: int | None = None, rows: int | None = None, text_column: str = "text",
               id_column: str | None = None, spark_mode: str = "local", master: str | None = None, force: bool = False,
               engine: str = "spark") -> dict:
    """Ingest + exact + MinHash-LSH near dedup of one input; with ``index_dir`` the batch is checked
    against every earlier batch saved there (the hourly incremental deployment). ``engine="local"``
    runs the job in one process without Spark (same results; for batches that fit in memory).
    ``bands``/``rows``: LSH banding; default chosen from ``threshold`` and ``num_perm``."""
    if engine not in ("spark", "local"):
        raise ValueError(f"engine must be 'spark' or 'local', got {engine!r}")
    if engine == "local" and spark_mode == "submit":
        raise ValueError("engine 'local' runs in the worker's process; spark_mode 'submit' needs engine 'spark'")
    argv = dedup_argv(input_path, output, threshold, num_perm, bands, rows, text_column)
    if engine == "local":
        argv += ["--engine", "local"]
        master = None  # no Spark master for the local engine
    if id_column:
        argv += ["--id-column", id_column]
    if index_dir:
        argv += ["--index", index_dir]
    key = stage_key("dedup", {"argv": argv}, [input_path])
    stats = run_stage("dedup", argv, output, key, spark_mode, master, force)
    _artifact("dedup", stats)
    return stats


@flow(name="containment", log_prints=True)
def containment_flow(lake: str, output: str, min_ratio: float = 1.0, force: bool = False) -> dict:
    """R2D2 containment scan of a table lake (on demand)."""
    from curation.containment_stage import ContainmentParams
    from flows.containment_job import run_containment

    key = stage_key("containment", {"min_ratio": min_ratio}, [lake])
    done = None if force else completed(output, key)
    if done is None:
        res = run_containment(lake, output, ContainmentParams(min_ratio=min_ratio))
        f = res["funnel"]
        done = {"tables": f["tables"], "edges": len(res["edges"]), "seconds": f["seconds"],
                "pruned_before_verification_pct": f["pruned_before_verification_pct"]}
        write_file_atomic(os.path.join(output, "stats.json"), lambda tmp: open(tmp, "w").write(json.dumps(done, indent=2)))
        mark_completed(output, "containment", key)
    _artifact("containment", done)
    return done


def score_argv(input_path: str, output: str, targets: list[str], decontaminate: list[str] | None,
               sample: int | None) -> list[str]:
    """The score command line; the sample size defaults to the stage's (``ScoreParams``)."""
    from curation.betr_stage import ScoreParams

    argv = [input_path, output, "--targets", *targets, "--sample", str(sample or ScoreParams().sample)]
    return argv + (["--decontaminate", *decontaminate] if decontaminate else [])


@flow(name="score", log_prints=True)
def score_flow(input_path: str, output: str, targets: list[str], decontaminate: list[str] | None = None,
               sample: int | None = None, spark_mode: str = "local", master: str | None = None, force: bool = False) -> dict:
    """BETR scores and decontamination flags for one input (``sample``: default ScoreParams')."""
    argv = score_argv(input_path, output, targets, decontaminate, sample)
    key = stage_key("score", {"argv": argv}, [input_path, *targets, *(decontaminate or [])])
    stats = run_stage("score", argv, output, key, spark_mode, master, force)
    _artifact("score", stats)
    return stats


@flow(name="tier", log_prints=True)
def tier_flow(input_path: str, output: str, recipe_path: str | None = None, spark_mode: str = "local",
              master: str | None = None, force: bool = False) -> dict:
    """Signals and tiers L0–L4 for one input (policy from a recipe or the defaults)."""
    argv = [input_path, output] + (["--recipe", recipe_path] if recipe_path else [])
    key = stage_key("tier", {"argv": argv}, [input_path] + ([recipe_path] if recipe_path else []))
    stats = run_stage("tier", argv, output, key, spark_mode, master, force)
    _artifact("tier", stats)
    return stats


@flow(name="select", log_prints=True)
def select_flow(run_dir: str, output: str, budget: float, max_epochs: float = 4.0, alignment_weight: float = 0.0,
                targets: list[str] | None = None, laws: str | None = None, keep_top: float | None = None,
                spark_mode: str = "local", master: str | None = None, force: bool = False) -> dict:
    """The training mix for a token budget from an earlier run's tiers; with ``laws`` (laws.json of
    ``tierlake probe``) the mix minimizes the fitted laws' predicted target loss."""
    argv = [run_dir, output, "--budget", str(budget), "--max-epochs", str(max_epochs),
            "--alignment-weight", str(alignment_weight)] + (["--targets", *targets] if targets else [])
    argv += (["--laws", laws] if laws else []) + (["--keep-top", str(keep_top)] if keep_top else [])
    key = stage_key("select", {"argv": argv}, [os.path.join(run_dir, "tiers"), os.path.join(run_dir, "documents"),
                                               *(targets or []), *([laws] if laws else [])])
    stats = run_stage("select", argv, output, key, spark_mode, master, force)
    _artifact("select", stats)
    return stats
