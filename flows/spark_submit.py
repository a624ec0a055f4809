"""Run a tierlake stage as a Spark application through ``spark-submit``.

``tierlake package`` zips the pure-Python code (``connectors``, ``curation``, ``tiers``,
``flows``) for ``--py-files``; :func:`submit` calls ``spark-submit --master M --py-files ZIP
flows/spark_entry.py <stage> <args>``. Native dependencies (pyspark, pyarrow, polars, numpy, POT,
scikit-learn) must be importable by the Python that runs the driver and the executors: the same
interpreter on every node (``spark.python``, default this one) or a packed environment shipped
with ``--archives env.tar.gz#environment`` through ``spark.submit_args`` (docs/operations.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

PACKAGES = ("connectors", "curation", "tiers", "flows")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SubmitError(RuntimeError):
    pass


JOBS = {
    "ingest": "flows.ingest_job:run_ingest",
    "dedup": "flows.dedup_job:run_dedup",
    "score": "flows.score_job:run_score",
    "tier": "flows.tier_job:run_tier",
    "select": "flows.select_job:run_select",
}


def job_function(job: str):
    """``run_<job>`` of ``flows/<job>_job.py``, validating its arguments against its annotations
    (pydantic: a JSON dict becomes the stage's parameters model)."""
    import importlib

    from pydantic import ConfigDict, validate_call

    module, name = JOBS[job].split(":")
    return validate_call(config=ConfigDict(arbitrary_types_allowed=True))(getattr(importlib.import_module(module), name))


def submit_job(job: str, kwargs: dict, master: str = "local[*]", **submit_options) -> dict:
    """Run ``run_<job>(**kwargs)`` as a Spark application (``flows/spark_entry.py job``): the
    parameters travel as JSON (pydantic models dumped, validated back on the driver), not as a
    command line; returns the job's stats.json."""
    import json
    import tempfile

    from pydantic import BaseModel

    payload = {k: (v.model_dump(mode="json") if isinstance(v, BaseModel) else v) for k, v in kwargs.items()}
    payload["spark_settings"] = {"master": master}
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"tierlake-{job}-", delete=False) as fh:
        json.dump(payload, fh)
    try:
        submit("job", [job, fh.name], master=master, **submit_options)
    finally:
        os.remove(fh.name)
    with open(os.path.join(kwargs.get("output") or "", "stats.json")) as stats:
        return json.load(stats)


def package(dest: str | None = None) -> str:
    """Zip tierlake's Python packages (and their data files) for ``--py-files``; returns the path.
    The archive is reproducible: sorted entries, fixed timestamps."""
    dest = dest or os.path.join(ROOT, "dist", "tierlake-pyfiles.zip")
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for pkg in PACKAGES:
            for folder, dirs, files in os.walk(os.path.join(ROOT, pkg)):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    if name.endswith((".pyc", ".tmp")):
                        continue
                    full = os.path.join(folder, name)
                    info = zipfile.ZipInfo(os.path.relpath(full, ROOT), date_time=(2020, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(full, "rb") as fh:
                        zf.writestr(info, fh.read())
    os.replace(tmp, dest)
    return dest


def spark_submit_binary() -> str:
    """``$SPARK_HOME/bin/spark-submit`` when SPARK_HOME is set, else the one pip's pyspark ships."""
    home = os.environ.get("SPARK_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "spark-submit")):
        return os.path.join(home, "bin", "spark-submit")
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


def submit_command(
    stage: str,
    argv: list[str],
    master: str,
    py_files: str,
    python: str | None = None,
    submit_args: list[str] | None = None,
    conf: dict[str, str] | None = None,
    driver_memory: str | None = None,
) -> list[str]:
    python = python or sys.executable
    cmd = [
        spark_submit_binary(),
        "--master",
        master,
        "--name",
        f"tierlake-{stage}",
        "--py-files",
        py_files,
        *(["--driver-memory", driver_memory] if driver_memory else []),
        "--conf",
        f"spark.pyspark.python={python}",
        "--conf",
        f"spark.pyspark.driver.python={python}",
    ]
    for key, value in sorted((conf or {}).items()):
        cmd += ["--conf", f"{key}={value}"]
    cmd += list(submit_args or [])
    if stage == "job":  # flows/spark_entry.py job NAME PARAMS.json: a job function, no command line
        cmd += [os.path.join(ROOT, "flows", "spark_entry.py"), "job", *argv]
    else:
        cmd += [os.path.join(ROOT, "flows", "spark_entry.py"), "--quiet", stage, *argv, "--master", master]
    return cmd


def submit(
    stage: str,
    argv: list[str],
    master: str = "local[*]",
    py_files: str | None = None,
    python: str | None = None,
    submit_args: list[str] | None = None,
    conf: dict[str, str] | None = None,
    timeout: float | None = None,
    driver_memory: str | None = None,
) -> None:
    """Run ``tierlake <stage> argv`` as a Spark application; raise SubmitError with the tail of its
    output when it fails."""
    py_files = py_files or package()
    cmd = submit_command(stage, argv, master, py_files, python, submit_args, conf, driver_memory)
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", python or sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", python or sys.executable)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise SubmitError(f"spark-submit of `{stage}` failed (exit {proc.returncode}):\n{tail}")
