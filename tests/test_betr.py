"""BETR kernels without Spark: benchmark adapters, exact ranks, labels, the classifier,
decontamination and the static embedder."""

import json
import os

import numpy as np
import pytest
from pydantic import ValidationError

from connectors.benchmarks import benchmark_name, load_examples, read_examples, split_of
from connectors.filesystem import InputError
from curation.betr import (
    balanced_bags,
    direct_scores,
    fit_bagged,
    mean_of_rows,
    quota_labels,
    rank_score,
    top_labels,
    train_betr_classifier,
)
from curation.decontamination import benchmark_ngrams, contamination
from curation.params import QualityModelParams
from curation.quality_model import _features
from tests.conftest import shared_path


def test_direct_scores_are_exact_ranks():
    rng = np.random.default_rng(3)
    docs = rng.normal(size=(57, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    targets = rng.normal(size=(13, 8)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    got = direct_scores(docs, targets, block=5)
    sims = targets @ docs.T
    ranks = np.empty_like(sims, dtype=np.int64)
    for i in range(sims.shape[0]):  # brute force: 1 + number of documents strictly more similar
        for j in range(sims.shape[1]):
            ranks[i, j] = 1 + int((sims[i] > sims[i, j]).sum())
    np.testing.assert_array_equal(got["best_rank"], ranks.min(axis=0))
    np.testing.assert_allclose(got["max_sim"], sims.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got["mean_log_rank"], (-np.log2(ranks)).mean(axis=0), rtol=1e-9)
    assert rank_score(np.array([1, 57]))[0] == 1.0


def test_top_labels_take_exactly_top_p_with_tiebreak():
    score = np.array([0.9, 0.5, 0.9, 0.1, 0.7, 0.2, 0.3, 0.4, 0.6, 0.8])
    y = top_labels(score, 0.2, tiebreak=np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], float))
    assert y.sum() == 2 and y[0] == y[2] == 1
    y = top_labels(score, 0.1, tiebreak=np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], float))
    assert list(np.flatnonzero(y)) == [2]


