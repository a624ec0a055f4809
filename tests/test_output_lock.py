"""One run at a time per output folder: a second run refuses naming the first; the lock a run
killed with -9 leaves behind is taken over by the next run (issue 20)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from connectors.output_lock import LOCK_NAME, OutputLock, OutputLocked
from tests.conftest import ROOT

HOLD = "import sys, time; from connectors.output_lock import OutputLock\nwith OutputLock(sys.argv[1], 'tierlake run nightly'):\n    print('held', flush=True); time.sleep(600)\n"


def _holder(folder):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_refuses_naming_the_first_and_a_killed_runs_lock_is_taken_over(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        with pytest.raises(OutputLocked, match=rf"tierlake run nightly, pid {holder.pid} on .* started"):
            with OutputLock(str(out)):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # the killed run's lock file is still there, naming it; the kernel released its flock
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid
    with OutputLock(str(out), "tierlake dedup") as lock:
        assert f"pid {holder.pid}" in lock.took_over
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(OutputLocked):  # held: even this process cannot take it twice
            with OutputLock(str(out)):
                pass
    with OutputLock(str(out)):  # released at the end of the block
        pass


def test_the_command_line_refuses_a_locked_output_in_one_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i} about rivers"}) + "\n" for i in range(5)))
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        started = time.time()
        run = subprocess.run(
            [sys.executable, "-m", "flows.cli", "dedup", str(src), str(out), "--engine", "local"],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=ROOT),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and f"pid {holder.pid}" in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("tierlake:")]) == 1
    assert not (out / "kept").exists() and time.time() - started < 120


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    out = tmp_path / "new"
    with OutputLock(str(out)):
        assert (out / LOCK_NAME).exists()
    assert not out.exists()
    kept = tmp_path / "kept"
    with OutputLock(str(kept)):
        (kept / "stats.json").write_text("{}")
    assert (kept / "stats.json").exists()


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    """What a killed run left under temporary names goes when the next run starts (it holds the
    lock); finished outputs, other dot files and the stage checkpoints stay."""
    from connectors.manifest import begin_job_output

    out = tmp_path / "out"
    stale_dir = out / ".kept.tmp-20261206T022242Z-5f05b94a"
    stale_dir.mkdir(parents=True)
    (stale_dir / "part-00000.parquet").write_bytes(b"partial")
    nested = out / "tiers" / "documents" / ".tier=L1.tmp-20261206T022242Z-5f05b94a"
    nested.mkdir(parents=True)
    (out / ".stats.json.tmp-20261206T022242Z-5f05b94a").write_text("{")
    (out / "kept").mkdir()
    (out / "kept" / "part-00000.parquet").write_bytes(b"done")
    (out / ".keep-me").write_text("x")
    checkpoint_tmp = out / "_checkpoints" / "ingest" / ".documents.tmp-20261206T022242Z-5f05b94a"
    checkpoint_tmp.mkdir(parents=True)
    begin_job_output(str(out))
    assert not stale_dir.exists() and not nested.exists()
    assert not (out / ".stats.json.tmp-20261206T022242Z-5f05b94a").exists()
    assert (out / "kept" / "part-00000.parquet").exists() and (out / ".keep-me").exists() and checkpoint_tmp.exists()
