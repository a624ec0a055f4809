"""Flow parameters follow the stage models' defaults (the drifts issue 19 found, each caught here)."""
import inspect

from curation.betr_stage import ScoreParams
from curation.near_dedup import NearDedupParams
from flows.stage_flows import dedup_argv, dedup_flow, score_argv, score_flow


def test_dedup_flow_banding_follows_the_threshold():
    # no banding given: the CLI picks it from the threshold, as NearDedupParams.banding() does
    assert inspect.signature(dedup_flow.fn).parameters["bands"].default is None
    argv = dedup_argv("in", "out", 0.7, 112, None, None, "text")
    assert "--bands" not in argv and "--rows" not in argv
    assert NearDedupParams(threshold=0.7).banding() != NearDedupParams(threshold=0.8).banding()
    given = dedup_argv("in", "out", 0.7, 112, 14, 8, "text")
    assert given[given.index("--bands") + 1] == "14" and given[given.index("--rows") + 1] == "8"


def test_score_flow_samples_what_the_stage_samples():
    assert inspect.signature(score_flow.fn).parameters["sample"].default is None
    argv = score_argv("in", "out", ["t.jsonl"], None, None)
    assert argv[argv.index("--sample") + 1] == str(ScoreParams().sample)
    assert "--decontaminate" not in argv
    assert score_argv("in", "out", ["t.jsonl"], ["x.jsonl"], 500)[-2:] == ["--decontaminate", "x.jsonl"]


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