def test_quota_labels_share_the_positives_between_benchmarks():
    rng = np.random.default_rng(5)
    docs = rng.normal(size=(200, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    big = docs[:40] + 0.05 * rng.normal(size=(40, 8)).astype(np.float32)  # 40 examples near documents 0-39
    small = -docs[150:153]  # 3 examples far from every such document
    per = [direct_scores(docs, t / np.linalg.norm(t, axis=1, keepdims=True)) for t in (big, small)]
    y, owner = quota_labels(per, 0.1)
    assert y.sum() == 20 and (owner >= 0).sum() == 20 and (owner == 0).sum() == (owner == 1).sum() == 10
    assert set(np.flatnonzero(owner == 1)) == set(np.flatnonzero(top_labels(rank_score(per[1]["best_rank"]), 0.05, per[1]["max_sim"])))
    union = direct_scores(docs, np.vstack([big, small]) / np.linalg.norm(np.vstack([big, small]), axis=1, keepdims=True))
    assert (owner == 1).sum() > (top_labels(rank_score(union["best_rank"]), 0.1, union["max_sim"]) * (owner == 1)).sum()  # not what the union gives
    one, _ = quota_labels(per[:1], 0.1)  # one benchmark: exactly the top p by its best rank
    np.testing.assert_array_equal(one, top_labels(rank_score(per[0]["best_rank"]), 0.1, tiebreak=per[0]["max_sim"]))


def test_benchmark_names_drop_the_split():
    assert benchmark_name("t/gsm8k_train.jsonl", mmlu_csv=False) == "gsm8k"
    assert benchmark_name("a/hellaswag_val.jsonl.gz", mmlu_csv=False) == "hellaswag"
    assert benchmark_name("x/mmlu/dev/abstract_algebra_dev.csv", mmlu_csv=True) == "mmlu"
    assert benchmark_name("t/mmlu_val/abstract_algebra_val.csv", mmlu_csv=True) == "mmlu"
    assert benchmark_name("d/piqa/valid.jsonl", mmlu_csv=False) == "piqa"
    assert benchmark_name("d/mine/questions.jsonl", mmlu_csv=False) == "mine"


def test_betr_classifier_learns_direct_labels():
    rng = np.random.default_rng(1)
    math = [f"{rng.integers(2, 90)} apples plus {rng.integers(2, 90)} apples equals how many apples in total" for _ in range(60)]
    web = [" ".join(rng.choice(["river", "castle", "music", "festival", "train", "garden", "market", "winter"], 20)) for _ in range(540)]
    labels = np.r_[np.ones(60, int), np.zeros(540, int)]
    model, metrics, crossfit = train_betr_classifier(math + web, labels, 0.1, QualityModelParams(n_features=1 << 14))
    assert metrics["heldout_auc"] > 0.95 and metrics["heldout_precision_at_top_p"] > 0.8
    assert metrics["crossfit_auc"] > 0.95 and metrics["folds"] == 5
    assert model.score(math[:3]).min() > model.score(web[:3]).max()
    assert crossfit.shape == (600,) and crossfit[:60].min() > crossfit[60:].max()


@pytest.mark.parametrize("rows", [1, 2, 5, 9, 17])
def test_mean_of_rows_is_numpys_mean_bit_for_bit(rows):
    rng = np.random.default_rng(rows)
    arrays = [rng.normal(size=1000) * 10.0 ** rng.integers(-8, 8, size=1000) for _ in range(rows)]
    assert np.array_equal(mean_of_rows(arrays), np.mean(arrays, axis=0))


def test_balanced_bags_use_every_negative_once():
    y = np.r_[np.ones(10, int), np.zeros(95, int)]
    idx = np.arange(105)
    bags = balanced_bags(idx, y, np.random.default_rng(0))
    assert len(bags) == 10  # ceil(95 / 10)
    negatives = np.concatenate([b[y[b] == 0] for b in bags])
    assert sorted(negatives) == list(range(10, 105))
    assert all(list(b[y[b] == 1]) == list(range(10)) and (y[b] == 0).sum() <= 10 for b in bags)
    few = balanced_bags(idx[:15], y, np.random.default_rng(0))  # fewer negatives than positives: one bag
    assert len(few) == 1 and list(few[0]) == list(range(15))


def test_crossfit_scores_come_from_models_that_did_not_see_the_document():
    """A sampled document labelled against its content (label noise) keeps a low cross-fitted
    score, where a model refit on the whole sample would hand it its own label back."""
    rng = np.random.default_rng(3)
    math = [f"{rng.integers(2, 90)} apples plus {rng.integers(2, 90)} pears, how many fruits now zq{i}" for i in range(60)]
    web = [
        " ".join(rng.choice(["river", "castle", "music", "festival", "train", "garden", "market", "winter"], 20)) + f" zq{60 + i}" for i in range(540)
    ]
    labels = np.r_[np.ones(60, int), np.zeros(540, int)]
    noisy = 100  # a web page labelled positive: only its unique token zq100 could explain the label
    labels[noisy] = 1
    p = QualityModelParams(n_features=1 << 16, C=100.0)
    _, _, crossfit = train_betr_classifier(math + web, labels, 0.1, p)
    x = _features(math + web, p)
    coef, intercept = fit_bagged(x, labels, np.arange(600), p, np.random.default_rng(0))
    refit = 1 / (1 + np.exp(-(x[noisy] @ coef + intercept)[0]))
    assert refit > 0.5 and crossfit[noisy] < 0.1  # the refit memorized the noisy label; the cross-fit did not
    assert np.median(crossfit[:60]) > 0.9 and np.median(crossfit[60:]) < 0.1
    tiny, metrics, none = train_betr_classifier(math[:3] + web[:50], np.r_[np.ones(3, int), np.zeros(50, int)], 0.1, p)
    assert none is None and "crossfit_auc" not in metrics and tiny.meta["cross_fitted"] is False


def test_decontamination_needs_a_full_13_gram():
    test = ["Natalia sold clips to 48 of her friends in April and then she sold half as many clips in May"]
    grams = benchmark_ngrams(test)
    docs = [
        "Homework: NATALIA sold clips to 48 of her friends in April, and then she sold half!",  # 13+ words, case/punct differ
        "Natalia sold clips to 48 of her friends in April and then",  # 12 words only
        "",
        None,
    ]
    counts = contamination(docs, grams)
    assert counts[0] >= 1 and list(counts[1:]) == [0, 0, 0]


def test_benchmark_adapters(tmp_path):
    (tmp_path / "gsm").mkdir()
    (tmp_path / "gsm" / "train.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2 #### 2"}) + "\n")
    (tmp_path / "gsm" / "test.jsonl").write_text(json.dumps({"question": "2+2?", "answer": "#### 4"}) + "\n")
    (tmp_path / "mmlu_dev.csv").write_text('What is 2+2?,1,2,3,4,D\n"A, quoted",a,b,c,d,A\n')
    (tmp_path / "arc_dev.jsonl").write_text(json.dumps({"query": "Q: sky?", "choices": ["red", "blue"], "gold": 1}) + "\n")
    (tmp_path / "piqa").mkdir()
    (tmp_path / "piqa" / "valid.jsonl").write_text(json.dumps({"goal": "open jar", "sol1": "twist", "sol2": "eat"}) + "\n")
    (tmp_path / "piqa" / "valid-labels.lst").write_text("0\n")
    ex = load_examples(
        [
            str(tmp_path / "gsm" / "train.jsonl"),
            str(tmp_path / "mmlu_dev.csv"),
            str(tmp_path / "arc_dev.jsonl"),
            str(tmp_path / "piqa" / "valid.jsonl"),
        ]
    )
    texts = [e.text for e in ex]
    assert texts[0] == "1+1?\n2 #### 2" and texts[1].endswith("D. 4\nAnswer: D") and texts[2] == "A, quoted\nA. a\nB. b\nC. c\nD. d\nAnswer: A"
    assert texts[3] == "Q: sky? blue" and texts[4] == "open jar twist"
    assert [e.split for e in ex] == ["train", "dev", "dev", "dev", "val"] and ex[0].benchmark == "gsm"
    with pytest.raises(InputError, match="test split"):
        load_examples([str(tmp_path / "gsm")])
    assert len(load_examples([str(tmp_path / "gsm")], role="decontaminate")) == 2
    (tmp_path / "bad_dev.csv").write_text("only,three,fields\n")
    with pytest.raises(InputError, match=r"bad_dev.csv:1: MMLU rows have 6 fields"):
        read_examples(str(tmp_path / "bad_dev.csv"))
    assert split_of("x/hellaswag_val.jsonl") == "val" and split_of("tests.jsonl") == "test" and split_of("contest.jsonl") == "unknown"


