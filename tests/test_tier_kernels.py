"""Tier kernels without Spark: knowledge-unit verification, the quality model, the tier policy."""

import json
import os

import numpy as np
import polars as pl
import pytest

from curation.knowledge_units import check_arithmetic, extract_units
from curation.params import QualityModelParams
from curation.quality_model import QualityModel, train_quality_model
from tiers.policy import (
    L2Policy,
    ScoreBar,
    TierPolicy,
    assign_tiers,
    filter_reason,
    resolve_bar,
)


def test_arithmetic_verification_recomputes_every_claim():
    ok = "He has 25 and gets 13, so 25 + 13 = 38. Boxes of 4: 38 / 4 = 9 remainder 2. #### 2"
    assert check_arithmetic(ok, "2")[0]
    assert check_arithmetic(ok.replace("= 38.", "= 37."), "2") == (False, "arithmetic_wrong: 25 + 13 = 37")
    assert check_arithmetic(ok.replace("remainder 2", "remainder 5"), "2")[0] is False  # r must be < divisor and add up
    assert check_arithmetic(ok, "3")[1] == "answer_not_derived: 3"
    assert check_arithmetic("No numbers here.", "1") == (False, "no_checkable_arithmetic")
    gsm = "Natalia sold 48/2 = <<48/2=24>>24 clips in May, 48+24 = <<48+24=72>>72 in all."
    assert check_arithmetic(gsm, "72")[0]
    assert not check_arithmetic(gsm.replace("<<48+24=72>>", "<<48+24=71>>"), "72")[0]
    assert check_arithmetic("3 x 4 = 12 and 1,200 - 200 = 1,000", "1000")[0]
    assert not check_arithmetic("<<__import__('os')=1>>", "1")[0]  # not an arithmetic expression: never evaluated


def test_units_carry_provenance_spans():
    text = (
        "Intro line.\nQuestion: Ann has 3 cats and gets 4 more. How many?\nSolution: 3 + 4 = 7. #### 7\n"
        "Photosynthesis refers to the process by which plants turn light into sugar."
    )
    units = extract_units("doc-1", text)
    kinds = {u["kind"]: u for u in units}
    ws = kinds["worked_solution"]
    assert ws["verified"] and text[ws["start"] : ws["end"]].startswith("Question: Ann") and text[ws["start"] : ws["end"]].endswith("#### 7")
    d = kinds["definition"]
    assert text[d["start"] : d["end"]].startswith("Photosynthesis refers to") and not d["verified"]
    assert all(u["id"] == "doc-1" and u["unit_id"].startswith("doc-1#") for u in units)
    assert "qa" not in kinds  # the worked solution's question is not counted twice


def test_quality_model_roundtrip_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    good = [" ".join(rng.choice(["the", "river", "valley", "history", "people", "settled", "farming", "records"], 40)) + "." for _ in range(40)]
    bad = [" ".join(rng.choice(["click", "here", "buy", "now", "cheap", "login", "cart", "menu"], 12)) for _ in range(40)]
    model = train_quality_model(good, bad, QualityModelParams(folds=4, n_features=1 << 12))
    assert model.meta["cross_validation"]["auc_mean"] > 0.95
    model.save(str(tmp_path / "m"))
    assert sorted(os.listdir(tmp_path / "m")) == ["model.json", "weights.npz"]
    again = QualityModel.load(str(tmp_path / "m"))
    np.testing.assert_allclose(again.score(good[:5] + bad[:5]), model.score(good[:5] + bad[:5]), rtol=1e-6)
    assert (again.score(good[:5]) > again.score(bad[:5]).max()).all()
    # a pickled object array in the weights file is refused, not loaded
    np.savez(tmp_path / "m" / "weights.npz", index=np.array([object()], dtype=object), value=np.zeros(1))
    with pytest.raises(ValueError):
        QualityModel.load(str(tmp_path / "m"))
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["format"] = "something-else"
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a tierlake quality model"):
        QualityModel.load(str(tmp_path / "m"))


