"""Benchmark examples from the formats benchmarks ship in, one small adapter per format.

Each example becomes one text the way BETR embeds targets (Mizrahi et al. 2025, App. A: the
question with its answer and extra fields, raw):

* ``text`` — generic JSONL with a ``text`` field;
* ``gsm8k`` — JSONL ``{question, answer}`` (answer with its worked solution);
* ``mmlu`` — headerless CSV ``question, A, B, C, D, answer`` -> question, lettered choices, answer;
* ``mc`` — llm-foundry multiple choice ``{query, choices, gold}`` -> query + the gold choice;
* ``continuation`` — llm-foundry ``{context, continuation}`` -> context + continuation;
* ``piqa`` — ``{goal, sol1, sol2}`` with labels in a sibling ``*-labels.lst`` -> goal + the right
  solution (unlabelled test files: goal + both solutions, for decontamination).

A file's split comes from its name (``train``, ``dev``, ``val``/``valid``, ``test``/``tests``):
train/dev/val are targets; test splits are for decontamination only. :func:`load_examples`
refuses a test split as a target, so a held-out evaluation can never be selected for.

A file's benchmark name (:func:`benchmark_name`) is what the score stage balances its labels over
(docs/scoring.md, "Balanced over benchmarks"): the file's name without its split
(``gsm8k_train.jsonl`` -> ``gsm8k``), or its folder's for MMLU's one-CSV-per-subject files and for
files named by their split alone (``mmlu/dev/x_dev.csv`` and ``mmlu_val/x_val.csv`` -> ``mmlu``,
``piqa/valid.jsonl`` -> ``piqa``).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from dataclasses import dataclass

from connectors.file_formats import open_stream, split_suffix
from connectors.filesystem import InputError, list_files

FORMATS = ("text", "gsm8k", "mmlu", "mc", "continuation", "piqa")


@dataclass(frozen=True)
class Example:
    text: str
    benchmark: str
    split: str
    source_file: str
    line: int


def split_of(path: str) -> str:
    name = posixpath.basename(path).lower()
    for split, pattern in (
        ("test", r"(^|[_\-.])tests?([_\-.]|$)"),
        ("train", r"(^|[_\-.])train([_\-.]|$)"),
        ("dev", r"(^|[_\-.])dev([_\-.]|$)"),
        ("val", r"(^|[_\-.])(val|valid|validation)([_\-.]|$)"),
    ):
        if re.search(pattern, name):
            return split
    return "unknown"


SPLIT_WORDS = ("train", "dev", "val", "valid", "validation", "test", "tests")
_SPLIT_SUFFIX = re.compile(r"[_\-.](" + "|".join(SPLIT_WORDS) + r")$", re.IGNORECASE)


def without_split(name: str) -> str:
    """``gsm8k_train`` -> ``gsm8k``; a name that is only a split -> ``""``."""
    return "" if name.lower() in SPLIT_WORDS else _SPLIT_SUFFIX.sub("", name)


def benchmark_name(uri: str, mmlu_csv: bool) -> str:
    """The benchmark a file belongs to (module docstring): its name less the split, else its
    folder's (the folder above a split folder), less a split suffix."""
    parent = posixpath.dirname(uri)
    folder = posixpath.basename(parent)
    if folder.lower() in SPLIT_WORDS:  # mmlu/dev/x.csv -> mmlu
        folder = posixpath.basename(posixpath.dirname(parent))
    stem = posixpath.basename(uri)
    for _ in range(2):  # x_train.jsonl.gz -> x_train
        root, ext = posixpath.splitext(stem)
        stem = root if ext.lower() in (".gz", ".zst", ".bz2", ".xz", ".jsonl", ".json", ".csv", ".tsv", ".txt") else stem
    from_file = "" if mmlu_csv or split_of(uri) == "unknown" else without_split(stem)
    return from_file or without_split(folder) or folder or without_split(stem) or "benchmark"


def read_bytes(uri: str) -> bytes:
    _, compression = split_suffix(uri)
    try:
        with open_stream(uri, compression) as fh:
            return fh.read()
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"cannot read {uri}: {exc}") from None


