"""The repository's prefect.yaml against a real `prefect server` and a process worker: create the
pool, `prefect --no-prompt deploy --all`, trigger the nightly deployment, run a worker with
`--run-once`, and check the flow run completed and wrote its manifest naming the flow run.

The server runs with its scheduler service off so that the hourly deployment's schedule does not
queue runs this test did not ask for; the schedules themselves are checked through the API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

pytestmark = [pytest.mark.prefect, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe(tmp_path) -> str:
    docs = tmp_path / "inbox" / "docs.jsonl"
    docs.parent.mkdir(parents=True)
    lines = []
    for i in range(40):
        text = f"Document {i % 30} about rivers, mountains and the weather in valley number {i % 30}. " * 4
        lines.append(json.dumps({"id": f"d{i:03d}", "text": text}))
    lines.append("{not json")
    docs.write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""name: deployment-test
sources:
  - name: inbox
    path: {docs}
    id_column: id
output:
  path: {tmp_path / "out"}
  overwrite: true
spark:
  master: local[1]
  driver_memory: 1g
""")
    return str(recipe)


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PATH": BIN + os.pathsep + env.get("PATH", ""),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
    )
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [os.path.join(BIN, "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("prefect server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    yield env, f"http://127.0.0.1:{port}/api"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _prefect(env, *args, cwd=ROOT, timeout=300):
    proc = subprocess.run([os.path.join(BIN, "prefect"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_deploy_all_trigger_and_worker_run_once(prefect_server, tmp_path):
    env, api = prefect_server
    _prefect(env, "work-pool", "create", "tierlake-process", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--all")
    deployments = httpx.post(f"{api}/deployments/filter", json={}).json()
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {"nightly-curation", "hourly-ingest-dedup", "containment-scan"}
    schedules = {name: [s["schedule"] for s in d["schedules"]] for name, d in by_name.items()}
    assert schedules["nightly-curation"][0]["cron"] == "0 2 * * *"
    assert schedules["hourly-ingest-dedup"][0]["interval"] == 3600
    assert schedules["containment-scan"] == []
    assert all(d["work_pool_name"] == "tierlake-process" for d in deployments)

    recipe = _recipe(tmp_path)
    out = _prefect(env, "deployment", "run", "curate/nightly-curation", "--param", f"recipe_path={recipe}", "--param", f"base_dir={tmp_path}")
    assert "Created flow run" in out
    worker = subprocess.run(
        [os.path.join(BIN, "prefect"), "worker", "start", "--pool", "tierlake-process", "--run-once"],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    runs = httpx.post(f"{api}/flow_runs/filter", json={"deployments": {"id": {"any_": [by_name["nightly-curation"]["id"]]}}}).json()
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["state_type"] == "COMPLETED", f"flow run {run['state_type']}:\n{worker.stdout[-4000:]}\n{worker.stderr[-4000:]}"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["prefect"]["flow_run_id"] == run["id"]
    t = manifest["totals"]
    assert t["docs_in"] == 41 and t["quarantined"] == 1 and t["docs_in"] == t["docs_out"] + t["removed"] + t["quarantined"]
    assert manifest["stages"][1]["removed"] == {"exact_duplicate": 10}  # documents 30..39 repeat 0..9
    # the run's stats are in the UI as artifacts
    artifacts = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    keys = {a["key"] for a in artifacts}
    assert {"stage-ingest", "stage-exact-dedup", "run-summary"} <= keys
