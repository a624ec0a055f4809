"""Target examples (benchmark train/dev splits) read from JSONL files, local or s3://.

A record's text is its ``text`` field, or its question-like and answer-like fields joined
(``question``/``query``/``prompt`` then ``answer``/``solution``/``response``), as BETR embeds each
target example with its answer (Mizrahi et al. 2025, App. A). A file without any usable record is
a user error naming the file; a malformed line is one naming the file and line.
"""

from __future__ import annotations

from connectors.benchmarks import jsonl_records
from connectors.filesystem import InputError

QUESTION_FIELDS = ("question", "query", "prompt", "input")
ANSWER_FIELDS = ("answer", "solution", "response", "output")


def example_text(record: dict) -> str | None:
    if isinstance(record.get("text"), str) and record["text"].strip():
        return record["text"]
    parts = [record[f] for f in QUESTION_FIELDS + ANSWER_FIELDS if isinstance(record.get(f), str) and record[f].strip()]
    return "\n".join(parts) if parts else None


def load_target_texts(uris: list[str]) -> list[str]:
    texts: list[str] = []
    for uri in uris:
        found = 0
        for _lineno, record in jsonl_records(uri):
            text = example_text(record)
            if text:
                texts.append(text)
                found += 1
        if not found:
            raise InputError(f"{uri}: no example with a `text` field or question/answer fields")
    return texts