def jsonl_records(uri: str):
    """(line number, object) of every non-blank line; a bad line is an InputError naming file and line."""
    for lineno, raw in enumerate(read_bytes(uri).splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{uri}:{lineno}: not a JSON object ({exc})") from None
        if not isinstance(rec, dict):
            raise InputError(f"{uri}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        yield lineno, rec


def detect_format(uri: str, first: dict | None) -> str:
    if uri.lower().endswith(".csv"):
        return "mmlu"
    keys = set(first or {})
    if {"goal", "sol1", "sol2"} <= keys:
        return "piqa"
    if {"query", "choices", "gold"} <= keys:
        return "mc"
    if {"context", "continuation"} <= keys:
        return "continuation"
    if {"question", "answer"} <= keys:
        return "gsm8k"
    if "text" in keys:
        return "text"
    raise InputError(f"{uri}: unknown benchmark format (fields {sorted(keys)}); expected one of {', '.join(FORMATS)}")


def _piqa_labels(uri: str) -> list[int] | None:
    base = uri.rsplit(".", 1)[0]
    try:
        return [int(x) for x in read_bytes(base + "-labels.lst").split()]
    except InputError:
        return None


def read_examples(uri: str, fmt: str = "auto", benchmark: str | None = None) -> list[Example]:
    """Every example of one file."""
    name = benchmark or benchmark_name(uri, mmlu_csv=fmt == "mmlu" or (fmt == "auto" and uri.lower().endswith(".csv")))
    split = split_of(uri)
    out: list[Example] = []
    if fmt == "mmlu" or (fmt == "auto" and uri.lower().endswith(".csv")):
        rows = csv.reader(io.StringIO(read_bytes(uri).decode("utf-8", errors="replace")))
        for lineno, row in enumerate(rows, 1):
            if len(row) != 6:
                raise InputError(f"{uri}:{lineno}: MMLU rows have 6 fields (question, A, B, C, D, answer), got {len(row)}")
            q, *choices, ans = row
            body = "\n".join([q] + [f"{letter}. {c}" for letter, c in zip("ABCD", choices)] + [f"Answer: {ans}"])
            out.append(Example(body, name, split, uri, lineno))
        return out
    records = list(jsonl_records(uri))
    if not records:
        return out
    kind = detect_format(uri, records[0][1]) if fmt == "auto" else fmt
    labels = _piqa_labels(uri) if kind == "piqa" else None
    for i, (lineno, r) in enumerate(records):
        try:
            if kind == "text":
                text = r["text"]
            elif kind == "gsm8k":
                text = f"{r['question']}\n{r['answer']}"
            elif kind == "mc":
                text = f"{r['query']} {r['choices'][int(r['gold'])]}"
            elif kind == "continuation":
                text = f"{r['context']}{r['continuation']}"
            elif kind == "piqa":
                sols = [r["sol1"], r["sol2"]]
                text = f"{r['goal']} {sols[labels[i]]}" if labels and i < len(labels) else f"{r['goal']} {sols[0]} {sols[1]}"
            else:
                raise InputError(f"unknown benchmark format {kind!r}; expected one of {', '.join(FORMATS)}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise InputError(f"{uri}:{lineno}: not a {kind} record ({exc!r})") from None
        if isinstance(text, str) and text.strip():
            out.append(Example(text, name, split, uri, lineno))
    return out


def _expand(path: str) -> list[str]:
    files = list_files(path)
    picked = [f.uri for f in files if f.uri.lower().endswith((".jsonl", ".json", ".csv", ".jsonl.gz", ".jsonl.zst"))]
    if not picked:
        raise InputError(f"no benchmark files (.jsonl, .csv) under {path}")
    return sorted(picked)


def load_examples(paths: list[str], role: str = "target") -> list[Example]:
    """Examples of every file under ``paths``. ``role`` = ``target`` refuses test splits;
    ``decontaminate`` accepts any split."""
    out: list[Example] = []
    for path in paths:
        for uri in _expand(path):
            if role == "target" and split_of(uri) == "test":
                raise InputError(f"{uri} is a test split: test splits are for decontamination (--decontaminate), never targets")
            out += read_examples(uri)
    if not out:
        raise InputError(f"no benchmark examples in {', '.join(paths)}")
    return out
