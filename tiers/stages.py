"""The tier and select stages under the stage contract (:mod:`connectors.pipeline`).

``TierStage`` puts every ingested document in L0–L4 (dedup removals at L0 with their reason);
``SelectStage`` chooses the training mix for the token budget. The runner
(:mod:`flows.runner`) does checkpoints, retries, artifacts and accounting. See docs/engine.md.
"""

from __future__ import annotations

import os
from typing import Any

from connectors.pipeline import Artifact, Stage, StageContext, StageOutput
from tiers.params import SelectParams
from tiers.policy import TierPolicy

TIER_FRAMES = {
    "documents": "tiered",
    "signals": "signals",
    "units": "units",
    "rejected_units": "rejected_units",
    "refined": "refined",
}  # TierResult field -> pipeline frame


class TierStage(Stage[TierPolicy]):
    """Signals, heuristic filters, quality model and tiers L0–L4. Reads the kept documents, every
    ingested document (dedup removals are L0 with their reason), the dedup removals and, when the
    score stage ran, its scores. A quality model the policy asks to train is trained into
    ``ctx.root/<model_dir>`` first. ``reads``: the frame of documents to tier (``kept`` after
    dedup; ``documents`` when there was none)."""

    name = "tier"
    optional_inputs = ("exact_removed", "near_removed", "scores")
    outputs = tuple(TIER_FRAMES.values())

    def __init__(self, params: TierPolicy, reads: str = "kept", model_dir: str = "models/quality"):
        super().__init__(params)
        self.inputs = tuple(dict.fromkeys((reads, "documents")))
        self.model_dir = model_dir

    def key_files(self) -> list[str]:
        return [getattr(owner, attr) if index is None else owner[index] for owner, attr, index in self.params.paths()]

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        from tiers.stage import prepare_quality_model

        policy = self.params.model_copy(deep=True)
        cv = prepare_quality_model(policy, os.path.join(ctx.root, self.model_dir))
        docs, all_docs, scores = inputs[self.inputs[0]], inputs["documents"], inputs["scores"]
        if ctx.spark is None:
            from curation.dedup_local import combine_removed_local
            from tiers.stage_local import duplicate_reasons_local, tier_stage_local

            removed = combine_removed_local(inputs["exact_removed"], inputs["near_removed"])
            duplicates = duplicate_reasons_local(removed) if removed is not None else None
            result = tier_stage_local(docs, duplicates, policy, all_docs=all_docs, scores=scores, threads=ctx.threads)
        else:
            from curation.near_dedup import combine_removed
            from tiers.stage import duplicate_reasons, tier_stage

            removed = combine_removed(inputs["exact_removed"], inputs["near_removed"])
            duplicates = duplicate_reasons(removed) if removed is not None else None
            result = tier_stage(docs, duplicates, policy, all_docs=all_docs, scores=scores)
        if cv:
            result.stats.details["quality_model_cv"] = cv
        frames = {frame: getattr(result, field) for field, frame in TIER_FRAMES.items()}
        return StageOutput(frames, result.stats, meta={"thresholds": result.thresholds, "counts": result.counts})

    def summary(self, out: StageOutput) -> str:
        return f"tiers {out.stats.details['tiers']}"

    def artifacts(self, out: StageOutput) -> list[Artifact]:
        return [Artifact("tiers-by-source", out.meta["counts"], "documents and tokens per tier and source")]


def tier_result(out: StageOutput):
    """The :class:`tiers.stage.TierResult` of a tier stage's output (fresh or restored)."""
    from tiers.stage import TierResult

    return TierResult(
        **{field: out.frames[frame] for field, frame in TIER_FRAMES.items()},
        stats=out.stats,
        thresholds=out.meta["thresholds"],
        counts=out.meta["counts"],
    )


class SelectStage(Stage[SelectParams]):
    """The training mix for the token budget from the tiered documents (best BETR first when the
    score stage ran). Not checkpointed: it is the last stage and cheap next to the others."""

    name = "select"
    inputs = ("tiered",)
    optional_inputs = ("scores",)
    outputs = ("selected",)
    checkpoint = False

    def __init__(self, params: SelectParams):
        super().__init__(params)

    def key_files(self) -> list[str]:
        return [*self.params.targets, *([self.params.laws] if self.params.laws else [])]

    def run(self, ctx: StageContext, inputs: dict[str, Any]) -> StageOutput:
        from tiers.select_stage import select_stage

        result = select_stage(inputs["tiered"], self.params, seed=ctx.seed, scores=inputs["scores"])
        return StageOutput({"selected": result.documents}, result.stats, objects={"result": result})

    def summary(self, out: StageOutput) -> str:
        from tiers.select_stage import mix_basis

        r = out.objects["result"]
        return (
            f"{mix_basis(r.parameters | {'predicted_accuracy': r.result.predicted_accuracy, 'predicted_loss': r.result.predicted_loss})}, "
            f"{out.stats.details['rows_with_repeats']} rows"
        )

    def artifacts(self, out: StageOutput) -> list[Artifact]:
        mix = out.objects["result"].mix
        return [
            Artifact(
                "selection-mix",
                [{k: m[k] for k in ("pool", "share", "epochs", "tokens", "selected_tokens")} for m in mix],
                f"training mix for {self.params.budget_tokens:,.0f} tokens",
            )
        ]
