"""The one runner (flows/runner.py) without Spark: declared inputs, the accounting check,
checkpoint restore of Arrow frames, the job key, and one BLAS thread per stage."""

import os

import pyarrow as pa
import pytest
from pydantic import BaseModel
from threadpoolctl import threadpool_info, threadpool_limits

from connectors.accounting import StageStats
from connectors.checkpoints import Checkpoints
from connectors.pipeline import Stage, StageContext, StageOutput
from connectors.spark_session import SparkSettings, session_conf
from flows.runner import pipeline_key, run_stages


class Params(BaseModel):
    keep_every: int = 2


class EveryOther(Stage[Params]):
    name = "every_other"
    inputs = ("documents",)
    outputs = ("kept",)
    runs = 0

    def run(self, ctx, inputs):
        EveryOther.runs += 1
        docs = inputs["documents"]
        kept = docs.filter(pa.array([i % self.params.keep_every == 0 for i in range(docs.num_rows)]))
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return StageOutput(
            {"kept": kept},
            StageStats(name=self.name, docs_in=docs.num_rows, docs_out=kept.num_rows, removed={"odd": docs.num_rows - kept.num_rows}),
            meta={"blas": blas},
        )


def test_runner_checkpoints_restores_and_keys(tmp_path):
    docs = pa.table({"id": [f"d{i}" for i in range(10)]})
    ctx = StageContext(root=str(tmp_path))
    ck = Checkpoints(str(tmp_path), enabled=True)
    with threadpool_limits(limits=2, user_api="blas"):
        first = run_stages([EveryOther(Params())], ctx, ck, {"documents": docs})
    assert first.frames["kept"].num_rows == 5 and EveryOther.runs == 1
    assert set(first.outputs["every_other"].meta["blas"]) <= {1}  # one BLAS thread inside a stage
    again = run_stages([EveryOther(Params())], StageContext(root=str(tmp_path)), ck, {"documents": docs})
    assert EveryOther.runs == 1 and again.outputs["every_other"].stats.details["restored_from_checkpoint"]
    assert again.frames["kept"].equals(first.frames["kept"])
    changed = run_stages([EveryOther(Params(keep_every=3))], StageContext(root=str(tmp_path)), ck, {"documents": docs})
    assert EveryOther.runs == 2 and changed.frames["kept"].num_rows == 4
    assert pipeline_key([EveryOther(Params())]) != pipeline_key([EveryOther(Params(keep_every=3))])
    assert pipeline_key([EveryOther(Params())], engine="local") != pipeline_key([EveryOther(Params())], engine="spark")


def test_a_checkpointed_arrow_table_is_mapped_from_its_file(tmp_path):
    """The one-process engine's stage outputs go to uncompressed Arrow IPC files and come back
    memory-mapped (no bytes from Arrow's allocator), so a finished stage's tables can leave memory."""
    ck = Checkpoints(str(tmp_path), enabled=True)
    table = pa.table({"id": [f"d{i}" for i in range(100_000)], "text": ["x" * 50] * 100_000})
    before = pa.total_allocated_bytes()
    saved = ck.save("stage", "key", {"kept": table, "none": None}, {"stats": {}})
    assert saved["kept"].equals(table) and saved["none"] is None
    assert pa.total_allocated_bytes() - before < 1 << 20  # the 5.6 MB of text are the file's pages
    frames, _meta = ck.load("stage", "key")
    assert frames["kept"].equals(table) and frames["none"] is None


def test_without_checkpoints_the_local_engines_tables_are_mapped_from_unlinked_files(tmp_path):
    """With checkpoints off (resume: false, s3 outputs) a one-process stage's outputs still leave
    the process's memory: spilled to a file under the output root, mapped, the file unlinked."""
    docs = pa.table({"id": [f"d{i}" for i in range(100_000)]})
    before = pa.total_allocated_bytes()
    result = run_stages([EveryOther(Params())], StageContext(root=str(tmp_path)), Checkpoints(str(tmp_path), enabled=False), {"documents": docs})
    kept = result.frames["kept"]
    assert kept.num_rows == 50_000 and kept.column("id").to_pylist()[:2] == ["d0", "d2"]
    assert pa.total_allocated_bytes() - before < 1 << 20  # the kept ids are the mapped file's pages
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_runner_refuses_a_missing_input_and_bad_accounting(tmp_path):
    with pytest.raises(RuntimeError, match="needs \\['documents'\\]"):
        run_stages([EveryOther(Params())], StageContext(root=str(tmp_path)))

    class Leaky(EveryOther):
        def run(self, ctx, inputs):
            out = super().run(ctx, inputs)
            out.stats.docs_out += 1  # one document unaccounted for
            return out

    with pytest.raises(ValueError, match="documents in"):
        run_stages([Leaky(Params())], StageContext(root=str(tmp_path)), frames={"documents": pa.table({"id": ["a", "b"]})})


def test_spark_python_workers_get_one_blas_thread():
    conf = session_conf(SparkSettings())
    assert {conf[f"spark.executorEnv.{v}"] for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")} == {"1"}


def test_a_stage_is_retried_for_a_transient_failure_but_not_for_a_user_error_or_out_of_memory():
    """An out-of-memory error in local mode killed the JVM the retry would use: the retry failed on
    the dead session's temporary files, and that error reached the user instead of the memory advice."""
    from connectors.filesystem import InputError
    from flows.runner import is_out_of_memory, retry_unless_user_error

    class Failed:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    spark_oom = RuntimeError(
        "An error occurred while calling o622.count.\n: org.apache.spark.SparkException: Job aborted "
        "due to stage failure: Lost task 1.0: java.lang.OutOfMemoryError: Java heap space"
    )
    assert retry_unless_user_error(None, None, Failed(ConnectionResetError("executor lost")))
    assert not retry_unless_user_error(None, None, Failed(InputError("input not found: x")))
    assert not retry_unless_user_error(None, None, Failed(spark_oom))
    try:
        try:
            raise spark_oom
        except RuntimeError as inner:
            raise ValueError("stage ingest failed") from inner
    except ValueError as outer:
        assert is_out_of_memory(outer)
    assert not is_out_of_memory(ValueError("bad value"))
    from flows.errors import OutOfMemory

    assert not retry_unless_user_error(None, None, Failed(OutOfMemory("stage ingest: java.lang.OutOfMemoryError")))


def test_a_stage_whose_spark_died_fails_as_out_of_memory_not_retried():
    """In local mode an OOM kills the JVM first: Python sees only a lost Py4J connection."""
    from connectors.pipeline import Stage, StageContext
    from flows.errors import OutOfMemory
    from flows.runner import _execute

    class Py4JNetworkError(Exception):  # py4j.protocol's, by name: the check needs no JVM
        pass

    class DyingStage(Stage[Params]):
        name = "ingest"

        def run(self, ctx, inputs):
            raise Py4JNetworkError("Error while sending or receiving")

    with pytest.raises(OutOfMemory, match="Spark's JVM stopped"):
        _execute(DyingStage(Params()), StageContext(root="."), {}, None, "k")


def test_stages_allocate_from_jemalloc_unless_the_user_chose_a_pool(monkeypatch):
    import pyarrow as pa

    from connectors.arrow_memory import use_jemalloc

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        assert use_jemalloc() == before.backend_name  # the user's choice stands
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        try:
            pa.jemalloc_memory_pool()
        except NotImplementedError:
            pytest.skip("this pyarrow build has no jemalloc")
        assert use_jemalloc() == "jemalloc" == pa.default_memory_pool().backend_name
    finally:
        pa.set_memory_pool(before)
