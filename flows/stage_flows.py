"""One Prefect flow per stage — ingest, dedup (ingest + exact + near, optionally against a saved
index), containment, score, tier, select — each a thin wrapper over the stage's job
(``flows/*_job.py``), which runs its stages through the one runner (:mod:`flows.runner`).

Orchestration only. Parameters are the stages' pydantic models (``ExactDedupParams``,
``NearDedupParams``, ``ScoreParams``, ``TierPolicy``, ``SelectParams``): Prefect validates them and
the UI shows their fields, and a default lives in one place. Each flow:

* resumes (unless ``force``): a finished run of the same key in ``output`` — the stages'
  parameters, the input files' fingerprints and what shapes the outputs; ``stats.json`` is
  written last and holds the key — is returned without running (``skipped``); a crash mid-run
  leaves stage checkpoints in ``output/_checkpoints`` and the re-run redoes only the unfinished
  stages (:mod:`connectors.checkpoints`, the one resume mechanism);
* runs the job in the worker's process (``spark_mode="local"``: Spark local[*] or ``master``) or
  as a Spark application through ``spark-submit`` (``spark_mode="submit"``: the same job function
  with the same parameters as JSON, :func:`flows.spark_submit.submit_job`);
* publishes the job's stats as a Prefect table artifact; each stage inside retries transient
  failures once (never a user error).
"""

from __future__ import annotations

from typing import Literal

from prefect import flow

from connectors.accounting import StageStats
from connectors.sources import DEFAULT_ID_COLUMN
from connectors.spark_session import SparkSettings
from curation.params import ContainmentParams, ExactDedupParams, NearDedupParams, ScoreParams
from flows.runner import Artifact, publish, stats_rows
from tiers.params import SelectParams
from tiers.policy import TierPolicy

SparkMode = Literal["local", "submit"]


def _artifact(stage: str, stats: dict) -> None:
    """One table artifact for a job: its scalar totals, then each stage's rows (the runner's
    :func:`~flows.runner.stats_rows`, prefixed with the stage). ``stats`` is the job's stats.json
    content, which may come back from a spark-submit application as JSON."""
    rows = [{"metric": k, "value": v} for k, v in stats.items() if isinstance(v, (int, float, str)) and k not in ("run_id", "key")]
    for s in stats.get("stages", []):
        rows += stats_rows(StageStats.model_validate(s), prefix=f"{s['name']}: ")
    publish([Artifact(f"{stage}-stats", rows, f"tierlake {stage} stage")])


def _run_job(job: str, kwargs: dict, spark_mode: SparkMode, master: str | None) -> dict:
    """Call ``flows/<job>_job.run_<job>(**kwargs)`` here, or inside a spark-submit application."""
    if spark_mode == "submit":
        from flows.spark_submit import submit_job

        return submit_job(job, kwargs, master=master or "local[*]")
    from flows.spark_submit import job_function

    if master:
        kwargs = {**kwargs, "spark_settings": SparkSettings(master=master)}
    return job_function(job)(**kwargs)


@flow(name="ingest", log_prints=True)
def ingest_flow(
    input_path: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    spark_mode: SparkMode = "local",
    master: str | None = None,
    force: bool = False,
) -> dict:
    """Read one input into documents + quarantine."""
    stats = _run_job(
        "ingest",
        {"input_path": input_path, "output": output, "text_column": text_column, "id_column": id_column, "resume": not force},
        spark_mode,
        master,
    )
    _artifact("ingest", stats)
    return stats


