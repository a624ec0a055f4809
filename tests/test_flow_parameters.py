"""Flow parameters follow the stage models' defaults (the drifts issue 19 found, each caught here)."""

import pytest

from curation.params import ContainmentParams, NearDedupParams, QualityModelParams, ScoreParams
from curation.stages import NearDedupStage
from flows.stage_flows import dedup_flow, score_flow, tier_flow
from tiers.params import SelectParams


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
    recipe.write_text("stages:\n  exact_dedup: {keep: {rule: longest}}\n  near_dedup: {threshold: 0.9, num_perm: 64}\n  tier: {enabled: true}\n")
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


# Every CLI option that sets a parameters model's field defaults to the model's own default (the
# CLI takes them from curation.params / tiers.params through flows.cli.model_option; this catches an
# option that goes back to a literal of its own). Per command: its required arguments, the model,
# and the fields whose options share the field's name.
CLI_MODEL_OPTIONS = [
    (["dedup", "in", "out"], NearDedupParams, ["threshold", "num_perm", "ngram", "unit", "verify", "seed"]),
    (["score", "in", "out", "--targets", "t"], ScoreParams, ["sample", "top_p", "embedder", "mode", "ngram", "seed"]),
    (["containment", "lake", "out"], ContainmentParams, ["min_ratio", "sample", "seed"]),
    (["select", "run", "out", "--budget", "1e6"], SelectParams, ["max_epochs", "alignment_weight", "embedder", "seed"]),
    (["train-quality", "m", "--positive", "p", "--negative", "n"], QualityModelParams, ["folds", "C", "seed"]),
]
CLI_MODEL_DEFAULTS = [(argv, model, field) for argv, model, fields in CLI_MODEL_OPTIONS for field in fields]


@pytest.mark.parametrize("argv,model,field", CLI_MODEL_DEFAULTS, ids=[f"{a[0]}-{f}" for a, _, f in CLI_MODEL_DEFAULTS])
def test_cli_defaults_are_the_models_defaults(argv, model, field):
    from flows.cli import parse

    _, args = parse(argv)
    assert getattr(args, field) == model.model_fields[field].get_default(call_default_factory=True)
