"""kill -9 of `tierlake run` and of a per-stage command after stages and mid-stage, then a re-run:
the outputs are byte-identical to an uninterrupted run in another process (issues 19 and 20).

Each run is its own process group (the CLI, its JVM and Prefect's temporary server), killed with
SIGKILL when a trigger shows: a stage's checkpoint completed (``_checkpoints/<stage>/done.json``),
a stage started (the runner's log line) plus a moment, or an output folder under its temporary
name. Every Parquet file and every other output but the manifest and report (run id, timings) is
compared by sha256.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tests.conftest import ROOT, demo_recipe

pytestmark = pytest.mark.integration
TIERLAKE = [sys.executable, "-m", "flows.cli"]
VARYING = ("manifest.json", "report.html", "stats.json", "models/quality/model.json")  # run id, timings


def _env(tmp_path, api_url: str | None = None) -> dict:
    """Each run starts Prefect's temporary server, as `tierlake run` does for a user, unless
    ``api_url`` names a running one (the 15 runs of the curate test share one: ~5 s less each)."""
    env = dict(os.environ, PYTHONPATH=ROOT, PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONUNBUFFERED="1")
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _run(args: list[str], env: dict, output: str, trigger=None, timeout: float = 600, command=TIERLAKE) -> bool:
    """Run ``tierlake args`` (or ``command args``); with ``trigger(output, log_lines)`` kill its
    process group with SIGKILL as soon as the trigger is true. Returns True when it was killed,
    False when it finished (then it must have succeeded)."""
    proc = subprocess.Popen([*command, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if trigger is not None and trigger(output, lines):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(5)
            return True
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"tierlake {' '.join(args)} did not finish in {timeout} s:\n" + "".join(lines[-30:]))
    reader.join(5)
    assert proc.returncode == 0, "".join(lines[-40:])
    return False


def after_stage(stage: str):
    return lambda out, _lines: os.path.exists(os.path.join(out, "_checkpoints", stage, "done.json"))


def finished(stage: str):
    """The runner logged ``<stage>``'s result (for a stage that keeps no checkpoint)."""
    done = re.compile(rf"(^|\| ){stage}: (?!started)")
    return lambda _out, lines: any(done.search(line) for line in list(lines))


def mid_stage(stage: str, delay: float = 0.3):
    """A moment after the runner logged ``<stage>: started`` (in a run that computes it)."""
    seen: dict[str, float] = {}

    def trigger(_out, lines):
        if "t" not in seen and any(f"{stage}: started" in line for line in list(lines)):
            seen["t"] = time.time()
        return "t" in seen and time.time() - seen["t"] >= delay

    return trigger


def while_writing(dataset: str):
    """An output folder still under its temporary name (``.documents.tmp-RUNID``)."""
    return lambda out, _lines: bool(glob.glob(os.path.join(out, f".{dataset}.tmp-*")))