@flow(name="dedup", log_prints=True)
def dedup_flow(
    input_path: str,
    output: str,
    index_dir: str | None = None,
    exact: ExactDedupParams = ExactDedupParams(),
    near: NearDedupParams = NearDedupParams(),  # noqa: B008
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    engine: Literal["spark", "local"] = "spark",
    spark_mode: SparkMode = "local",
    master: str | None = None,
    force: bool = False,
) -> dict:
    """Ingest + exact + MinHash-LSH near dedup of one input; with ``index_dir`` the batch is checked
    against every earlier batch saved there (the hourly incremental deployment). ``engine="local"``
    runs the job in one process without Spark (same results; for batches that fit in memory).
    LSH banding follows ``near.threshold`` unless ``near.bands``/``near.rows`` are given."""
    if engine == "local" and spark_mode == "submit":
        raise ValueError("engine 'local' runs in the worker's process; spark_mode 'submit' needs engine 'spark'")
    stats = _run_job(
        "dedup",
        {
            "input_path": input_path,
            "output": output,
            "exact": exact,
            "near": near,
            "text_column": text_column,
            "id_column": id_column,
            "index_dir": index_dir,
            "engine": engine,
            "resume": not force,
        },
        spark_mode,
        None if engine == "local" else master,
    )
    _artifact("dedup", stats)
    return stats


@flow(name="containment", log_prints=True)
def containment_flow(lake: str, output: str, min_ratio: float = 1.0, force: bool = False) -> dict:
    """R2D2 containment scan of a table lake (on demand), through the runner."""
    import json
    import os

    from connectors.manifest import write_file_atomic
    from connectors.pipeline import StageContext
    from curation.stages import ContainmentStage
    from flows.runner import completed_job, pipeline_key, run_stages

    stage = ContainmentStage(ContainmentParams(min_ratio=min_ratio), lake, output=output)
    key = pipeline_key([stage])
    done = None if force else completed_job(output, key)
    if done is not None:
        return {**done, "skipped": True}
    res = run_stages([stage], StageContext(root=output)).outputs["containment"].objects["result"]
    f = res["funnel"]
    done = {
        "tables": f["tables"],
        "edges": len(res["edges"]),
        "seconds": f["seconds"],
        "pruned_before_verification_pct": f["pruned_before_verification_pct"],
        "key": key,
    }
    write_file_atomic(os.path.join(output, "stats.json"), lambda tmp: open(tmp, "w").write(json.dumps(done, indent=2)))
    _artifact("containment", done)
    return done


@flow(name="score", log_prints=True)
def score_flow(
    input_path: str,
    output: str,
    params: ScoreParams,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    spark_mode: SparkMode = "local",
    master: str | None = None,
    force: bool = False,
) -> dict:
    """BETR scores and decontamination flags for one input (``params.targets``: the benchmark files)."""
    stats = _run_job(
        "score",
        {"input_path": input_path, "output": output, "params": params, "text_column": text_column, "id_column": id_column, "resume": not force},
        spark_mode,
        master,
    )
    _artifact("score", stats)
    return stats


@flow(name="tier", log_prints=True)
def tier_flow(
    input_path: str,
    output: str,
    policy: TierPolicy = TierPolicy(),  # noqa: B008
    exact: ExactDedupParams = ExactDedupParams(),
    near: NearDedupParams = NearDedupParams(),  # noqa: B008
    dedup: bool = True,
    text_column: str = "text",
    id_column: str | None = DEFAULT_ID_COLUMN,
    spark_mode: SparkMode = "local",
    master: str | None = None,
    force: bool = False,
) -> dict:
    """Signals and tiers L0–L4 for one input, after exact and near dedup with ``exact``/``near``."""
    stats = _run_job(
        "tier",
        {
            "input_path": input_path,
            "output": output,
            "policy": policy,
            "dedup": dedup,
            "exact_params": exact,
            "near_params": near,
            "text_column": text_column,
            "id_column": id_column,
            "resume": not force,
        },
        spark_mode,
        master,
    )
    _artifact("tier", stats)
    return stats


@flow(name="select", log_prints=True)
def select_flow(
    run_dir: str, output: str, params: SelectParams, spark_mode: SparkMode = "local", master: str | None = None, force: bool = False
) -> dict:
    """The training mix for ``params.budget_tokens`` from an earlier run's tiers; with
    ``params.laws`` (laws.json of ``tierlake probe``) the mix minimizes the fitted laws' predicted
    target loss."""
    stats = _run_job("select", {"run_dir": run_dir, "output": output, "params": params, "resume": not force}, spark_mode, master)
    _artifact("select", stats)
    return stats
