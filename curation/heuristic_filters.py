"""The published heuristic filters as thresholds over :mod:`curation.quality_signals` columns.

Defaults are the published ones (``../shared/reference/scoring-and-tiers.md`` §4), each named and
configurable in the recipe:

* ``gopher_quality`` — Rae et al. 2021 App. A, as datatrove ``GopherQualityFilter``;
* ``gopher_repetition`` — Rae et al. 2021 Table A1, as datatrove ``GopherRepetitionFilter``;
* ``c4`` — Raffel et al. 2020 as FineWeb runs it (datatrove ``C4QualityFilter`` with the
  terminal-punctuation line rule off, FineWeb §3.5); the document is judged by what C4's line
  rules would leave (tierlake does not rewrite documents at L1: the text is kept as ingested);
* ``fineweb`` — Penedo et al. 2024 §3.6, datatrove ``FineWebQualityFilter`` (char-duplicates
  0.01 as datatrove and the paper's App. E.4; the body text says 0.1);
* ``language`` — fastText LID English score >= 0.65 (FineWeb, DCLM).

A rule is a (name, failing condition) pair; a document's reason is the first rule it fails, in
the order datatrove evaluates them, so the reason says exactly which threshold stopped it.
The filters are pure polars expressions: re-thresholding a stored signals table costs no text
processing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import polars as pl
from pydantic import BaseModel, Field


class FilterRule(NamedTuple):
    """One heuristic rule: the document fails when ``column`` compares to ``threshold`` by ``op``
    (``<``, ``>``, ``is`` for a boolean flag, ``language`` for the language rule)."""

    name: str
    column: str
    op: str
    threshold: float | int | bool
    languages: tuple[str, ...] = ()

    def fails(self) -> pl.Expr:
        c = pl.col(self.column)
        if self.op == "language":
            return ~pl.col("lang").is_in(list(self.languages)) | (c < self.threshold)
        if self.op == "is":
            return c
        return c < self.threshold if self.op == "<" else c > self.threshold

    def explain(self, value, lang: str | None = None) -> str:
        """``value`` against the threshold, as a reader wants it: ``alpha_words_frac 0.62 < 0.8``."""

        def fmt(v):
            return f"{v:.4g}" if isinstance(v, float) else str(v)

        if value is None:
            return f"{self.column} missing"
        if self.op == "language":
            return f"lang {lang} (score {fmt(value)}); kept: {', '.join(self.languages)} with score >= {fmt(self.threshold)}"
        if self.op == "is":
            return f"{self.column} is {value}"
        return f"{self.column} {fmt(value)} {self.op} {fmt(self.threshold)}"


class GopherQuality(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2


class GopherRepetition(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    dup_para_frac: float = 0.3
    dup_para_char_frac: float = 0.2
    dup_line_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    top_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    dup_ngram_char_frac: dict[int, float] = Field(default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})


class C4Quality(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    min_sentences: int = 5
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True


class FineWebQuality(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    line_punct_thr: float = 0.12
    short_line_thr: float = 0.67
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3


class LanguageFilter(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en"])
    min_score: float = Field(0.65, ge=0, le=1)


class HeuristicFilters(BaseModel):
    """Every filter family, in the order they are applied."""

    model_config = {"extra": "forbid"}
    language: LanguageFilter = Field(default_factory=LanguageFilter)
    gopher_quality: GopherQuality = Field(default_factory=GopherQuality)
    gopher_repetition: GopherRepetition = Field(default_factory=GopherRepetition)
    c4: C4Quality = Field(default_factory=C4Quality)
    fineweb: FineWebQuality = Field(default_factory=FineWebQuality)

    def rule_specs(self) -> list[FilterRule]:
        """Every enabled rule as (reason, signal column, comparison, threshold), in evaluation order:
        the one definition :meth:`rules` compiles and the report and ``tierlake inspect`` explain."""
        out: list[FilterRule] = []
        if self.language.enabled:
            out.append(FilterRule("language", "lang_score", "language", self.language.min_score, tuple(self.language.languages)))
        g = self.gopher_quality
        if g.enabled:
            out += [
                FilterRule("gopher_short_doc", "n_non_symbol_words", "<", g.min_doc_words),
                FilterRule("gopher_long_doc", "n_non_symbol_words", ">", g.max_doc_words),
                FilterRule("gopher_below_avg_word_length", "mean_word_length", "<", g.min_avg_word_length),
                FilterRule("gopher_above_avg_word_length", "mean_word_length", ">", g.max_avg_word_length),
                FilterRule("gopher_too_many_hashes", "hash_per_word", ">", g.max_symbol_word_ratio),
                FilterRule("gopher_too_many_ellipsis", "ellipsis_per_word", ">", g.max_symbol_word_ratio),
                FilterRule("gopher_too_many_bullets", "bullet_lines_frac", ">", g.max_bullet_lines_ratio),
                FilterRule("gopher_too_many_end_ellipsis", "ellipsis_lines_frac", ">", g.max_ellipsis_lines_ratio),
                FilterRule("gopher_below_alpha_threshold", "alpha_words_frac", "<", g.min_alpha_words_ratio),
                FilterRule("gopher_enough_stop_words", "stop_words", "<", g.min_stop_words),
            ]
        r = self.gopher_repetition
        if r.enabled:
            out += [FilterRule(n, n, ">", getattr(r, n)) for n in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")]
            out += [FilterRule(f"top_{n}_gram", f"top_{n}gram_char_frac", ">", t) for n, t in sorted(r.top_ngram_char_frac.items())]
            out += [FilterRule(f"duplicated_{n}_n_grams", f"dup_{n}gram_char_frac", ">", t) for n, t in sorted(r.dup_ngram_char_frac.items())]
        q = self.c4
        if q.enabled:
            if q.filter_lorem_ipsum:
                out.append(FilterRule("c4_lorem_ipsum", "c4_lorem_ipsum", "is", True))
            if q.filter_curly_bracket:
                out.append(FilterRule("c4_curly_bracket", "c4_curly_bracket", "is", True))
            out.append(FilterRule("c4_too_few_sentences", "c4_sentences", "<", q.min_sentences))
        f = self.fineweb
        if f.enabled:
            out += [
                FilterRule("fineweb_line_punct_ratio", "fw_line_punct_frac", "<", f.line_punct_thr),
                FilterRule("fineweb_short_line_ratio", "fw_short_lines_frac", ">", f.short_line_thr),
                FilterRule("fineweb_char_dup_ratio", "fw_dup_line_char_frac", ">", f.char_duplicates_ratio),
                FilterRule("fineweb_list_ratio", "fw_newlines_per_word", ">", f.new_line_ratio),
            ]
        return out

    def rules(self) -> list[tuple[str, pl.Expr]]:
        """(reason, expression true when the document FAILS) in evaluation order."""
        return [(spec.name, spec.fails()) for spec in self.rule_specs()]

    def family(self, reason: str) -> str:
        if reason == "language":
            return "language"
        if reason.startswith("gopher_"):
            return "gopher_quality"
        if reason.startswith(("dup_", "top_", "duplicated_")):
            return "gopher_repetition"
        return reason.split("_", 1)[0]


def first_failure(rules: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """The first failed rule's name, or null when the document passes every rule."""
    if not rules:
        return pl.lit(None, dtype=pl.String)
    expr: Any = pl.when(rules[0][1]).then(pl.lit(rules[0][0]))  # Then, then ChainedThen
    for name, cond in rules[1:]:
        expr = expr.when(cond).then(pl.lit(name))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def failures_by_rule(signals: pl.DataFrame, filters: HeuristicFilters) -> dict[str, dict[str, int]]:
    """Per family: documents that family alone would remove (each family judged independently)."""
    out = {}
    for fam in ("language", "gopher_quality", "gopher_repetition", "c4", "fineweb"):
        rules = [(n, e) for n, e in filters.rules() if filters.family(n) == fam]
        if not rules:
            continue
        reasons = signals.select(first_failure(rules).alias("r"))["r"]
        out[fam] = {"removed": int(reasons.is_not_null().sum()), **{k: int(v) for k, v in reasons.drop_nulls().value_counts().iter_rows()}}
    return out
