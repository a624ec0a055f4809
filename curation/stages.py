"""The document stages of :mod:`curation` under the stage contract (:mod:`connectors.pipeline`):
ingest, exact dedup, near dedup, BETR score, and the containment scan of a table lake.

Each class only binds a stage function (Spark when ``ctx.spark`` is set, else the one-process
engine's Arrow function) to the frames it reads and writes; the runner (:mod:`flows.runner`)
does checkpoints, retries, artifacts and accounting. See docs/engine.md.
"""

from __future__ import annotations

import os
from typing import Any

from connectors.accounting import StageStats
from connectors.pipeline import Artifact, Stage, StageContext, StageOutput
from connectors.sources import IngestParams, SourceSpec
from curation.params import ContainmentParams, ExactDedupParams, NearDedupParams, ScoreParams


def _known_in_arrow(ctx: StageContext, upstream: str, docs) -> tuple[int, int]:
    """(documents, tokens) of an Arrow table: the upstream stage's counts when it ran here."""
    known = ctx.known_in(upstream)
    if known is not None:
        return known
    import pyarrow.compute as pc

    return docs.num_rows, int(pc.sum(docs.column("token_count")).as_py() or 0)


class IngestStage(Stage[IngestParams]):
    """Read every source into documents + quarantine (file, line and reason of each bad record)."""

    name = "ingest"
    outputs = ("documents", "quarantine")

    def __init__(self, params: IngestParams, sources: list[SourceSpec]):
        super().__init__(params)
        self.sources = sources

    def key_params(self) -> dict:
        return {"sources": [s.model_dump(mode="json") for s in self.sources], "params": self.params.model_dump(mode="json")}

    def key_files(self) -> list[str]:
        return [s.path for s in self.sources]

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        if ctx.spark is None:
            from connectors.local_ingest import ingest_local

            docs, quarantine, files, stats = ingest_local(self.sources, self.params, ctx.threads)
        else:
            from connectors.sources import ingest

            docs, quarantine, files, stats = ingest(ctx.spark, self.sources, self.params)
        return StageOutput({"documents": docs, "quarantine": quarantine}, stats, meta={"inputs": files})


class ExactDedupStage(Stage[ExactDedupParams]):
    """Exact duplicates (normalized text hash); ``index_exact_keys``: keys of earlier batches."""

    name = "exact_dedup"
    inputs = ("documents",)
    optional_inputs = ("index_exact_keys",)
    outputs = ("exact_kept", "exact_removed", "exact_keys")

    def __init__(self, params: ExactDedupParams):
        super().__init__(params)

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        docs, index_keys = inputs["documents"], inputs["index_exact_keys"]
        if ctx.spark is None:
            from curation.dedup_local import exact_dedup_stage_local

            kept, removed, stats, keys = exact_dedup_stage_local(docs, self.params, index_keys, _known_in_arrow(ctx, "ingest", docs), ctx.threads)
        else:
            from curation.exact_dedup import exact_dedup_stage

            kept, removed, stats = exact_dedup_stage(docs, self.params, index_keys, known_in=ctx.known_in("ingest"))
            keys = None
        return StageOutput({"exact_kept": kept, "exact_removed": removed, "exact_keys": keys}, stats)


class NearDedupStage(Stage[NearDedupParams]):
    """MinHash-LSH near duplicates; ``index_bands``/``index_texts``: earlier batches' band keys and
    texts. The band rows are kept with the checkpoint only when ``keep_band_rows`` (the dedup
    index needs them); else they are a transient output (None after a restore)."""

    name = "near_dedup"
    inputs = ("exact_kept",)
    optional_inputs = ("index_bands", "index_texts")
    outputs = ("kept", "near_removed", "band_rows")

    def __init__(self, params: NearDedupParams, keep_band_rows: bool = False):
        super().__init__(params)
        self.keep_band_rows = keep_band_rows

    def key_params(self) -> dict:
        bands, rows = self.params.banding()
        return {**self.params.model_dump(mode="json"), "banding": [bands, rows], "keep_band_rows": self.keep_band_rows}

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        docs = inputs["exact_kept"]
        if ctx.spark is None:
            from curation.dedup_local import near_dedup_stage_local

            kept, removed, stats, bands = near_dedup_stage_local(
                docs, self.params, inputs["index_bands"], inputs["index_texts"], _known_in_arrow(ctx, "exact_dedup", docs), ctx.threads
            )
        else:
            from curation.near_dedup import NearDedupIndex, near_dedup_stage

            index = NearDedupIndex(inputs["index_bands"], inputs["index_texts"]) if inputs["index_bands"] is not None else None
            kept, removed, stats, bands = near_dedup_stage(docs, self.params, index, known_in=ctx.known_in("exact_dedup"))
        return StageOutput({"kept": kept, "near_removed": removed, "band_rows": bands}, stats)

    @property
    def transient_outputs(self) -> tuple[str, ...]:
        return () if self.keep_band_rows else ("band_rows",)