def _signals(**cols):
    n = len(next(iter(cols.values())))
    base = {
        "duplicate_reason": [None] * n,
        "filter_reason": [None] * n,
        "quality_score": [0.9] * n,
        "target_similarity": [0.5] * n,
        "source": ["s"] * n,
    }
    base.update(cols)
    return pl.DataFrame(base, schema_overrides={"duplicate_reason": pl.String, "filter_reason": pl.String})


def test_policy_tiers_and_reasons():
    policy = TierPolicy()
    sig = _signals(
        duplicate_reason=["near_duplicate of x", None, None, None, None, None],
        filter_reason=[None, "gopher_short_doc", None, None, None, None],
        quality_score=[0.99, 0.99, 0.3, 0.7, 0.95, None],
        target_similarity=[0.9, 0.9, 0.9, 0.9, 0.1, 0.9],
    )
    out = assign_tiers(sig, policy, {"l2": 0.5, "l3_quality": 0.8, "l3_alignment": 0.4})
    assert out["tier"].to_list() == ["L0", "L0", "L1", "L2", "L2", "L1"]
    reasons = out["tier_reasons"].to_list()
    assert reasons[0] == ["near_duplicate of x"] and reasons[1] == ["gopher_short_doc"]
    assert reasons[2] == ["quality_score 0.3 < 0.5"]
    assert reasons[3] == ["l3 quality_score 0.7 < 0.8"]
    assert reasons[4] == ["target_similarity 0.1 < 0.4"]
    assert reasons[5] == ["quality_score: no quality model configured"]
    # re-thresholding is the same function with other numbers: no signal is recomputed
    looser = assign_tiers(sig, policy, {"l2": 0.2, "l3_quality": 0.2, "l3_alignment": 0.0})
    assert looser["tier"].to_list() == ["L0", "L0", "L3", "L3", "L3", "L1"]


def test_score_bars():
    assert resolve_bar(ScoreBar(threshold=0.3), lambda p: 1 / 0) == 0.3
    assert resolve_bar(ScoreBar(top_fraction=0.1), lambda p: p) == pytest.approx(0.9)
    assert resolve_bar(ScoreBar(top_fraction=0.1), lambda p: None) == float("inf")
    assert L2Policy(top_fraction=0.2).threshold is None and L2Policy().threshold == 0.5
    with pytest.raises(ValueError):
        ScoreBar(threshold=0.1, top_fraction=0.1)


def test_source_filters_replace_defaults_for_their_source():
    policy = TierPolicy.model_validate({"source_filters": {"math": {"gopher_quality": {"min_alpha_words_ratio": 0.5}}}})
    row = {
        c: 0.0
        for c in (
            "fw_newlines_per_word",
            "fw_dup_line_char_frac",
            "fw_short_lines_frac",
            "dup_para_frac",
            "dup_para_char_frac",
            "dup_line_frac",
            "dup_line_char_frac",
            "top_2gram_char_frac",
            "top_3gram_char_frac",
            "top_4gram_char_frac",
            *(f"dup_{n}gram_char_frac" for n in range(5, 11)),
            "hash_per_word",
            "ellipsis_per_word",
            "bullet_lines_frac",
            "ellipsis_lines_frac",
        )
    }
    row.update(
        n_non_symbol_words=80,
        mean_word_length=4.0,
        alpha_words_frac=0.6,
        stop_words=3,
        c4_lorem_ipsum=False,
        c4_curly_bracket=False,
        c4_sentences=6,
        fw_line_punct_frac=0.9,
        lang="en",
        lang_score=0.9,
    )
    df = pl.DataFrame([{**row, "source": "math"}, {**row, "source": "web"}])
    assert df.select(filter_reason(policy))["filter_reason"].to_list() == [None, "gopher_below_alpha_threshold"]
