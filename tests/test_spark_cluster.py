"""spark-submit on a real Spark standalone cluster on 127.0.0.1 (one master, two workers started
with `spark-class`): dedup submitted with the code as --py-files (`tierlake package`) must equal
the in-process local run. Also: the per-stage flows skip a completed stage and redo a changed one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile

import httpx
import polars as pl
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class() -> str:
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui = _free_port(), _free_port()
    env = dict(
        os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_WORKER_DIR=str(work / "worker"), SPARK_LOG_DIR=str(work / "logs"), PYSPARK_PYTHON=sys.executable
    )
    procs = []
    master_url = f"spark://127.0.0.1:{port}"

    def start(args, name):
        log = open(work / f"{name}.log", "w")
        procs.append((subprocess.Popen([_spark_class(), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log))

    start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)], "master")
    for i in range(2):
        start(
            [
                "org.apache.spark.deploy.worker.Worker",
                master_url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(_free_port()),
                "--work-dir",
                str(work / f"worker{i}"),
            ],
            f"worker{i}",
        )
    deadline = time.time() + 120
    alive = 0
    while time.time() < deadline:
        try:
            state = httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=2).json()
            alive = sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")
            if alive == 2:
                break
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    if alive != 2:
        logs = "\n".join((work / f"{n}.log").read_text()[-1500:] for n in ("master", "worker0", "worker1"))
        for p, _ in procs:
            p.kill()
        pytest.fail(f"standalone cluster did not come up ({alive} workers alive):\n{logs}")
    yield master_url, ui
    for p, log in procs:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


def _rows(path):
    return pl.read_parquet(os.path.join(path, "*.parquet")).sort("id")


def test_package_zip_holds_the_code(tmp_path):
    from flows.spark_submit import package

    path = package(str(tmp_path / "code.zip"))
    names = set(zipfile.ZipFile(path).namelist())
    assert {"flows/cli.py", "curation/minhash.py", "tiers/qqt.py", "connectors/spark_session.py"} <= names
    assert not any("__pycache__" in n for n in names)
    again = package(str(tmp_path / "again.zip"))
    assert open(path, "rb").read() == open(again, "rb").read()  # reproducible


def test_dedup_submitted_to_a_standalone_cluster_equals_the_local_run(spark, standalone_cluster, demo_lake, tmp_path):
    from flows.cli import main
    from flows.spark_submit import package, submit

    master, ui = standalone_cluster
    lake, _ = demo_lake
    source = os.path.join(lake, "corpus", "forum")
    local_out, cluster_out = tmp_path / "local", tmp_path / "cluster"
    assert main(["--quiet", "dedup", source, str(local_out), "--id-column", "id"]) == 0
    submit(
        "dedup",
        [source, str(cluster_out), "--id-column", "id"],
        master=master,
        py_files=package(str(tmp_path / "code.zip")),
        conf={"spark.executor.memory": "1g", "spark.cores.max": "2", "spark.driver.memory": "1g"},
        timeout=900,
    )
    local, cluster = json.loads((local_out / "stats.json").read_text()), json.loads((cluster_out / "stats.json").read_text())
    assert cluster["kept"] == local["kept"] and cluster["removed"] == local["removed"]
    assert cluster["quarantined"] == local["quarantined"]
    assert _rows(cluster_out / "kept").equals(_rows(local_out / "kept"))
    assert _rows(cluster_out / "removed").equals(_rows(local_out / "removed"))
    # it really ran on the cluster: the master lists the finished application
    apps = httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=5).json()["completedapps"]
    assert [a["name"] for a in apps] == ["tierlake"] and apps[0]["cores"] >= 1, apps


def _executor_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "CoarseGrainedExecutorBackend"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _file_hashes(root) -> dict[str, str]:
    import hashlib

    return {
        os.path.relpath(os.path.join(d, f), root): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
        for d, _, files in os.walk(root)
        for f in files
        if f.endswith(".parquet")
    }


def test_an_executor_killed_mid_job_is_replaced_and_the_outputs_are_identical(spark, standalone_cluster, demo_lake, tmp_path):
    """SIGKILL of an executor JVM while the dedup application runs: the worker starts a new one,
    Spark reruns the lost tasks (and recomputes lost cached blocks), and the files are the same
    bytes as an uninterrupted local run's (issue 20)."""
    import signal
    import threading

    from flows.cli import main
    from flows.spark_submit import package, submit

    master, _ui = standalone_cluster
    lake, _ = demo_lake
    source = os.path.join(lake, "corpus", "forum")
    local_out, cluster_out = tmp_path / "local", tmp_path / "cluster"
    assert main(["--quiet", "dedup", source, str(local_out)]) == 0
    before = set(_executor_pids())
    result: dict = {}

    def run():
        try:
            submit(
                "dedup",
                [source, str(cluster_out)],
                master=master,
                py_files=package(str(tmp_path / "code.zip")),
                conf={"spark.executor.memory": "1g", "spark.cores.max": "2", "spark.driver.memory": "1g"},
                timeout=900,
            )
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 — reported below
            result["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    killed = None
    deadline = time.time() + 300
    while job.is_alive() and time.time() < deadline and killed is None:
        fresh = [p for p in _executor_pids() if p not in before]
        if len(fresh) == 2:  # both executors up: let the job get going, then kill one mid-job
            time.sleep(6)
            if job.is_alive():
                os.kill(fresh[0], signal.SIGKILL)
                killed = fresh[0]
        time.sleep(0.2)
    job.join(900)
    assert killed is not None, "the application finished before an executor could be killed"
    assert result.get("ok"), result.get("error")
    assert json.loads((cluster_out / "stats.json").read_text())["kept"] == json.loads((local_out / "stats.json").read_text())["kept"]
    assert _file_hashes(cluster_out) == _file_hashes(local_out)


@pytest.mark.prefect
def test_stage_flow_skips_a_completed_stage_and_redoes_a_changed_one(spark, prefect_harness, tmp_path):
    from flows.stage_flows import dedup_flow

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("".join(json.dumps({"id": f"a{i}", "text": f"alpha beta gamma {i % 5} " * 10}) + "\n" for i in range(20)))
    out = tmp_path / "out"
    first = dedup_flow(str(inbox), str(out))
    assert not first.get("skipped") and first["kept"] == 5
    assert first["key"] and (out / "_checkpoints" / "near_dedup" / "done.json").exists()
    second = dedup_flow(str(inbox), str(out))
    assert second["skipped"] and second["run_id"] == first["run_id"]
    time.sleep(0.01)
    (inbox / "b.jsonl").write_text(json.dumps({"id": "b0", "text": "a brand new document about something else " * 5}) + "\n")
    third = dedup_flow(str(inbox), str(out))
    assert not third.get("skipped") and third["kept"] == 6 and third["run_id"] != first["run_id"]
    # a crash after the stages but before stats.json (written last): the re-run restores every
    # stage from its checkpoint and writes the outputs again
    (out / "stats.json").unlink()
    fourth = dedup_flow(str(inbox), str(out))
    assert not fourth.get("skipped") and fourth["kept"] == third["kept"]
    assert all(s["details"].get("restored_from_checkpoint") for s in fourth["stages"])
    # the same flow with the local engine: same counts, its own key (not skipped as the Spark run's)
    local = dedup_flow(str(inbox), str(out), engine="local")
    assert not local.get("skipped") and local["engine"] == "local"
    assert (local["kept"], local["removed"]) == (fourth["kept"], fourth["removed"])


@pytest.mark.prefect
def test_recipe_in_submit_mode_runs_as_a_cluster_application(prefect_harness, standalone_cluster, tmp_path):
    """`spark.mode: submit`: the curate flow hands the whole recipe to spark-submit; the manifest
    names the flow run that submitted it."""
    from flows.curate import curate

    master, ui = standalone_cluster
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": f"river valley weather report {i % 7} " * 6}) + "\n" for i in range(21)))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""name: submit-mode
sources: [{{name: inbox, path: {docs}, id_column: id}}]
output: {{path: {tmp_path / "out"}, overwrite: true}}
spark:
  master: {master}
  mode: submit
  driver_memory: 1g
  conf: {{spark.executor.memory: 1g, spark.cores.max: "2"}}
""")
    before = len(httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=5).json()["completedapps"])
    path = curate(recipe_path=str(recipe))
    manifest = json.loads(open(path).read())
    assert manifest["totals"]["docs_out"] == 7 and manifest["stages"][1]["removed"] == {"exact_duplicate": 14}
    assert manifest["prefect"]["flow_run_id"]
    assert os.path.exists(tmp_path / "out" / "report.html")
    after = httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=5).json()["completedapps"]
    assert len(after) == before + 1
