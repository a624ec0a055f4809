"""The one Spark session factory.

Defaults are sized for a small machine: ``local[*]``, shuffle partitions a few times the core
count (Spark's 200 is far too many for a laptop), Arrow on, and the Python workers pinned to the
running interpreter (otherwise they run whatever ``python3`` is on PATH and miss pyarrow).
Everything can be overridden from a recipe's ``spark`` section or ``--master``.
"""

from __future__ import annotations

import os
import sys
from typing import Literal, Mapping

from pydantic import BaseModel, Field

LOG4J2_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")


class SparkSettings(BaseModel):
    """How to reach Spark. ``conf`` is passed verbatim as ``spark.*`` settings."""

    model_config = {"extra": "forbid"}

    master: str = Field("local[*]", description="Spark master URL, e.g. local[*] or spark://host:7077")
    app_name: str = "tierlake"
    driver_memory: str = Field("4g", description="driver JVM heap (only honoured when the JVM starts here)")
    shuffle_partitions: int | None = Field(None, ge=1, description="spark.sql.shuffle.partitions; default 4 x cores in local mode")
    conf: dict[str, str] = Field(default_factory=dict)
    mode: Literal["local", "submit"] = Field(
        "local", description="local: Spark runs inside the flow's process; submit: each run is a spark-submit application"
    )
    python: str | None = Field(
        None,
        description="Python for the driver and executors under spark-submit (default: this interpreter; ./environment/bin/python with a packed env)",
    )
    submit_args: list[str] = Field(default_factory=list, description="extra spark-submit arguments, e.g. ['--archives', 'env.tar.gz#environment']")


def local_cores(master: str) -> int:
    """Cores a local master uses: local -> 1, local[N] -> N, local[*] -> os.cpu_count()."""
    if master == "local":
        return 1
    if master.startswith("local["):
        inner = master[len("local[") :].split("]")[0].split(",")[0]
        return os.cpu_count() or 1 if inner == "*" else int(inner)
    return os.cpu_count() or 1


def task_slots(spark) -> int:
    """Tasks the session runs at once: the cores of a local master, else the executors' total
    cores as Spark reports them (``spark.default.parallelism`` is set to several per core here)."""
    master = spark.sparkContext.master
    if master.startswith("local"):
        return local_cores(master)
    try:
        return max(
            1, int(spark.sparkContext._jsc.sc().maxNumConcurrentTasks(spark.sparkContext._jsc.sc().resourceProfileManager().defaultResourceProfile()))
        )
    except Exception:  # noqa: BLE001 - private API; fall back to the configured parallelism
        return spark.sparkContext.defaultParallelism


def task_memory_bytes(spark) -> int:
    """The heap of the JVM that runs tasks: the driver's in local mode, else an executor's
    (``spark.executor.memory``, Spark's default 1g)."""
    if spark.sparkContext.master.startswith("local"):
        return int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())
    return int(spark.sparkContext._jsc.sc().executorMemory()) << 20


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def session_conf(settings: SparkSettings) -> dict[str, str]:
    """The effective Spark configuration for ``settings`` (pure; tested without a JVM)."""
    cores = local_cores(settings.master)
    partitions = settings.shuffle_partitions or max(4, 4 * cores)
    conf = {
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.default.parallelism": str(partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": settings.driver_memory,
        # Spark's console progress bar on an interactive terminal, never in scheduled/quiet runs
        "spark.ui.showConsoleProgress": "true" if sys.stderr.isatty() and not os.environ.get("TIERLAKE_QUIET") else "false",
        "spark.sql.session.timeZone": "UTC",
        # Python workers must be this interpreter, on the driver and on executors.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.ui.enabled": "false",
        # errors only from the JVM this process starts (read when the driver JVM launches here)
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J2_CONFIG}",
        # one BLAS thread in every Python worker: OpenBLAS splits a product by its thread count, which
        # is the machine's core count by default, and a split changes float rounding (docs/engine.md)
        **{f"spark.executorEnv.{name}": "1" for name in BLAS_THREAD_VARIABLES},
    }
    conf.update(settings.conf)
    return conf


def get_spark(settings: SparkSettings | None = None, extra_conf: Mapping[str, str] | None = None):
    """Return the active SparkSession, or start one from ``settings``."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    for name in BLAS_THREAD_VARIABLES:  # local mode's Python workers inherit the JVM's environment
        os.environ[name] = "1"
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    conf = session_conf(settings)
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
