"""The compiled hashed n-gram featurizer against scikit-learn's HashingVectorizer, and language
id in worker processes against the in-process call."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curation.hashing_jit import hashed_ngram_counts, sklearn_vectorizer, unicode_tables

SPECIAL = [
    "",
    "İstanbul ΣΟΦΙΑ σοφία ΟΔΟΣ",
    "Straße ǅemal ﬁne",
    "a_b c-d 12 ½ ² ٣",
    "🙂 émoji 中文字 テスト",
    "Ａｂｃ ＡＢＣ",
    "ǈ ǉ Ǉ ⅰⅱ Ⅻ",
    "tab\tnew\nline  x",
]


def _random_texts(n: int, seed: int) -> list[str]:
    """Words of ASCII, Latin-1, Greek, Cyrillic, CJK, marks, digits and symbols, joined by assorted separators."""
    rng = np.random.default_rng(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
        "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ",
        "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩς",
        "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
        "中文字テスト한국어\u0301\u0308\u200b\u00a0İıŉǅǈǋ½²٣",
    ]
    seps = [" ", "  ", ", ", ". ", "\n", "\t", "-", "'", "—", "…", "🙂"]
    texts = []
    for _ in range(n):
        words = []
        for _ in range(int(rng.integers(0, 60))):
            pool = pools[int(rng.choice(len(pools), p=[0.6, 0.1, 0.1, 0.1, 0.1]))]
            words.append("".join(pool[int(i)] for i in rng.integers(0, len(pool), int(rng.integers(1, 9)))))
            words.append(seps[int(rng.integers(0, len(seps)))])
        texts.append("".join(words))
    return texts


def _sklearn(texts, n_features, ngram_max, max_chars):
    return sklearn_vectorizer(n_features, ngram_max).transform([(t or "")[:max_chars] for t in texts]).tocsr()


@pytest.mark.parametrize(("n_features", "ngram_max", "max_chars"), [(1 << 20, 2, 100_000), (1 << 18, 3, 40), (1_000_003, 1, 7), (1 << 18, 2, None)])
def test_hashed_ngram_counts_equal_scikit_learns_vectorizer(n_features, ngram_max, max_chars):
    texts = SPECIAL + _random_texts(400, seed=n_features % 97)
    expected = _sklearn(texts, n_features, ngram_max, max_chars)
    for given in (texts, pa.array(texts), pa.array(texts, pa.large_string()).slice(0)):
        got = hashed_ngram_counts(given, n_features, ngram_max, max_chars)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)


def test_hashed_ngram_counts_handle_nulls_slices_and_context_dependent_case():
    texts = ["Hello World", None, "ΣΟΦΟΣ sigma", "x"]
    got = hashed_ngram_counts(pa.array(texts).slice(1), 1 << 16, 2, 1000)
    expected = _sklearn([None, "ΣΟΦΟΣ sigma", "x"], 1 << 16, 2, 1000)
    assert (got != expected).nnz == 0 and got.getrow(0).nnz == 0
    lower, is_word = unicode_tables()
    assert lower[0x03A3] == -1 and lower[0x0130] == -1  # left to scikit-learn
    assert lower[ord("A")] == ord("a") and is_word[ord("_")] and not is_word[0x0301]


def test_compiled_language_id_equals_fasttext_predict_bit_for_bit():
    """curation.fasttext_jit against fasttext-predict's C++ predict: the same label and the same
    probability (float equality) on English and other-language prose, random Unicode (white space
    of every kind Python splits on, NUL, combining marks, CJK, emoji), empty and null texts, label
    look-alikes and the end-of-line token, whole or sliced."""
    from curation.language_id import identify_language, identify_language_reference

    special = [
        "This is an English sentence about data.",
        "Ceci est une phrase en français.",
        "Das ist ein deutscher Satz über Daten.",
        "Это русское предложение о данных.",
        "これはデータについての日本語の文です。",
        "",
        None,
        "   \t\n",
        "\0",
        "a\0b",
        "hello </s> bonjour le monde",
        "__label__en ceci est une phrase",
        "__label__xyz data",
        "x\u3000y\u00a0z\u2028w\u0085v\u1680u\x1cq",
        "Ünïcödé tëxt wïth äccents and emoji 🙂🙂",
    ]
    texts = special + _random_texts(400, seed=11)
    for arr in (pa.array(texts), pa.array(texts).slice(7, 300), pa.chunked_array([texts[:100], texts[100:]])):
        got_lang, got_score = identify_language(arr)
        want_lang, want_score = identify_language_reference(arr)
        assert got_lang.to_pylist() == want_lang.to_pylist()
        assert got_score.to_pylist() == want_score.to_pylist()
    lang, score = identify_language(special)
    assert lang.to_pylist()[:5] == ["en", "fr", "de", "ru", "ja"] and lang.to_pylist()[5:7] == ["", ""]
    assert score.to_pylist()[6] == 0.0


def test_compiled_language_id_cache_of_unknown_words_changes_no_bit():
    """Words outside fastText's dictionary recur across a batch (capitalized, punctuation attached);
    their cached n-gram rows give the reference's labels and probabilities bit for bit, with a cache
    that holds them all and with one that fills after its first word (the rest computed each time)."""
    from curation.fasttext_jit import load_fasttext
    from curation.language_id import identify_language_reference, model_path

    rng = np.random.default_rng(5)
    vocabulary = ["Data,", "Curation.", "Tiering;", "Déduplication", "Ähnlichkeit:", "данных.", "(MinHash)", "LSH-bands", "the", "de", "und"]
    texts = [" ".join(rng.choice(vocabulary, size=int(rng.integers(1, 60)))) for _ in range(300)] + _random_texts(100, seed=3)
    want_lang, want_score = identify_language_reference(pa.array(texts))
    model = load_fasttext(model_path())
    for slots in (1 << 17, 2):
        got_lang, got_score = model.predict(pa.array(texts), cache_slots=slots)
        assert got_lang.to_pylist() == want_lang.to_pylist()
        assert got_score.to_pylist() == want_score.to_pylist()
    with pytest.raises(ValueError, match="power of two"):
        model.predict(texts, cache_slots=3)


def test_one_tokenization_gives_both_column_counts():
    from curation.hashing_jit import hashed_ngram_counts_shared

    texts = SPECIAL + _random_texts(200, seed=5)
    both = hashed_ngram_counts_shared(texts, (1 << 20, 1 << 18), 2, 500)
    for got, columns in zip(both, (1 << 20, 1 << 18)):
        expected = _sklearn(texts, columns, 2, 500)
        assert got.shape == expected.shape and (got != expected).nnz == 0
    with pytest.raises(ValueError):
        hashed_ngram_counts_shared(texts, (8, 16, 32), 2, 500)


def test_malformed_utf8_stops_the_document_without_reading_past_it():
    """Arrow does not always validate strings (ingest quarantines invalid UTF-8, but a caller may
    pass anything): a truncated sequence or a lead byte past U+10FFFF ends that document's tokens."""
    raw = pa.array([b"good words \xe2\x82", b"ok \xff\xff\xff\xff more", b"fine text"], pa.binary()).view(pa.string())
    got = hashed_ngram_counts(raw, 1 << 16, 2, 1000)
    expected = _sklearn(["good words", "ok", "fine text"], 1 << 16, 2, 1000)
    assert (got != expected).nnz == 0


def test_fasttext_model_reader_refuses_what_it_cannot_read(tmp_path):
    """Not a fastText file, or one cut short: a clear ValueError, never a wrong model."""
    from curation.fasttext_jit import FastTextModel
    from curation.language_id import model_path

    other = tmp_path / "other.ftz"
    other.write_bytes(b"PK\x03\x04 not a model at all" * 4)
    with pytest.raises(ValueError, match="not a fastText model"):
        FastTextModel(str(other))
    cut = tmp_path / "cut.ftz"
    cut.write_bytes(open(model_path(), "rb").read()[:200_000])
    with pytest.raises(ValueError, match="not a complete fastText model"):
        FastTextModel(str(cut))