def _outputs(root: str) -> dict[str, str]:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "_checkpoints"]
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if rel in VARYING or name.startswith("."):
                continue
            with open(os.path.join(folder, name), "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.spark
def test_curate_killed_in_and_after_every_stage_resumes_to_identical_outputs(demo_lake, prefect_harness, tmp_path):
    from prefect.settings import PREFECT_API_URL

    lake, _ = demo_lake
    workdir = os.path.dirname(lake)
    with open(demo_recipe(workdir)) as fh:
        recipe = yaml.safe_load(fh)
    recipe["stages"]["containment"]["enabled"] = False  # tables, not documents: not part of this check
    env = _env(tmp_path, PREFECT_API_URL.value())  # the session's Prefect server (not killed with the runs)

    def recipe_for(out: str) -> str:
        path = tmp_path / f"{os.path.basename(out)}.yaml"
        path.write_text(yaml.safe_dump({**recipe, "output": {**recipe["output"], "path": out}}))
        return str(path)

    baseline = str(tmp_path / "baseline")
    assert not _run(["--quiet", "run", recipe_for(baseline), "--base-dir", workdir, "--overwrite"], env, baseline)
    crashed = str(tmp_path / "crashed")
    args = ["run", recipe_for(crashed), "--base-dir", workdir, "--overwrite"]  # not quiet: the runner's lines are the triggers
    # mid-stage and after it, for every stage in order, then while the outputs are written: each
    # run is killed at the next point and the one after it resumes from what the killed one left
    kills = [
        mid_stage("ingest", 1.0),
        after_stage("ingest"),
        mid_stage("exact_dedup"),
        after_stage("exact_dedup"),
        mid_stage("near_dedup"),
        after_stage("near_dedup"),
        mid_stage("score", 2.0),
        after_stage("score"),
        mid_stage("tier", 2.0),
        after_stage("tier"),
        mid_stage("select", 1.0),
        finished("select"),
        while_writing("documents"),
    ]
    killed = [_run(args, env, crashed, trigger) for trigger in kills]
    assert sum(killed) >= len(kills) - 3, killed  # a trigger can miss a stage that finished between polls
    assert not os.path.exists(os.path.join(crashed, "manifest.json"))  # nothing looks complete before the end
    assert not _run(args, env, crashed)
    want, got = _outputs(baseline), _outputs(crashed)
    assert len(want) >= 15 and got == want


@pytest.mark.spark
def test_dedup_command_killed_mid_run_resumes_to_identical_outputs(demo_lake, tmp_path):
    lake, _ = demo_lake
    source = os.path.join(lake, "corpus", "webcrawl")
    env = _env(tmp_path)
    baseline = str(tmp_path / "baseline")
    assert not _run(["--quiet", "dedup", source, baseline], env, baseline)
    crashed = str(tmp_path / "crashed")
    args = ["dedup", source, crashed, "--resume"]
    killed = [_run(args, env, crashed, trigger) for trigger in (after_stage("ingest"), mid_stage("near_dedup", 0.2), while_writing("kept"))]
    assert sum(killed) >= 2, killed
    assert not os.path.exists(os.path.join(crashed, "stats.json"))
    assert not _run(args, env, crashed)
    assert _outputs(crashed) == _outputs(baseline) and len(_outputs(baseline)) >= 2
    _assert_finished_run_is_kept(args, env, crashed)


def _assert_finished_run_is_kept(args: list[str], env: dict, crashed: str) -> None:
    # finished: the same command again keeps the run (stats.json holds its key) and writes nothing
    before = os.path.getmtime(os.path.join(crashed, "stats.json"))
    assert not _run(args, env, crashed)
    assert os.path.getmtime(os.path.join(crashed, "stats.json")) == before
    shutil.rmtree(crashed)


def _synthetic_corpus(path, n: int = 60_000, seed: int = 3) -> None:
    """``n`` documents of 60-140 words, every 10th a near copy of an earlier one: enough work for
    the one-process engine's stages to last long enough to be killed inside."""
    import json

    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    docs = []
    with open(path, "w") as fh:
        for i in range(n):
            if i % 10 == 9:
                words = docs[int(rng.integers(0, len(docs)))].split()
                words[int(rng.integers(0, len(words)))] = "changed"
                text = " ".join(words)
            else:
                text = " ".join(vocab[rng.integers(0, len(vocab), int(rng.integers(60, 140)))])
            docs.append(text)
            fh.write(json.dumps({"id": f"doc-{i}", "text": text}) + "\n")


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    _synthetic_corpus(path)
    return str(path)


def test_local_engine_dedup_killed_mid_run_resumes_to_identical_outputs(synthetic_source, tmp_path):
    """The same for the one-process engine (no JVM)."""
    env = _env(tmp_path)
    baseline = str(tmp_path / "baseline")
    assert not _run(["--quiet", "dedup", synthetic_source, baseline, "--engine", "local"], env, baseline)
    crashed = str(tmp_path / "crashed")
    args = ["dedup", synthetic_source, crashed, "--engine", "local", "--resume"]
    kills = (
        mid_stage("ingest", 0.3),
        after_stage("ingest"),
        mid_stage("exact_dedup", 0.1),
        after_stage("exact_dedup"),
        mid_stage("near_dedup", 0.3),
        while_writing("kept"),
    )
    killed = [_run(args, env, crashed, trigger) for trigger in kills]
    assert sum(killed) >= 4, killed
    assert not os.path.exists(os.path.join(crashed, "stats.json"))
    assert not _run(args, env, crashed)
    assert _outputs(crashed) == _outputs(baseline) and len(_outputs(baseline)) >= 2
    _assert_finished_run_is_kept(args, env, crashed)


FLOW = [sys.executable, "-c", "import sys; from flows.stage_flows import dedup_flow; dedup_flow(sys.argv[1], sys.argv[2], engine='local')"]


def test_dedup_flow_killed_in_and_after_stages_resumes_to_identical_outputs(synthetic_source, tmp_path):
    """The per-stage Prefect flow (``dedup_flow``, as a deployment runs it; its own temporary
    Prefect server) killed inside and after its stages: the next flow run resumes, and its outputs
    equal an uninterrupted `tierlake dedup` of the same input, byte for byte (one runner, one
    set of defaults)."""
    env = _env(tmp_path)
    baseline = str(tmp_path / "baseline")
    assert not _run(["--quiet", "dedup", synthetic_source, baseline, "--engine", "local"], env, baseline)
    crashed = str(tmp_path / "crashed")
    kills = (after_stage("ingest"), mid_stage("near_dedup", 0.3), while_writing("kept"))
    killed = [_run([synthetic_source, crashed], env, crashed, trigger, command=FLOW) for trigger in kills]
    assert sum(killed) >= 2, killed
    assert not os.path.exists(os.path.join(crashed, "stats.json"))
    assert not _run([synthetic_source, crashed], env, crashed, command=FLOW)
    assert _outputs(crashed) == _outputs(baseline) and len(_outputs(baseline)) >= 2
