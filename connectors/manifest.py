"""The run manifest: what went in, what each stage did, what came out — written last, atomically.

Shape follows the conventions in reference/platform.md §6 (DCLM dataset JSON, MosaicML shard
hashes, datatrove's "manifest as completion marker"). The JSON Schema shipped in
``connectors/schemas/manifest.schema.json`` is generated from these models
(``python -m connectors.manifest``) and tests keep the two identical.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field

from connectors.accounting import StageStats
from connectors.shards import DatasetInfo

MANIFEST_VERSION: Literal["1.0"] = "1.0"
SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "schemas", "manifest.schema.json")


class InputFile(BaseModel):
    source: str
    path: str
    bytes: int
    modified: str | None = Field(None, description="modification time, ISO 8601 UTC")
    format: str


class Software(BaseModel):
    tierlake_version: str
    git_commit: str | None
    git_dirty: bool | None
    python: str
    spark_version: str | None = None
    spark_master: str | None = None  # None when the one-process engine ran every stage
    prefect_version: str | None = None
    engine: str = "spark"  # spark, or local (every stage in one process on Arrow tables)


class PrefectRun(BaseModel):
    flow_run_id: str
    flow_name: str | None = None
    deployment_id: str | None = None


class Totals(BaseModel):
    docs_in: int
    docs_out: int
    tokens_out: int
    removed: int
    quarantined: int


class TierCount(BaseModel):
    tier: str
    source: str
    documents: int
    tokens: int


class Manifest(BaseModel):
    manifest_version: Literal["1.0"] = MANIFEST_VERSION
    run_id: str
    name: str
    created_at: str
    software: Software
    recipe: dict
    recipe_sha256: str
    seed: int
    prefect: PrefectRun | None = None
    inputs: list[InputFile]
    stages: list[StageStats]
    outputs: dict[str, DatasetInfo] = Field(description="documents, removed, quarantine, ...")
    totals: Totals
    tiers: list[TierCount] | None = Field(None, description="documents and tokens per tier and source (tier stage)")
    selection: dict | None = Field(
        None,
        description="the chosen training mix (select stage): budget, parameters, predicted accuracy, per pool share, tokens, epochs, selected rows",
    )


def recipe_sha256(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def git_state() -> tuple[str | None, bool | None]:
    """tierlake's own commit (None when installed without a checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def _package_version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def tierlake_version() -> str:
    """The installed tierlake's version, read once per process (every stage key includes it)."""
    return _package_version("tierlake") or "0+unknown"


def software(spark=None, engine: str = "spark") -> Software:
    _v = _package_version
    commit, dirty = git_state()
    return Software(
        tierlake_version=tierlake_version(),
        git_commit=commit,
        git_dirty=dirty,
        python=sys.version.split()[0],
        spark_version=spark.version if spark is not None else _v("pyspark"),
        spark_master=spark.sparkContext.master if spark is not None else None,
        prefect_version=_v("prefect"),
        engine=engine,
    )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_file_atomic(path: str, write) -> None:
    """``write(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def new_run_id() -> str:
    """A run id: UTC time to the second plus 8 random hex digits (sortable, unique)."""
    import uuid

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def remove_stale_temporaries(root: str) -> list[str]:
    """Remove what killed runs left under temporary names (``.NAME.tmp-RUNID``: a dataset folder
    or a file that was being written) anywhere under ``root`` except the stage checkpoints, which
    restore their own. Call it holding the output lock: then no live run owns such a name. Returns
    the removed paths."""
    import re
    import shutil

    pattern = re.compile(r"^\..+\.tmp-\d{8}T\d{6}Z-[0-9a-f]{8}$")
    removed = []
    for folder, dirs, files in os.walk(root):
        if os.path.relpath(folder, root).split(os.sep)[0] == "_checkpoints":
            dirs[:] = []
            continue
        for name in [d for d in dirs if pattern.match(d)]:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
            removed.append(os.path.join(folder, name))
            dirs.remove(name)
        for name in (f for f in files if pattern.match(f)):
            os.remove(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def begin_job_output(output: str) -> str:
    """Prepare a CLI job's output folder and return the run id: an earlier ``stats.json`` is removed
    first, so a half-replaced output never looks complete (stats.json is written last), and so are
    the temporary folders and files of killed runs."""
    if os.path.exists(os.path.join(output, "stats.json")):
        os.remove(os.path.join(output, "stats.json"))
    os.makedirs(output, exist_ok=True)
    remove_stale_temporaries(output)
    return new_run_id()


def source_name(input_path: str) -> str:
    """A source name for a single-input job: the input's base name, safe characters only."""
    import re

    return re.sub(r"[^A-Za-z0-9_.\-]", "_", os.path.basename(input_path.rstrip("/")) or "input")


def write_stats(stats: dict, output: str, run_id: str) -> str:
    """``OUTPUT/stats.json`` of a CLI job, written under a temporary name and renamed (last)."""
    tmp = os.path.join(output, f".stats.json.tmp-{run_id}")
    with open(tmp, "w") as fh:
        json.dump(stats, fh, indent=2, default=str)
    path = os.path.join(output, "stats.json")
    os.replace(tmp, path)
    return path


def write_manifest(manifest: Manifest, root: str) -> str:
    """Write ``root/manifest.json`` via a temporary file and an atomic rename."""
    path = os.path.join(root, "manifest.json")
    tmp = os.path.join(root, f".manifest.json.tmp-{manifest.run_id}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest.model_dump(mode="json"), fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def json_schema() -> dict:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tierlake.dev/schemas/manifest-1.0.json"
    return schema


if __name__ == "__main__":  # regenerate the shipped schema
    with open(SCHEMA_PATH, "w", encoding="utf-8") as fh:
        json.dump(json_schema(), fh, indent=2)
        fh.write("\n")
    print(SCHEMA_PATH)
