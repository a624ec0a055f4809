"""Flow parameters follow the stage models' defaults (the drifts issue 19 found, each caught here)."""
import pytest

from curation.betr_stage import ScoreParams
from curation.near_dedup import NearDedupParams
from curation.stages import NearDedupStage
from flows.stage_flows import dedup_flow, score_flow, tier_flow


@pytest.fixture
def captured_jobs(monkeypatch):
    """The (job, kwargs) each flow hands to its job function, without running it."""
    import flows.spark_submit

    seen = []

    def fake_job_function(job):
        def run(**kwargs):
            seen.append((job, kwargs))
            return {"stages": []}
        return run

    monkeypatch.setattr(flows.spark_submit, "job_function", fake_job_function)
    return seen


def test_dedup_flow_banding_follows_the_threshold(captured_jobs):
    # the flow takes the stage's model: its banding follows the threshold as the CLI's does
    dedup_flow.fn("in", "out", near=NearDedupParams(threshold=0.7))
    job, kwargs = captured_jobs[-1]
    assert job == "dedup" and kwargs["near"].banding() == NearDedupParams(threshold=0.7).banding()
    assert NearDedupParams(threshold=0.7).banding() != NearDedupParams(threshold=0.8).banding()
    # and the stage key hashes the model (banding included), so a new threshold reruns the stage
    assert NearDedupStage(NearDedupParams(threshold=0.7)).key_params() != NearDedupStage(NearDedupParams()).key_params()
    given = NearDedupParams(threshold=0.7, bands=14, rows=8)
    assert given.banding() == (14, 8)


def test_score_flow_samples_what_the_stage_samples(captured_jobs):
    score_flow.fn("in", "out", ScoreParams(targets=["t.jsonl"]))
    assert captured_jobs[-1][1]["params"].sample == ScoreParams().sample


def test_flow_parameters_are_the_stage_models():
    """Prefect validates the models and shows their fields in the UI: the schema of each flow's
    parameters holds the models' fields with their defaults."""
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(dedup_flow.fn).model_dump()
    near = schema["definitions"]["NearDedupParams"]["properties"]
    assert near["threshold"]["default"] == NearDedupParams().threshold
    assert "TierPolicy" in parameter_schema(tier_flow.fn).model_dump()["definitions"]


def test_tier_with_a_recipe_dedups_with_the_recipes_parameters(tmp_path, monkeypatch):
    import flows.tier_job
    from flows.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  exact_dedup: {keep: {rule: longest}}\n  near_dedup: {threshold: 0.9, num_perm: 64}\n"
                      "  tier: {enabled: true}\n")
    (tmp_path / "in.jsonl").write_text('{"text": "a b c"}\n')
    seen = {}

    def fake_run_tier(input_path, output, policy, **kwargs):
        seen.update(kwargs)
        return {}

    monkeypatch.setattr(flows.tier_job, "run_tier", fake_run_tier)
    main(["--quiet", "tier", str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "--recipe", str(recipe)])
    assert seen["near_params"].threshold == 0.9 and seen["near_params"].num_perm == 64
    assert seen["exact_params"].keep.rule == "longest"
    seen.clear()
    main(["--quiet", "tier", str(tmp_path / "in.jsonl"), str(tmp_path / "out")])
    assert seen["near_params"] is None  # no recipe: the stage defaults


# (command and its required arguments, CLI destination, model, field): every option that sets a
# parameters model's field defaults to the model's own default (the CLI takes them from
# curation.params / tiers.params through flows.cli.model_option; this catches an option that
# goes back to a literal of its own).
CLI_MODEL_DEFAULTS = [
    (["dedup", "in", "out"], "threshold", "curation.near_dedup:NearDedupParams", "threshold"),
    (["dedup", "in", "out"], "num_perm", "curation.near_dedup:NearDedupParams", "num_perm"),
    (["dedup", "in", "out"], "ngram", "curation.near_dedup:NearDedupParams", "ngram"),
    (["dedup", "in", "out"], "unit", "curation.near_dedup:NearDedupParams", "unit"),
    (["dedup", "in", "out"], "verify", "curation.near_dedup:NearDedupParams", "verify"),
    (["dedup", "in", "out"], "seed", "curation.near_dedup:NearDedupParams", "seed"),
    (["score", "in", "out", "--targets", "t"], "sample", "curation.betr_stage:ScoreParams", "sample"),
    (["score", "in", "out", "--targets", "t"], "top_p", "curation.betr_stage:ScoreParams", "top_p"),
    (["score", "in", "out", "--targets", "t"], "embedder", "curation.betr_stage:ScoreParams", "embedder"),
    (["score", "in", "out", "--targets", "t"], "mode", "curation.betr_stage:ScoreParams", "mode"),
    (["score", "in", "out", "--targets", "t"], "ngram", "curation.betr_stage:ScoreParams", "ngram"),
    (["score", "in", "out", "--targets", "t"], "seed", "curation.betr_stage:ScoreParams", "seed"),
    (["containment", "lake", "out"], "min_ratio", "curation.containment_stage:ContainmentParams", "min_ratio"),
    (["containment", "lake", "out"], "sample", "curation.containment_stage:ContainmentParams", "sample"),
    (["containment", "lake", "out"], "seed", "curation.containment_stage:ContainmentParams", "seed"),
    (["select", "run", "out", "--budget", "1e6"], "max_epochs", "tiers.select_stage:SelectParams", "max_epochs"),
    (["select", "run", "out", "--budget", "1e6"], "alignment_weight", "tiers.select_stage:SelectParams", "alignment_weight"),
    (["select", "run", "out", "--budget", "1e6"], "embedder", "tiers.select_stage:SelectParams", "embedder"),
    (["select", "run", "out", "--budget", "1e6"], "seed", "tiers.select_stage:SelectParams", "seed"),
    (["train-quality", "m", "--positive", "p", "--negative", "n"], "folds", "curation.quality_model:QualityModelParams", "folds"),
    (["train-quality", "m", "--positive", "p", "--negative", "n"], "C", "curation.quality_model:QualityModelParams", "C"),
    (["train-quality", "m", "--positive", "p", "--negative", "n"], "seed", "curation.quality_model:QualityModelParams", "seed"),
]


@pytest.mark.parametrize("argv,dest,model,field", CLI_MODEL_DEFAULTS, ids=[f"{a[0]}-{d}" for a, d, _, _ in CLI_MODEL_DEFAULTS])
def test_cli_defaults_are_the_models_defaults(argv, dest, model, field):
    import importlib

    from flows.cli import build_parser

    module, name = model.split(":")
    params = getattr(importlib.import_module(module), name)
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == params.model_fields[field].get_default(call_default_factory=True)
