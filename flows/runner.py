"""The one runner every tierlake pipeline goes through: the curate flow, each per-stage flow and
each ``tierlake <stage>`` command.

For each :class:`connectors.pipeline.Stage` in order it keys the stage (parameters model, upstream
key, input files' fingerprints), restores it from its checkpoint when a completed earlier run has
the same key, else runs it — inside a flow run as a Prefect task that retries transient failures
once and never a user error — checks its accounting (documents in = kept + removed +
quarantined), saves the checkpoint (:mod:`connectors.checkpoints`, the one resume mechanism),
logs one line and publishes its stats as a Prefect table artifact. See docs/engine.md.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors import spark_metrics
from connectors.accounting import StageStats
from connectors.arrow_memory import use_jemalloc
from connectors.checkpoints import Checkpoints, stage_key
from connectors.filesystem import InputError
from connectors.pipeline import Artifact, Stage, StageContext, StageOutput
from flows.errors import OutOfMemory, is_out_of_memory, is_spark_gone

log = logging.getLogger("tierlake")


def is_user_error(exc: BaseException) -> bool:
    """A mistake in the input or the recipe: retrying would only fail again."""
    from flows.errors import RecipeError

    return isinstance(exc, (InputError, RecipeError))


def spark_alive(spark) -> bool:
    """Whether the session's JVM still answers and its context is not stopped."""
    try:
        return not spark.sparkContext._jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 — a dead JVM answers with a Py4J error
        return False


def retry_unless_user_error(task, task_run, state) -> bool:
    """Prefect retry condition: retry a failed stage once for transient failures (a lost executor,
    a flaky object store), never for a user mistake, and never after running out of memory: in
    local mode the OOM killed the JVM the retry would use (it then failed on the dead session's
    files and the user saw that error instead of the memory advice)."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 — classify, do not handle
        return not (is_user_error(exc) or is_out_of_memory(exc))
    return True


def in_flow_run() -> bool:
    import sys

    if "prefect" not in sys.modules:  # a command outside Prefect: no need to import it (about 2 s)
        return False
    try:
        from prefect.context import FlowRunContext

        return FlowRunContext.get() is not None
    except Exception:  # noqa: BLE001
        return False


def _logger():
    if in_flow_run():
        from prefect import get_run_logger

        return get_run_logger()
    return log


def stats_rows(stats: StageStats, prefix: str = "") -> list[dict]:
    """A stage's stats as the rows of a Prefect table artifact (metric, value)."""
    pairs: list[tuple[str, float]] = [
        ("documents in", stats.docs_in),
        ("documents out", stats.docs_out),
        ("tokens out", stats.tokens_out),
        ("seconds", stats.seconds),
    ]
    pairs += [(f"removed: {k}", v) for k, v in sorted(stats.removed.items())]
    pairs += [(f"quarantined: {k}", v) for k, v in sorted(stats.quarantined.items())]
    return [{"metric": prefix + metric, "value": value} for metric, value in pairs]


