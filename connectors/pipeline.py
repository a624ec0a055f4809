"""The stage contract: every tierlake stage is a :class:`Stage` — a name, a pydantic parameters
model, the frames it reads and writes, and ``run(ctx, inputs) -> StageOutput(frames, stats)``.

In the spirit of datatrove's ``PipelineStep`` + executor: a stage only computes; the one runner
(:func:`flows.runner.run_stages`) restores and saves checkpoints, retries transient failures,
publishes Prefect artifacts, logs and checks that documents in = kept + removed + quarantined.
Frames are Spark DataFrames (``ctx.spark`` set) or Arrow tables (the one-process engine,
``ctx.spark`` None). See docs/engine.md ("Stages and the runner").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from connectors.accounting import StageStats


@dataclass
class StageContext:
    """What every stage of one run shares."""

    root: str  # the run's output folder (local)
    run_id: str = ""
    seed: int = 0
    spark: Any = None  # SparkSession, or None for the one-process engine
    threads: int = 1  # the one-process engine's threads
    stats: dict[str, StageStats] = field(default_factory=dict)  # earlier stages' stats, by stage name

    def known_in(self, upstream: str) -> tuple[int, int] | None:
        """(documents, tokens) the ``upstream`` stage passed on, when it ran in this pipeline."""
        stats = self.stats.get(upstream)
        return stats.output_counts if stats is not None else None


@dataclass
class StageOutput:
    """A stage's result: named frames (None = nothing), its stats, small JSON results kept with
    the checkpoint (``meta``) and Python objects (``objects``: not stored; a stage that has them
    writes what rebuilds them in :meth:`Stage.checkpoint_files` and rebuilds them in
    :meth:`Stage.restore`)."""

    frames: dict[str, Any]
    stats: StageStats
    meta: dict = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)


@dataclass
class Artifact:
    """A Prefect table artifact a stage publishes beside its stats."""

    key: str
    rows: list[dict]
    description: str


P = TypeVar("P", bound=BaseModel)


class Stage(Generic[P]):
    """One step of a pipeline. Subclasses set ``name``, ``inputs`` (frames read, all required),
    ``optional_inputs`` (None when absent) and ``outputs``, and implement :meth:`run`."""

    name: ClassVar[str]
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    checkpoint: ClassVar[bool] = True  # False: cheap or side-effect stages the runner always runs

    def __init__(self, params: P):
        self.params = params

    @property
    def transient_outputs(self) -> tuple[str, ...]:
        """Outputs not kept with the checkpoint (None after a restore)."""
        return ()

    def key_params(self) -> dict:
        """What the checkpoint key hashes: the parameters model (plus anything a subclass adds)."""
        return self.params.model_dump(mode="json")

    def key_files(self) -> list[str]:
        """Files whose fingerprints (path, size, mtime) join the key: a changed file reruns the stage."""
        return []

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        raise NotImplementedError

    def checkpoint_files(self, out: StageOutput, folder: str) -> dict[str, str]:
        """Write files kept with the checkpoint (e.g. a trained model) into ``folder``; returns
        name -> path. None by default."""
        return {}

    def restore(self, ctx: StageContext, frames: dict[str, Any], meta: dict, folder: str) -> StageOutput:
        """The output of a completed earlier run from its checkpoint (frames read back, ``meta``,
        the files of :meth:`checkpoint_files` under ``folder``)."""
        stats = StageStats.model_validate(meta["stats"])
        stats.details["restored_from_checkpoint"] = True
        frames = {**frames, **{n: None for n in self.transient_outputs}}
        return StageOutput(frames=frames, stats=stats, meta={k: v for k, v in meta.items() if k != "stats"})

    def summary(self, out: StageOutput) -> str:
        """One log line about the result."""
        s = out.stats
        parts = [f"{s.docs_out} of {s.docs_in} documents out"]
        if s.removed:
            parts.append(f"removed {dict(sorted(s.removed.items()))}")
        if s.quarantined:
            parts.append(f"quarantined {dict(sorted(s.quarantined.items()))}")
        return ", ".join(parts)

    def artifacts(self, out: StageOutput) -> list[Artifact]:
        """Extra Prefect tables beside the stats table (none by default)."""
        return []
