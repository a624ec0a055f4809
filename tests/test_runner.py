"""The one runner (flows/runner.py) without Spark: declared inputs, the accounting check,
checkpoint restore of Arrow frames, the job key, and one BLAS thread per stage."""

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