def publish(artifacts: list[Artifact]) -> None:
    """Prefect table artifacts, inside a flow run only; never fail a run over them."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    for a in artifacts:
        try:
            create_table_artifact(key=a.key, table=a.rows, description=a.description)
        except Exception:  # noqa: BLE001 — artifacts are a convenience
            pass


def check_accounting(out: StageOutput, stage: Stage) -> None:
    """Re-validate the stats (documents in = kept + removed + quarantined) and the declared frames."""
    StageStats.model_validate(out.stats.model_dump())
    missing = [n for n in stage.outputs if n not in out.frames]
    if missing:
        raise RuntimeError(f"stage {stage.name} did not return its declared outputs {missing}")


@dataclass
class PipelineResult:
    frames: dict[str, Any]
    outputs: dict[str, StageOutput] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def stats(self) -> list[StageStats]:
        return [o.stats for o in self.outputs.values()]


def local_engine_threads(sources, threads: int | None) -> int:
    """Threads of the one-process engine for ``sources`` (SourceSpecs), after refusing inputs that
    do not fit in memory: a clear error before any work, not an out-of-memory kill."""
    from connectors.local_ingest import check_fits_in_memory
    from curation.dedup_local import default_threads

    check_fits_in_memory(sources)
    return threads or default_threads()


def engine_session(engine: str, sources, threads: int | None, spark_settings=None):
    """(Spark session or None, threads of the one-process engine) for a job on ``engine``:
    ``"spark"`` starts (or reuses) the session; ``"local"`` checks the inputs fit in memory first."""
    if engine not in ("spark", "local"):
        raise ValueError(f"engine must be 'spark' or 'local', got {engine!r}")
    if engine == "local":
        return None, local_engine_threads(sources, threads)
    from connectors.spark_session import get_spark

    return get_spark(spark_settings), 1


def stage_key_of(stage: Stage, upstream: str | None, engine: str) -> str:
    """A stage's checkpoint key: its name, parameters, the engine (Spark frames and Arrow tables
    are not interchangeable), the upstream stage's key and its files' fingerprints."""
    return stage_key(stage.name, {"params": stage.key_params(), "engine": engine}, upstream, stage.key_files())


def _execute(stage: Stage, ctx: StageContext, inputs: dict, ck: Checkpoints, key: str) -> StageOutput:
    from threadpoolctl import threadpool_limits

    # one BLAS and one OpenMP thread: the same products (and scikit-learn's k-means in the select
    # stage's OT) round the same way on any core count and in either engine (Spark's Python
    # workers and driver get the same through their environment, connectors/spark_session.py)
    since = spark_metrics.mark(ctx.spark) if ctx.spark is not None else None
    try:
        with spark_metrics.job_group(ctx.spark, stage.name):
            with threadpool_limits(limits=1, user_api="blas"), threadpool_limits(limits=1, user_api="openmp"):
                out = stage.run(ctx, inputs)
            check_accounting(out, stage)
            kept = {n: f for n, f in out.frames.items() if n not in stage.transient_outputs}
            if stage.checkpoint and ck.enabled:
                meta = {"stats": out.stats.model_dump(), **out.meta}
                with tempfile.TemporaryDirectory(prefix=f"tierlake-{stage.name}-") as tmp:
                    saved = ck.save(stage.name, key, kept, meta, stage.checkpoint_files(out, tmp))
                out.frames.update(saved)  # the one-process engine's tables now mapped from their files
            elif ctx.spark is None:
                out.frames.update(ck.spill(kept))  # mapped from unlinked files: docs/engine.md, "Memory of the one-process engine"
        if since is not None:
            # the stage's jobs and its checkpoint's (Spark is lazy: writing the frames may run them)
            out.stats.details["spark"] = spark_metrics.spark_work(ctx.spark, since)
    except Exception as exc:
        # read now, while the JVM that raised it may still answer: a Py4J error's text comes from it
        if is_out_of_memory(exc):
            raise OutOfMemory(f"stage {stage.name}: java.lang.OutOfMemoryError (Spark ran out of memory)") from exc
        if is_spark_gone(exc) or (ctx.spark is not None and not spark_alive(ctx.spark)):
            # in local mode an OOM kills the JVM before its error reaches Python
            raise OutOfMemory(
                f"stage {stage.name}: Spark's JVM stopped (in local mode: out of memory, as the java.lang.OutOfMemoryError in the log says)"
            ) from exc
        raise
    return out


def run_stages(
    stages: Sequence[Stage],
    ctx: StageContext,
    checkpoints: Checkpoints | None = None,
    frames: dict[str, Any] | None = None,
    upstream: str | None = None,
) -> PipelineResult:
    """Run ``stages`` in order over ``frames`` (the pipeline's starting frames, e.g. a dedup
    index); each stage reads its declared inputs from what earlier stages produced."""
    use_jemalloc()  # Arrow's pool for what the stages allocate here (connectors/arrow_memory.py)
    ck = checkpoints or Checkpoints(ctx.root, ctx.spark, enabled=False)
    result = PipelineResult(frames=dict(frames or {}))
    flow = in_flow_run()
    for stage in stages:
        key = stage_key_of(stage, upstream, "spark" if ctx.spark is not None else "local")
        missing = [n for n in stage.inputs if n not in result.frames]
        if missing:
            raise RuntimeError(f"stage {stage.name} needs {missing}, which no earlier stage produced")
        inputs = {n: result.frames[n] for n in stage.inputs} | {n: result.frames.get(n) for n in stage.optional_inputs}
        hit = ck.load(stage.name, key) if stage.checkpoint else None
        if hit is not None:
            out = stage.restore(ctx, hit[0], hit[1], ck.folder(stage.name))
            check_accounting(out, stage)
            _logger().info("%s: restored from the checkpoint of an earlier run (key %s…); not recomputed", stage.name, key[:12])
        else:
            _logger().info("%s: started", stage.name)
            if flow:
                from prefect import task
                from prefect.cache_policies import NO_CACHE

                run = task(
                    name=stage.name.replace("_", "-"),
                    cache_policy=NO_CACHE,
                    retries=1,
                    retry_delay_seconds=5,
                    retry_condition_fn=retry_unless_user_error,
                )(_execute)
                out = run(stage, ctx, inputs, ck, key)
            else:
                out = _execute(stage, ctx, inputs, ck, key)
        _logger().info("%s: %s (%.1f s)", stage.name, stage.summary(out), out.stats.seconds)
        publish([Artifact(f"stage-{stage.name.replace('_', '-')}", stats_rows(out.stats), f"tierlake stage {stage.name}"), *stage.artifacts(out)])
        ctx.stats[stage.name] = out.stats
        result.frames.update(out.frames)
        result.outputs[stage.name] = out
        result.keys[stage.name] = key
        upstream = key
    return result


def pipeline_key(stages: Sequence[Stage], extra: dict | None = None, engine: str = "spark") -> str:
    """The key of a whole job: its stages' chained keys plus what shapes its outputs (``extra``)."""
    upstream = None
    for stage in stages:
        upstream = stage_key_of(stage, upstream, engine)
    return stage_key("job", extra or {}, upstream)


def completed_job(output: str, key: str) -> dict | None:
    """The stats of a finished job in ``output`` with exactly this key (``stats.json`` is written
    last, so its presence means every output is there), else None."""
    import json
    import os

    try:
        with open(os.path.join(output, "stats.json")) as fh:
            stats = json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return stats if stats.get("key") == key else None