def test_shared_benchmarks_load():
    root = shared_path("benchmarks")
    gsm = load_examples([os.path.join(root, "gsm8k", "train.jsonl")])
    mmlu = load_examples([os.path.join(root, "mmlu", "dev"), os.path.join(root, "mmlu", "val")])
    piqa = read_examples(os.path.join(root, "piqa", "valid.jsonl"))
    arc = read_examples(os.path.join(root, "llm_foundry_eval", "world_knowledge", "arc_easy.jsonl"))
    assert len(gsm) == 7473 and len(mmlu) == 285 + 1542
    assert len(piqa) == 1838 and len(arc) == 2376


def test_static_embedder_offline_and_normalized():
    from curation.embedders import get_embedder

    e = get_embedder("static")
    v = e.embed(["a cat sat on a mat", "a kitten rested on the rug", "quarterly bond yields fell sharply"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_static_embedder_equals_wordllama_pooling():
    """The sparse token-count product gives WordLlama's own average-pooled, normalized embedding."""
    from curation.embedders import get_embedder

    e = get_embedder("static")
    texts = ["a cat sat on a mat", "The 3 quick foxes — naïve café!", "x", "word " * 500]
    np.testing.assert_allclose(e.embed(texts), e.model.embed(texts, norm=True, batch_size=2), rtol=0, atol=1e-6)
    assert not e.embed([""]).any()  # an empty text is the zero vector, never NaN


def test_strip_format_removes_multiple_choice_markers_only():
    from curation.quality_model import strip_format

    question = "Which organ pumps blood?\nA. Liver\nB. Heart\n(C) Lung\nD) Kidney\nAnswer: B"
    assert strip_format(question) == "Which organ pumps blood?\nLiver\nHeart\nLung\nKidney\n"
    assert strip_format("Question: Why is the sky blue?\nAnswer: Rayleigh scattering.") == "Why is the sky blue?\nRayleigh scattering."
    assert strip_format("Plain prose mentions A. Smith mid-line.") == "Plain prose mentions A. Smith mid-line."


@pytest.mark.parametrize("features", ["ngrams", "ngrams_stripped", "embedding", "ngrams+embedding", "ngrams+kernel"])
def test_betr_classifier_features_topic_over_format(features, tmp_path):
    """Positives: questions about the heart in the test format; hard negatives: questions about
    tax law in the same format; and prose. The embedding and format-stripped features must rank
    prose about the heart above same-format questions about law."""
    from curation.quality_model import QualityModel

    rng = np.random.default_rng(0)
    heart = ["heart", "blood", "artery", "ventricle", "cardiac", "pulse", "valve", "vein"]
    law = ["statute", "court", "contract", "plaintiff", "tax", "appeal", "verdict", "clause"]

    def mc(words):
        w = rng.choice(words, 6)
        return f"Which {w[0]} affects the {w[1]}?\nA. {w[2]}\nB. {w[3]}\nC. {w[4]}\nD. {w[5]}\nAnswer: {rng.choice(list('ABCD'))}"

    def prose(words):
        return " ".join(rng.choice(words + ["the", "of", "and", "is", "in"], 30)) + "."

    pos = [mc(heart) for _ in range(40)]
    neg = [mc(law) for _ in range(40)] + [prose(["river", "music", "garden", "winter", "market"]) for _ in range(320)]
    labels = np.r_[np.ones(40, int), np.zeros(360, int)]
    p = QualityModelParams(n_features=1 << 14, features=features, max_chars=2000)
    model, metrics, _ = train_betr_classifier(pos + neg, labels, 0.1, p)
    assert metrics["features"] == features and metrics["crossfit_auc"] > 0.9
    heart_prose = [prose(heart) for _ in range(20)]
    law_mc = [mc(law) for _ in range(20)]
    if features != "ngrams":  # plain n-grams may learn the format; the others must carry the topic
        assert np.median(model.score(heart_prose)) > np.median(model.score(law_mc))
    # save / load round trip keeps the feature kind and every weight (n-grams + embedding block)
    model.save(str(tmp_path / "m"))
    again = QualityModel.load(str(tmp_path / "m"))
    assert again.params.features == features and len(again.coef) == len(model.coef)
    if features == "ngrams+kernel":
        assert again.landmarks is not None and np.array_equal(again.landmarks, model.landmarks) and len(model.landmarks) == 400
        os.remove(tmp_path / "m" / "landmarks.npy")
        with pytest.raises(ValueError, match="landmarks.npy"):
            QualityModel.load(str(tmp_path / "m"))
    np.testing.assert_allclose(again.score(heart_prose[:5]), model.score(heart_prose[:5]), rtol=1e-5)


def test_kernel_features_and_landmarks(tmp_path):
    """ngrams+kernel: exp(gamma (cos - 1)) per landmark, rows of unit norm; the landmarks are a
    seeded draw of the training documents, saved beside the weights (no pickle) and required."""
    from curation.quality_model import QualityModel, choose_landmarks, kernel_features

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(50, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    k = kernel_features(emb[:5], emb[:3], 10.0)
    raw = np.exp(10.0 * (emb[:5] @ emb[:3].T - 1.0))
    np.testing.assert_allclose(k, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)
    assert np.argmax(k[0]) == 0  # a document is its own nearest landmark
    p = QualityModelParams(features="ngrams+kernel", kernel_landmarks=20, seed=4)
    first, again = choose_landmarks(emb, p), choose_landmarks(emb, p)
    assert first.shape == (20, 8) and np.array_equal(first, again)
    assert not np.array_equal(first, choose_landmarks(emb, p.model_copy(update={"seed": 5})))
    assert choose_landmarks(emb[:10], p).shape == (10, 8)  # fewer documents than landmarks: all of them
    assert p.embedding_cut() == 1000 and p.max_chars == 2000  # the n-grams read the first 2,000 characters
    assert QualityModelParams(features="ngrams+kernel", max_chars=500).max_chars == 500
    assert QualityModelParams().with_features("ngrams+kernel").max_chars == 2000
    assert QualityModelParams(features="ngrams+embedding", max_chars=1000).embedding_cut() == 1000
    with pytest.raises(ValueError, match="landmarks"):
        QualityModel(p, np.zeros(p.n_features + 20), 0.0)
    with pytest.raises(ValidationError):
        QualityModelParams(features="ngrams+kernel", kernel_gamma=0)


def test_minilm_embedder_when_the_extra_is_installed():
    pytest.importorskip(
        "sentence_transformers", reason="optional extra tierlake[minilm] not installed (bench/.peers/minilm has it; see docs/scoring.md)"
    )
    from curation.embedders import get_embedder

    e = get_embedder("minilm")
    v = e.embed(["a cat sat on a mat", "a kitten rested on the rug", "quarterly bond yields fell sharply"])
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]


def test_logistic_fit_on_used_columns_equals_the_fit_on_every_column():
    """fit_logistic fits liblinear on the hashed columns the rows use; the model must be the one
    the fit on all 2^20 columns gives, and rows without any feature still fit (intercept only)."""
    from curation.quality_model import _classifier, fit_logistic

    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, int(rng.integers(5, 40)))) for _ in range(200)]
    y = (np.arange(200) % 3 == 0).astype(int)
    p = QualityModelParams()
    x = _features(texts, p)
    coef, intercept = fit_logistic(p, x, y)
    full = _classifier(p).fit(x, y)
    assert coef.shape == (p.n_features,)
    assert np.allclose(coef, full.coef_.ravel(), atol=1e-9) and intercept == pytest.approx(float(full.intercept_[0]), abs=1e-9)
    empty = _features(["", " ", "", ""], p)
    coef0, _ = fit_logistic(p, empty, np.array([0, 1, 0, 1]))
    assert not coef0.any()
