"""The vectorized quality signals against a per-document Python reference written from
datatrove's definitions (find_duplicates, find_top_duplicate, the FineWeb and Gopher filters)."""

import random
import re
from collections import Counter

import numpy as np
import polars as pl
import pytest

from curation.heuristic_filters import HeuristicFilters, failures_by_rule, first_failure
from curation.quality_signals import GOPHER_STOP_WORDS, SIGNAL_COLUMNS, TOKEN_PATTERN, quality_signals

TOKEN = re.compile(TOKEN_PATTERN)
STOP = {"the", "be", "to", "of", "and", "that", "have", "with"}


def find_duplicates(xs):
    seen, n, chars = set(), 0, 0
    for x in xs:
        if x in seen:
            n, chars = n + 1, chars + len(x)
        else:
            seen.add(x)
    return n, chars


def reference(text: str) -> dict:
    toks = TOKEN.findall(text)
    words = [t for t in toks if re.search(r"\w", t)]
    lines = text.removesuffix("\n").split("\n")
    lines = [ln.removesuffix("\r") for ln in lines]
    rlines = re.split(r"\n+", text)
    paras = re.split(r"\n{2,}", text.strip())
    fw = [ln for ln in lines if ln.strip()]
    chars = max(len(text), 1)
    out = {
        "n_chars": len(text),
        "n_words": len(toks),
        "n_non_symbol_words": len(words),
        "mean_word_length": np.mean([len(w) for w in words]) if words else 0.0,
        "hash_per_word": text.count("#") / len(toks) if toks else 0.0,
        "ellipsis_per_word": (text.count("...") + text.count("…")) / len(toks) if toks else 0.0,
        "bullet_lines_frac": sum(ln.lstrip().startswith(("•", "-")) for ln in lines) / len(lines),
        "ellipsis_lines_frac": sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / len(lines),
        "alpha_words_frac": sum(any(c.isalpha() for c in t) for t in toks) / len(toks) if toks else 0.0,
        "stop_words": len(STOP & {t.lower() for t in toks}),
        "dup_para_frac": find_duplicates(paras)[0] / len(paras),
        "dup_para_char_frac": find_duplicates(paras)[1] / chars,
        "dup_line_frac": find_duplicates(rlines)[0] / len(rlines),
        "dup_line_char_frac": find_duplicates(rlines)[1] / chars,
        "fw_line_punct_frac": sum(ln.endswith((".", "!", "?")) for ln in fw) / len(fw) if fw else 0.0,
        "fw_short_lines_frac": sum(len(ln) <= 30 for ln in fw) / len(fw) if fw else 0.0,
        "fw_dup_line_char_frac": find_duplicates(fw)[1] / max(len(text.replace("\n", "")), 1) if fw else 0.0,
        "fw_newlines_per_word": text.count("\n") / len(toks) if toks else 0.0,
    }
    kept_sentences, removed, nonblank = 0, 0, 0
    for ln in lines:
        st = ln.strip()
        low = st.lower()
        gone = (
            st == ""
            or len([w for w in st.split(" ") if w]) < 3
            or re.search(r"\S{1001}", st) is not None
            or "javascript" in low
            or any(p in low for p in ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"))
        )
        nonblank += st != ""
        removed += gone and st != ""
        if not gone:
            kept_sentences += len(re.findall(r"[.!?]+(?:\s|$)", st)) + (0 if re.search(r"[.!?]$", st) else 1)
    out.update(
        c4_lorem_ipsum="lorem ipsum" in text.lower(),
        c4_curly_bracket="{" in text,
        c4_sentences=kept_sentences,
        c4_removed_lines_frac=removed / nonblank if nonblank else 0.0,
    )
    for n in (2, 3, 4):
        grams = [" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        if grams:
            counts = Counter(grams)
            best = max(counts.items(), key=lambda kv: (kv[1], len(kv[0]) * kv[1]))
            out[f"top_{n}gram_char_frac"] = len(best[0]) * best[1] / chars
        else:
            out[f"top_{n}gram_char_frac"] = 0.0
    for n in range(5, 11):
        seen, covered = set(), set()
        for i in range(len(toks) - n + 1):
            g = tuple(toks[i : i + n])
            if g in seen:
                covered.update(range(i, i + n))
            seen.add(g)
        out[f"dup_{n}gram_char_frac"] = sum(len(toks[i]) for i in covered) / chars
    return out


def random_doc(rng: random.Random) -> str:
    vocab = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "then",
        "it",
        "ran",
        "42",
        "#tag",
        "...",
        "don't",
        "Ünïcode",
        "javascript",
        "{x}",
        "Lorem",
        "ipsum",
        "privacy policy",
    ]
    lines = []
    for _ in range(rng.randint(1, 12)):
        if lines and rng.random() < 0.25:
            lines.append(rng.choice(lines))  # duplicated line
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(0, 14))]
            end = rng.choice(["", ".", "!", "?", "…"])
            prefix = rng.choice(["", "", "- ", "• "])
            lines.append(prefix + " ".join(words) + end)
    sep = [rng.choice(["\n", "\n\n", "\n\n\n"]) for _ in lines]
    return "".join(ln + s for ln, s in zip(lines, sep)).rstrip("\n") if rng.random() < 0.7 else "".join(ln + s for ln, s in zip(lines, sep))


