"""Per-document quality signals for the heuristic filters, computed a batch at a time.

The signals are the quantities the published filters threshold (datatrove's implementations are
the reference for each definition, since their removal rates are the ones published):

* Gopher quality (Rae et al. 2021, App. A; datatrove ``GopherQualityFilter``): words,
  mean word length, ``#`` and ellipsis per word, bullet / ellipsis lines, alphabetic words,
  stop words.
* Gopher repetition (Rae et al. 2021, Table A1; datatrove ``GopherRepetitionFilter``):
  duplicated lines and paragraphs (fraction and characters), characters in the most frequent
  2/3/4-gram, characters in duplicated 5..10-grams.
* C4 (Raffel et al. 2020; datatrove ``C4QualityFilter``): whether the document holds
  "lorem ipsum" or ``{``, the sentences left after C4's line rules, the share of lines removed.
* FineWeb (Penedo et al. 2024 §3.6; datatrove ``FineWebQualityFilter``): lines ending in
  terminal punctuation, short lines, characters in duplicated lines, newlines per word.

Everything is vectorized: polars (Rust) splits and explodes lines and paragraphs for the whole
batch at once; the tokens, their word statistics and the n-gram statistics come from compiled
kernels over the Arrow string buffers (:mod:`curation.ngram_jit`: one tokenizing pass whose
character classes are read from polars' own regex engine, so the tokens are the ones
:data:`TOKEN_PATTERN` finds there, tested; then the n-grams one document at a time). No Python loop
runs per document. Speed in docs/benchmarks.md ("Tier signals").

Departures from datatrove, and why:

* Tokens are ``\\w+(?:[.'’]\\w+)*`` or runs of other non-space characters (Unicode classes as Rust's regex),
  not spaCy: spaCy needs 171 s for 20k documents on this machine (bench/dedup.py). Contractions
  stay one token ("don't"), punctuation runs are one token ("...").
* Duplicated n-gram characters: datatrove scans left to right, counts an n-gram that was seen
  before and jumps n words. We mark every occurrence after the first and count the characters
  of the words they cover once (a union instead of a greedy scan); both count only repeats, and
  they agree unless repeats overlap in ways the greedy jump skips (docs/tiers.md measures the
  agreement of the resulting decisions with datatrove's on real web text).
* Stop words are matched case-insensitively ("The" counts), as the Gopher paper's intent; datatrove
  matches case-sensitively.
* C4 sentences are counted as runs of text ending in ``.``, ``!`` or ``?`` followed by a space or
  the end (plus a trailing unterminated run), not with NLTK's punkt.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

TOKEN_PATTERN = r"\w+(?:[.'’]\w+)*|[^\w\s]+"
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
_MIX = np.uint64(0x9E3779B97F4A7C15)

SIGNAL_COLUMNS = (
    [
        "n_chars",
        "n_words",
        "n_non_symbol_words",
        "mean_word_length",
        "hash_per_word",
        "ellipsis_per_word",
        "bullet_lines_frac",
        "ellipsis_lines_frac",
        "alpha_words_frac",
        "stop_words",
        "dup_para_frac",
        "dup_para_char_frac",
        "dup_line_frac",
        "dup_line_char_frac",
    ]
    + [f"top_{n}gram_char_frac" for n in TOP_NGRAMS]
    + [f"dup_{n}gram_char_frac" for n in DUP_NGRAMS]
    + [
        "c4_lorem_ipsum",
        "c4_curly_bracket",
        "c4_sentences",
        "c4_removed_lines_frac",
        "fw_line_punct_frac",
        "fw_short_lines_frac",
        "fw_dup_line_char_frac",
        "fw_newlines_per_word",
    ]
)


def _per_doc(frame: pl.DataFrame, n_docs: int, exprs: list[pl.Expr]) -> pl.DataFrame:
    """Aggregate an exploded frame by ``doc`` and give every document a row (zeros when absent)."""
    agg = frame.group_by("doc").agg(exprs)
    base = pl.DataFrame({"doc": np.arange(n_docs, dtype=np.uint32)})
    return base.join(agg, on="doc", how="left").sort("doc").fill_null(0)


def _duplicates(frame: pl.DataFrame, col: str) -> pl.DataFrame:
    """datatrove ``find_duplicates`` per document: elements seen before, and their characters."""
    dup = ~pl.struct("doc", col).is_first_distinct()
    return frame.with_columns(dup=dup, n=pl.col(col).str.len_chars())


def _line_signals(texts: pl.Series, n: int) -> pl.DataFrame:
    doc = pl.Series("doc", np.arange(n, dtype=np.uint32))
    base = pl.DataFrame([doc, texts.alias("text")])
    # Gopher quality: str.splitlines(); a trailing newline adds no line
    lines = base.select("doc", pl.col("text").str.strip_suffix("\n").str.split("\n").alias("line")).explode("line").drop_nulls("line")
    lines = lines.with_columns(pl.col("line").str.strip_suffix("\r"))
    q = _per_doc(
        lines,
        n,
        [
            pl.len().alias("_lines"),
            pl.col("line").str.strip_chars_start().str.contains(r"^[•-]").sum().alias("_bullets"),
            pl.col("line").str.strip_chars_end().str.contains(r"(\.\.\.|…)$").sum().alias("_ellipses"),
        ],
    )
    # Gopher repetition: re.split("\n+") lines, re.split("\n{2,}") paragraphs of the stripped text
    rlines = base.select("doc", pl.col("text").str.replace_all(r"\n+", "\n").str.split("\n").alias("l")).explode("l").drop_nulls("l")
    rl = _per_doc(
        _duplicates(rlines, "l"),
        n,
        [pl.len().alias("_rlines"), pl.col("dup").sum().alias("_dup_lines"), pl.col("n").filter(pl.col("dup")).sum().alias("_dup_line_chars")],
    )
    paras = (
        base.select("doc", pl.col("text").str.strip_chars().str.replace_all(r"\n{2,}", "\x00").str.split("\x00").alias("p"))
        .explode("p")
        .drop_nulls("p")
    )
    rp = _per_doc(
        _duplicates(paras, "p"),
        n,
        [pl.len().alias("_paras"), pl.col("dup").sum().alias("_dup_paras"), pl.col("n").filter(pl.col("dup")).sum().alias("_dup_para_chars")],
    )
    # FineWeb: text.split("\n") without blank lines
    fw = lines.filter(pl.col("line").str.strip_chars() != "")
    fwd = _per_doc(
        _duplicates(fw, "line"),
        n,
        [
            pl.len().alias("_fw_lines"),
            pl.col("line").str.contains(r"\p{Sentence_Terminal}$").sum().alias("_fw_punct"),
            (pl.col("n") <= 30).sum().alias("_fw_short"),
            pl.col("n").filter(pl.col("dup")).sum().alias("_fw_dup_chars"),
        ],
    )
    # C4 line rules (terminal-punctuation rule off, as FineWeb runs it): a stripped line is
    # removed if empty, < 3 words, a word > 1000 chars, "javascript", or a policy phrase
    c4 = lines.with_columns(s=pl.col("line").str.strip_chars())
    low = pl.col("s").str.to_lowercase()
    words = pl.col("s").str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    removed = (
        (pl.col("s") == "")
        | (words.list.len() < 3)
        | pl.col("s").str.contains(r"\S{1001}")
        | low.str.contains("javascript", literal=True)
        | pl.any_horizontal([low.str.contains(p, literal=True) for p in C4_POLICY_PHRASES])
    )
    c4 = c4.with_columns(removed=removed, nonblank=pl.col("s") != "")
    sentences = pl.col("s").str.count_matches(r"[.!?]+(?:\s|$)") + (~pl.col("s").str.contains(r"[.!?]$")).cast(pl.UInt32)
    c4d = _per_doc(
        c4,
        n,
        [
            sentences.filter(~pl.col("removed")).sum().alias("_c4_sentences"),
            (pl.col("removed") & pl.col("nonblank")).sum().alias("_c4_removed"),
            pl.col("nonblank").sum().alias("_c4_nonblank"),
        ],
    )
    return pl.concat([q, rl.drop("doc"), rp.drop("doc"), fwd.drop("doc"), c4d.drop("doc")], how="horizontal")


def _token_signals(texts: pa.Array, n_docs: int) -> dict[str, np.ndarray]:
    """Word statistics and the Gopher repetition n-gram counts from one compiled pass over the
    Arrow string buffers (:func:`curation.ngram_jit.quality_tokens`, tokens as
    :data:`TOKEN_PATTERN` finds them), then the n-grams one document at a time
    (:func:`curation.ngram_jit.ngram_signal_values`)."""
    from curation.hashing_jit import string_buffers
    from curation.ngram_jit import ngram_signal_values, quality_tokens, stop_word_tables, token_classes

    if n_docs == 0:
        tok_doc, tok_hash, tok_chars = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64)
        per_doc, stops = np.zeros((4, 0), np.int64), np.zeros(0, np.int64)
    else:
        offsets, data, valid = string_buffers(texts)
        tok_doc, tok_hash, tok_chars, per_doc, stops = quality_tokens(offsets, data, valid, token_classes(), *stop_word_tables(GOPHER_STOP_WORDS))
    top, dup = ngram_signal_values(tok_doc, tok_hash, tok_chars, n_docs, np.array(TOP_NGRAMS, np.int64), np.array(DUP_NGRAMS, np.int64), _MIX)
    stop_words = np.zeros(n_docs, np.int64)
    for bit in range(len(GOPHER_STOP_WORDS)):
        stop_words += (stops >> bit) & 1
    return {
        "_tokens": per_doc[0],
        "_words": per_doc[1],
        "_word_chars": per_doc[2],
        "_alpha": per_doc[3],
        "_stop": stop_words,
        **{f"top_{n}": top[i] for i, n in enumerate(TOP_NGRAMS)},
        **{f"dup_{n}": dup[i] for i, n in enumerate(DUP_NGRAMS)},
    }


def quality_signals(texts: pa.Array | pa.ChunkedArray | list[str]) -> pa.Table:
    """One row of :data:`SIGNAL_COLUMNS` per text (nulls count as empty text)."""
    from curation.hashing_jit import large_strings

    arr = large_strings(texts)
    s = pl.Series("text", arr, dtype=pl.String).fill_null("")
    n = len(s)
    n_chars = s.str.len_chars().to_numpy().astype(np.int64)
    w = _token_signals(arr, n)
    lines = _line_signals(s, n)
    tok = w["_tokens"].astype(np.float64)
    words = w["_words"].astype(np.float64)
    chars = np.maximum(n_chars, 1).astype(np.float64)

    def ratio(a, b):
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    nl = s.str.count_matches("\n").to_numpy().astype(np.float64)
    hashes = s.str.count_matches("#", literal=True).to_numpy().astype(np.float64)
    ell = (s.str.count_matches("...", literal=True) + s.str.count_matches("…", literal=True)).to_numpy()
    c4_removed = lines["_c4_removed"].to_numpy()
    cols = {
        "n_chars": n_chars,
        "n_words": tok.astype(np.int64),
        "n_non_symbol_words": words.astype(np.int64),
        "mean_word_length": ratio(w["_word_chars"], words),
        "hash_per_word": ratio(hashes, tok),
        "ellipsis_per_word": ratio(ell, tok),
        "bullet_lines_frac": ratio(lines["_bullets"].to_numpy(), lines["_lines"].to_numpy()),
        "ellipsis_lines_frac": ratio(lines["_ellipses"].to_numpy(), lines["_lines"].to_numpy()),
        "alpha_words_frac": ratio(w["_alpha"], tok),
        "stop_words": w["_stop"],
        "dup_para_frac": ratio(lines["_dup_paras"].to_numpy(), lines["_paras"].to_numpy()),
        "dup_para_char_frac": lines["_dup_para_chars"].to_numpy() / chars,
        "dup_line_frac": ratio(lines["_dup_lines"].to_numpy(), lines["_rlines"].to_numpy()),
        "dup_line_char_frac": lines["_dup_line_chars"].to_numpy() / chars,
        **{f"top_{k}gram_char_frac": w[f"top_{k}"] / chars for k in TOP_NGRAMS},
        **{f"dup_{k}gram_char_frac": w[f"dup_{k}"] / chars for k in DUP_NGRAMS},
        "c4_lorem_ipsum": s.str.to_lowercase().str.contains("lorem ipsum", literal=True).to_numpy(),
        "c4_curly_bracket": s.str.contains("{", literal=True).to_numpy(),
        "c4_sentences": lines["_c4_sentences"].to_numpy().astype(np.int64),
        "c4_removed_lines_frac": ratio(c4_removed, lines["_c4_nonblank"].to_numpy()),
        "fw_line_punct_frac": ratio(lines["_fw_punct"].to_numpy(), lines["_fw_lines"].to_numpy()),
        "fw_short_lines_frac": ratio(lines["_fw_short"].to_numpy(), lines["_fw_lines"].to_numpy()),
        "fw_dup_line_char_frac": ratio(lines["_fw_dup_chars"].to_numpy(), n_chars - nl),
        "fw_newlines_per_word": ratio(nl, tok),
    }
    return pa.table({k: cols[k] for k in SIGNAL_COLUMNS})
