"""Out of disk space on the output (a small tmpfs): a clear one-line error (exit 4), nothing that
looks complete (no stats.json), and the same command completes once space is freed (issue 20)."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess

import pyarrow.parquet as pq
import pytest

from flows.cli import main


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (needs the right to mount: root in CI's container; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _input(tmp_path) -> str:
    """~3 MB of text that barely compresses (random letters), 1,500 documents."""
    rng = random.Random(0)
    path = tmp_path / "in.jsonl"
    with open(path, "w") as fh:
        for i in range(1500):
            words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(300)]
            fh.write(json.dumps({"id": f"d{i:05d}", "text": " ".join(words)}) + "\n")
    return str(path)


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
def test_out_of_disk_fails_clearly_and_the_rerun_completes(small_disk, tmp_path, capsys, engine, request):
    if engine == "spark":
        request.getfixturevalue("spark")
    source = _input(tmp_path)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (15 << 20))  # leave about 1 MiB: the ~2 MB of kept shards cannot fit
    out = small_disk / "out"
    args = ["dedup", source, str(out), "--resume", *(["--engine", "local"] if engine == "local" else [])]
    assert main(args) == 4
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tierlake:")]
    assert len(lines) == 1 and "no space left" in lines[0] and "Traceback" not in err, err
    assert not (out / "stats.json").exists()
    ballast.unlink()  # space freed: the same command completes
    assert main(["--quiet", *args]) == 0
    stats = json.loads((out / "stats.json").read_text())
    kept = pq.read_table(out / "kept").num_rows
    assert kept + sum(stats["removed"].values()) == stats["documents_in"] == 1500
    assert not [p for p in os.listdir(out) if ".tmp-" in p]  # no temporary folder left behind