def test_signals_match_reference_definitions():
    rng = random.Random(5)
    texts = [random_doc(rng) for _ in range(300)] + ["", "one", "a a a a a a a a a a a a", "x\n\n\ny"]
    got = pl.from_arrow(quality_signals(texts))
    assert list(got.columns) == SIGNAL_COLUMNS and got.height == len(texts)
    for i, text in enumerate(texts):
        want = reference(text)
        assert set(want) == set(SIGNAL_COLUMNS)
        for col, value in want.items():
            assert got[col][i] == pytest.approx(value, abs=1e-9), (col, repr(text))


def test_null_and_empty_text_do_not_crash():
    got = quality_signals([None, "", "   "]).to_pylist()
    assert [r["n_words"] for r in got] == [0, 0, 0]


def test_filters_name_the_first_failed_rule():
    good = ("The history of the river valley is long and well recorded. " * 12).strip()
    texts = [good, "short text with the and of", "# # # " * 40 + good]
    sig = pl.from_arrow(quality_signals(texts)).with_columns(lang=pl.lit("en"), lang_score=pl.lit(0.99))
    filters = HeuristicFilters()
    filters.gopher_repetition.enabled = False  # the good text repeats one sentence on purpose
    filters.fineweb.enabled = False
    reasons = sig.select(first_failure(filters.rules()).alias("r"))["r"].to_list()
    assert reasons == [None, "gopher_short_doc", "gopher_too_many_hashes"]
    # the repetition filter does catch the repeated sentence
    rep = sig.select(first_failure(HeuristicFilters().rules()).alias("r"))["r"].to_list()
    assert rep[0] in {"dup_para_frac", "top_2_gram", "top_3_gram", "duplicated_5_n_grams"} or rep[0].startswith(("top_", "duplicated_"))
    by_rule = failures_by_rule(sig, HeuristicFilters())
    assert by_rule["gopher_quality"]["removed"] == 2
    assert by_rule["language"]["removed"] == 0


def test_language_rule_uses_fasttext_scores():
    from curation.language_id import identify_language

    langs, scores = identify_language(
        ["The cat sat on the mat and looked at the garden.", "Le chat est assis sur le tapis et regarde le jardin.", ""]
    )
    assert langs.to_pylist()[:2] == ["en", "fr"] and langs.to_pylist()[2] == ""
    assert scores.to_pylist()[0] > 0.65 and scores.to_pylist()[2] == 0


