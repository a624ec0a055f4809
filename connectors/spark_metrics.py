"""What Spark did for one tierlake stage: jobs, Spark stages, tasks, bytes shuffled and bytes
sent to and returned from Python workers.

The runner labels every job a stage starts with the job group ``tierlake-<stage>`` (what the Spark
UI and the history server show) and, when the stage ends, reads the driver's status stores for
the jobs and SQL executions started since the stage began (:func:`spark_work`). The figures go
into the stage's ``details["spark"]`` in the manifest and its Prefect artifact, and
``bench/pipeline.py`` tabulates them: see docs/engine.md, "What Spark does per stage".

Reads Spark's private status stores through Py4J; a Spark whose stores look different gives
``{"unavailable": reason}`` instead of failing the run.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError

# SQL metrics of the operators that run Python (MapInArrow, ArrowEvalPython, FlatMapGroupsInArrow, ...)
_PYTHON_SENT = "data sent to Python workers"
_PYTHON_RETURNED = "data returned from Python workers"
_PYTHON_CODE = "time to execute Python code"
_SIZE = re.compile(r"^\s*([0-9.]+)\s*(B|KiB|MiB|GiB|TiB|PiB)\b")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50}
_TIME = re.compile(r"^\s*([0-9.]+)\s*(ms|s|m|h)\b")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def metric_bytes(text: str) -> int:
    """The total of a formatted SQL size metric: "2.0 KiB", or over several tasks
    "total (min, med, max (stageId: taskId))\n1602.9 KiB (200.4 KiB, ...)" -> 1641370."""
    lines = text.strip().splitlines()
    m = _SIZE.match(lines[-1]) if lines else None
    return round(float(m.group(1)) * _UNITS[m.group(2)]) if m else 0


def metric_seconds(text: str) -> float:
    """The total of a formatted SQL timing metric (Spark's ``Utils.msDurationToString``: "106 ms",
    "1.6 s", "2.5 m", "1.25 h"; over several tasks the total is on the second line)."""
    lines = text.strip().splitlines()
    m = _TIME.match(lines[-1]) if lines else None
    return float(m.group(1)) * _SECONDS[m.group(2)] if m else 0.0


@dataclass(frozen=True)
class SparkMark:
    """The last job id and SQL execution id the driver knew when a stage began."""

    job: int
    execution: int


def _seq(scala_seq) -> list:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _jobs(spark) -> list:
    return _seq(spark.sparkContext._jsc.sc().statusStore().jobsList(None))


def _executions(spark) -> list:
    return _seq(spark._jsparkSession.sharedState().statusStore().executionsList())


def mark(spark) -> SparkMark:
    """Where the driver's job and SQL execution ids stand now."""
    try:
        jobs = [j.jobId() for j in _jobs(spark)]
        executions = [e.executionId() for e in _executions(spark)]
    except Exception:  # noqa: BLE001 - private API: the stage's figures become "unavailable"
        return SparkMark(-2, -2)
    return SparkMark(max(jobs, default=-1), max(executions, default=-1))


@contextmanager
def job_group(spark, stage: str):
    """Label the jobs ``stage`` starts from this thread (Spark UI, history server); nothing
    without a session (the one-process engine)."""
    if spark is None:
        yield
        return
    sc = spark.sparkContext
    sc.setJobGroup(f"tierlake-{stage}", f"tierlake stage {stage}", interruptOnCancel=False)
    try:
        yield
    finally:
        try:
            for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
                sc.setLocalProperty(key, None)  # None removes the property
        except Exception:  # noqa: BLE001 - a JVM that died (out of memory) must not hide the stage's own error
            pass


def spark_work(spark, since: SparkMark) -> dict:
    """Jobs, Spark stages and tasks run, bytes shuffled and bytes that crossed to and from Python
    workers, for every job and SQL execution started after ``since``.

    Stages a job skipped (their shuffle output already existed) are counted apart: they cost
    nothing. So are stages the status store no longer holds (it keeps ``spark.ui.retainedStages``,
    1,000 by default; a long-lived session can drop a job's skipped stages of old ids). Python bytes are the Arrow batches the operators that run Python sent and got back."""
    if since.job == -2:
        return {"unavailable": "Spark's status store could not be read"}
    try:
        # the status stores are fed by Spark's asynchronous listener bus: let it catch up first
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(10_000)
        jobs = [j for j in _jobs(spark) if j.jobId() > since.job]
        store = spark.sparkContext._jsc.sc().statusStore()
        stage_ids = sorted({s for j in jobs for s in _seq(j.stageIds())})
        ran = skipped = not_retained = tasks = shuffle_write = shuffle_read = 0
        for sid in stage_ids:
            try:
                data = store.lastStageAttempt(sid)
            except Py4JJavaError:  # the store keeps spark.ui.retainedStages stages: a long session drops old ones
                not_retained += 1
                continue
            if data.status().toString() == "SKIPPED":
                skipped += 1
                continue
            ran += 1
            tasks += data.numTasks()
            shuffle_write += data.shuffleWriteBytes()
            shuffle_read += data.shuffleReadBytes()
        sql = spark._jsparkSession.sharedState().statusStore()
        sent = returned = python_operators = 0
        python_seconds = 0.0
        for execution in _executions(spark):
            if execution.executionId() <= since.execution:
                continue
            try:
                values = sql.executionMetrics(execution.executionId())
                nodes = _seq(sql.planGraph(execution.executionId()).allNodes())
            except Py4JJavaError:  # no longer retained (spark.sql.ui.retainedExecutions)
                continue
            for node in nodes:
                node_sent = 0
                for metric in _seq(node.metrics()):
                    name = metric.name()
                    if name == _PYTHON_CODE:
                        value = values.get(metric.accumulatorId())
                        python_seconds += metric_seconds(value.get()) if value.isDefined() else 0.0
                        continue
                    if _PYTHON_SENT not in name and _PYTHON_RETURNED not in name:
                        continue
                    value = values.get(metric.accumulatorId())
                    size = metric_bytes(value.get()) if value.isDefined() else 0
                    if _PYTHON_SENT in name:
                        node_sent += size
                    else:
                        returned += size
                if node_sent:
                    python_operators += 1
                    sent += node_sent
    except Exception as exc:  # noqa: BLE001 - private API: report, never fail the run
        return {"unavailable": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {
        "jobs": len(jobs),
        "stages": ran,
        "stages_skipped": skipped,
        "stages_not_retained": not_retained,
        "tasks": tasks,
        "shuffle_write_bytes": shuffle_write,
        "shuffle_read_bytes": shuffle_read,
        "python_operators": python_operators,
        "python_sent_bytes": sent,
        "python_returned_bytes": returned,
        "python_code_seconds": round(python_seconds, 3),
    }
