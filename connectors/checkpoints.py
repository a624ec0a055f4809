"""Stage checkpoints of a run (the curate flow and each per-stage command), so a re-run skips completed stages and resumes after a crash.

Each stage's result is stored under ``OUTPUT/_checkpoints/<stage>/``: its frames (Spark DataFrames
as Parquet; the one-process engine's Arrow tables as uncompressed Arrow IPC files, which are then
memory-mapped in place of the tables, so a finished stage's outputs live in the page cache, not in
the process's own memory: docs/engine.md, "Memory of the one-process engine"),
its small results as JSON (``meta.json``), and ``done.json`` with the stage key — written last,
after the folder was filled under a temporary name and renamed, so a crash mid-stage leaves no
checkpoint. The key is a sha256 of the stage, its parameters, the upstream stage's key and the
fingerprints (path, size, mtime) of the files it reads, plus tierlake's version: change any of
them and the stage and everything after it run again.

A restored stage returns frames read back from its files; the outputs are written sorted by id, so
a resumed run writes the same shards as an uninterrupted one (tested).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from connectors.filesystem import is_s3, list_files

DIRNAME = "_checkpoints"


def write_ipc(table, path: str) -> None:
    """``table`` as one uncompressed Arrow IPC file (record batches of at most 64k rows)."""
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1 << 16)


def read_mapped(path: str):
    """The table of an Arrow IPC file, memory-mapped: its buffers are the file's pages."""
    import pyarrow as pa

    with pa.memory_map(path, "r") as source:
        return pa.ipc.open_file(source).read_all()


def fingerprints(paths: list[str]) -> list[list]:
    """(uri, bytes, mtime_ns) of every file under ``paths``; a missing path is recorded as such."""
    out: list[list] = []
    for path in paths:
        if path and (is_s3(path) or os.path.exists(path)):
            out.extend([f.uri, f.size, f.mtime_ns] for f in list_files(path))
        else:
            out.append([path, None, None])
    return sorted(out, key=lambda r: str(r[0]))


def stage_key(stage: str, params, upstream: str | None = None, files: list[str] | None = None) -> str:
    from connectors.manifest import tierlake_version

    blob = {"stage": stage, "params": params, "upstream": upstream, "files": fingerprints(files or []), "tierlake": tierlake_version()}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


class Checkpoints:
    """Checkpoints under ``root/_checkpoints`` (local output roots; disabled for s3:// outputs,
    which are written to a temporary local folder first)."""

    def __init__(self, root: str, spark=None, enabled: bool = True):
        self.base = os.path.join(root, DIRNAME)
        self.spark = spark
        self.enabled = enabled

    def folder(self, stage: str) -> str:
        return os.path.join(self.base, stage)

    def load(self, stage: str, key: str) -> tuple[dict, dict] | None:
        """(frames, meta) of a completed stage with this key, else None."""
        if not self.enabled:
            return None
        folder = self.folder(stage)
        try:
            with open(os.path.join(folder, "done.json")) as fh:
                done = json.load(fh)
            with open(os.path.join(folder, "meta.json")) as fh:
                meta = json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if done.get("key") != key:
            return None
        frames = {name: self._read(os.path.join(folder, name), kind) for name, kind in done["frames"].items()}
        return frames, meta

    def _read(self, path: str, kind):
        if not kind:
            return None
        if kind == "arrow_ipc":
            return read_mapped(path)
        if kind == "arrow":  # a Parquet checkpoint of an earlier version
            import pyarrow.parquet as pq

            return pq.read_table(path)
        return self.spark.read.parquet(path)

    @staticmethod
    def _kind(frame) -> str | None:
        if frame is None:
            return None
        import pyarrow as pa

        return "arrow_ipc" if isinstance(frame, pa.Table) else "spark"

    def save(self, stage: str, key: str, frames: dict, meta: dict, files: dict[str, str] | None = None) -> dict:
        """Store ``frames`` (name -> DataFrame or None) and ``meta``; ``files``: name -> local folder
        or file to copy in (e.g. a saved model). Returns the frames read back from Parquet."""
        if not self.enabled:
            return frames
        final = self.folder(stage)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        kinds = {name: self._kind(df) for name, df in frames.items()}
        for name, df in frames.items():
            if kinds[name] == "arrow_ipc":
                write_ipc(df, os.path.join(tmp, name))
            elif kinds[name] == "spark":
                df.write.mode("error").parquet(os.path.join(tmp, name))
        for name, src in (files or {}).items():
            (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(tmp, name))
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump(meta, fh, default=str)
        with open(os.path.join(tmp, "done.json"), "w") as fh:
            json.dump({"stage": stage, "key": key, "frames": kinds}, fh)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        # Spark frames are read back (lineage cut at the checkpoint); Arrow tables are mapped from
        # their files, so the tables the stage built can be freed
        return {name: self._read(os.path.join(final, name), kind) for name, kind in kinds.items()}

    def spill(self, frames: dict) -> dict:
        """Without checkpoints, the one-process engine's Arrow tables leave memory all the same:
        each goes to a file under the output root that is mapped and then unlinked at once (the
        mapping keeps its pages until the table is dropped, and nothing is left behind)."""
        import tempfile

        root = os.path.dirname(self.base)
        out = {}
        for name, frame in frames.items():
            if self._kind(frame) != "arrow_ipc" or frame.num_rows == 0:
                out[name] = frame
                continue
            os.makedirs(root, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=f".spill-{name}-", suffix=".arrow", dir=root)
            os.close(fd)
            try:
                write_ipc(frame, path)
                out[name] = read_mapped(path)
            finally:
                os.unlink(path)
        return out

    def invalidate_from(self, stage: str) -> None:
        """Forget one stage's checkpoint (the later ones are keyed on it and miss anyway)."""
        shutil.rmtree(self.folder(stage), ignore_errors=True)