def test_per_document_ngram_kernel_matches_a_global_grouping():
    """curation.ngram_jit groups n-grams per document with small hash tables; the signals must be
    what grouping every (document, n-gram) of the batch at once gives (polars, as before)."""
    from curation.ngram_jit import ngram_signal_values

    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 60, 300)
    doc = np.repeat(np.arange(300), lengths).astype(np.int64)
    wh = rng.integers(0, 6, len(doc)).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # few distinct words: many repeats
    wl = (wh % np.uint64(7)).astype(np.int64) + 2
    mix = np.uint64(0x9E3779B97F4A7C15)
    top_ns, dup_ns = np.array([2, 3]), np.array([4, 5])
    top, dup = ngram_signal_values(doc, wh, wl, 300, top_ns, dup_ns, mix)
    h, glen = wh.copy(), wl.copy()
    for n in range(2, 6):
        m = len(h) - 1
        with np.errstate(over="ignore"):
            h = (h[:m] * mix) ^ wh[n - 1 :]
        glen = glen[:m] + 1 + wl[n - 1 :]
        pos = np.nonzero(doc[:m] == doc[n - 1 :])[0]  # n-grams inside one document
        frame = pl.DataFrame({"doc": doc[pos], "h": h[pos], "len": glen[pos], "pos": pos})
        if n in top_ns:
            grams = frame.group_by(["doc", "h"]).agg(pl.len().alias("count"), pl.col("len").sort_by("pos").first())
            best = grams.with_columns(value=pl.col("count") * pl.col("len")).group_by("doc").agg(pl.col("value").sort_by(["count", "value"]).last())
            want = np.zeros(300, np.int64)
            want[best["doc"].to_numpy()] = best["value"].to_numpy()
            assert np.array_equal(top[list(top_ns).index(n)], want)
        if n in dup_ns:
            first = frame.group_by(["doc", "h"]).agg(pl.col("pos").min().alias("first"))
            repeats = frame.join(first, on=["doc", "h"]).filter(pl.col("pos") != pl.col("first"))["pos"].to_numpy()
            covered = np.zeros(len(doc), bool)
            for start in repeats:
                covered[start : start + n] = True
            want = np.bincount(doc[covered], weights=wl[covered], minlength=300).astype(np.int64)
            assert np.array_equal(dup[list(dup_ns).index(n)], want)
    assert (lengths == 0).any() and (top[:, lengths == 0] == 0).all() and (dup[:, lengths == 0] == 0).all()


def test_compiled_tokens_match_the_token_pattern_in_polars():
    """curation.ngram_jit.quality_tokens tokenizes as TOKEN_PATTERN does in polars' regex engine
    (the way the signals were computed before): same tokens, characters, word, alphabetic and
    stop-word statistics, on text mixing scripts, combining marks, digits, separators and spaces."""
    import pyarrow as pa

    from curation.ngram_jit import quality_tokens, stop_word_tables, token_classes

    rng = random.Random(11)
    points = list(range(32, 0x250)) + list(range(0x370, 0x400)) + list(range(0x2000, 0x2070))
    points += [0x3000, 0x4E00, 0x0301, 0x200D, 0x1F600, 0x0660, 0xFF10, 0x00A0, 0x212A, 0x0130, 0x1680, 0x85]
    alphabet = [chr(c) for c in points] + list(" \n\t.'’") * 20 + list("the be to of and that have with THE The Of ") * 5
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(400)] + [None, "", "don't 3.14 end.' x’y"]
    arr = pa.array(texts, pa.large_string())
    _, offsets, data = arr.buffers()
    doc, hashes, chars, per_doc, stops = quality_tokens(
        np.frombuffer(offsets, np.int64)[: len(arr) + 1],
        np.frombuffer(data, np.uint8),
        arr.is_valid().to_numpy(zero_copy_only=False),
        token_classes(),
        *stop_word_tables(GOPHER_STOP_WORDS),
    )
    frame = pl.DataFrame({"doc": np.arange(len(texts)), "text": pl.Series(texts, dtype=pl.String).fill_null("")})
    want = frame.select("doc", pl.col("text").str.extract_all(TOKEN_PATTERN).alias("tok")).explode("tok").drop_nulls("tok")
    assert np.array_equal(doc, want["doc"].to_numpy()) and np.array_equal(chars, want["tok"].str.len_chars().to_numpy())
    tokens = want["tok"].to_list()
    assert len(set(zip(tokens, hashes.tolist()))) == len(set(tokens)) == len(set(hashes.tolist()))  # equal tokens, equal hashes
    flags = want.with_columns(
        word=pl.col("tok").str.contains(r"\w"), alpha=pl.col("tok").str.contains(r"\p{Alphabetic}"), low=pl.col("tok").str.to_lowercase()
    )
    stats = flags.group_by("doc").agg(
        pl.len().alias("tokens"),
        pl.col("word").sum().alias("words"),
        pl.col("tok").str.len_chars().filter(pl.col("word")).sum().alias("word_chars"),
        pl.col("alpha").sum().alias("alpha"),
        pl.col("low").filter(pl.col("low").is_in(list(STOP))).n_unique().alias("stop"),
    )
    expect = np.zeros((5, len(texts)), np.int64)
    for row in stats.iter_rows():
        expect[:, row[0]] = row[1:]
    np.testing.assert_array_equal(per_doc, expect[:4])
    np.testing.assert_array_equal([bin(int(s)).count("1") for s in stops], expect[4])
    assert want.filter(pl.col("doc") == len(texts) - 1)["tok"].to_list() == ["don't", "3.14", "end", ".'", "x’y"]