class ScoreStage(Stage[ScoreParams]):
    """BETR scores and decontamination flags of the documents in frame ``reads`` (the kept ones in
    curate; the ingested ones in ``tierlake score``); the sample and the classifier are kept with
    the checkpoint (no pickle: the model's own save format)."""

    name = "score"
    outputs = ("scores",)

    def __init__(self, params: ScoreParams, reads: str = "kept"):
        super().__init__(params)
        self.inputs = (reads,)

    def key_files(self) -> list[str]:
        return [*self.params.targets, *self.params.decontaminate]

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        if ctx.spark is None:
            from curation.betr_local import score_stage_local

            result = score_stage_local(inputs[self.inputs[0]], self.params, ctx.threads)
        else:
            from curation.betr_stage import score_stage

            result = score_stage(inputs[self.inputs[0]], self.params)
        return StageOutput(
            {"scores": result.scores},
            result.stats,
            objects={"result": result},
            meta={"evaluation": result.evaluation, "has_sample": result.sample is not None, "has_model": result.model is not None},
        )

    def checkpoint_files(self, out: StageOutput, folder: str) -> dict[str, str]:
        import pyarrow.parquet as pq

        result, files = out.objects["result"], {}
        if result.sample is not None:
            pq.write_table(result.sample, os.path.join(folder, "sample.parquet"))
            files["sample.parquet"] = os.path.join(folder, "sample.parquet")
        if result.model is not None:
            result.model.save(os.path.join(folder, "model"))
            files["model"] = os.path.join(folder, "model")
        return files

    def restore(self, ctx, frames, meta, folder) -> StageOutput:
        import pyarrow.parquet as pq

        from curation.betr_stage import ScoreResult
        from curation.quality_model import QualityModel

        out = super().restore(ctx, frames, meta, folder)
        sample = pq.read_table(os.path.join(folder, "sample.parquet")) if meta["has_sample"] else None
        model = QualityModel.load(os.path.join(folder, "model")) if meta["has_model"] else None
        out.objects["result"] = ScoreResult(scores=frames["scores"], sample=sample, model=model, stats=out.stats, evaluation=meta["evaluation"])
        return out

    def summary(self, out: StageOutput) -> str:
        ev = out.meta.get("evaluation", {})
        return f"{out.stats.docs_out} documents, held-out AUC {ev.get('heldout_auc')}, {ev.get('contaminated', 0)} contaminated"


class ContainmentStage(Stage[ContainmentParams]):
    """R2D2 containment of the tables of ``lake`` (tables, not documents: 0 documents in and out);
    writes ``output`` (default ``ctx.root/containment/``): edges.parquet, funnel.json, report.md."""

    name = "containment"
    checkpoint = False  # it keeps its own catalog cache; the funnel is cheap once cached

    def __init__(self, params: ContainmentParams, lake: str, output: str | None = None):
        super().__init__(params)
        self.lake = lake
        self.output = output

    def key_params(self) -> dict:
        return {"lake": self.lake, **self.params.model_dump(mode="json")}

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        from curation.containment_stage import run_containment

        res = run_containment(self.lake, self.output or os.path.join(ctx.root, "containment"), self.params)
        f = res["funnel"]
        stats = StageStats(
            name="containment",
            docs_in=0,
            docs_out=0,
            tokens_in=0,
            tokens_out=0,
            seconds=f["seconds"],
            details={
                "tables": f["tables"],
                "edges": len(res["edges"]),
                "funnel": f["stages"],
                "pruned_before_verification_pct": f["pruned_before_verification_pct"],
                "files": ["containment/edges.parquet", "containment/funnel.json", "containment/report.md"],
            },
        )
        return StageOutput({}, stats, objects={"result": res})

    def summary(self, out: StageOutput) -> str:
        return f"{out.stats.details['tables']} tables, {out.stats.details['edges']} edges"

    def artifacts(self, out: StageOutput) -> list[Artifact]:
        f = out.objects["result"]["funnel"]
        return [
            Artifact(
                "containment-funnel",
                [{"stage": s["stage"], "pairs left": s["pairs_left"], "seconds": s["seconds"]} for s in f["stages"]],
                f"containment funnel over {f['tables']} tables",
            )
        ]
