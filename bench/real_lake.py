"""Write a lake of real public text from ../shared/data and the recipe that curates it.

Sources (one JSONL file each, the user's ids kept; licences in ../shared/data/SOURCES.md):

* ``web`` — raw Common Crawl text (Dolma's CC-MAIN-2019-30 segment and CCNet head documents) and
  the DCLM human-labelled pages;
* ``encyclopedia`` — WikiText-2 articles (valid + test) and the Wikipedia passages of BoolQ;
* ``code`` — the CPython 3.11 standard library, one module per document;
* ``books`` — LAMBADA's book passages (context + continuation);
* ``medical`` — PubMedQA's abstracts (the contexts, without the questions);
* ``qa`` (``--qa``) — question-and-answer pages: other benchmarks' questions with their answers
  (ARC, OpenBookQA, CommonsenseQA, SIQA, PIQA, MathQA, AQuA, SVAMP, LogiQA, TriviaQA, Jeopardy,
  BIG-bench QA and StrategyQA from llm_foundry_eval), 20 to a document like a quiz page. None
  is a target: MMLU is absent from them and GSM8K's copy in llm_foundry_eval is skipped. Real
  lakes hold such pages (exam and trivia sites, FLAN-like collections); without one, every pool
  of this lake is about as far from the targets as the others (docs/selection.md).

Targets: MMLU (dev + val to select, test for the final check) and GSM8K (train to select, test
for the final check). No pool holds GSM8K or MMLU text. The DCLM labels also train the tier
stage's quality model (label 1 positive, 0 negative).

    .venv/bin/python bench/real_lake.py work/real            # writes work/real/{lake,targets,recipe.yaml}
    .venv/bin/tierlake run work/real/recipe.yaml             # the curate run: work/real/output
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import json
import os
import re
import sys

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def _jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def web(data):
    rows = []
    for path in sorted(glob.glob(os.path.join(data, "webtext/dolma_cc_sample/*.json*"))):
        for i, r in enumerate(_jsonl(path)):
            rows.append({"id": f"dolma/{os.path.basename(path)}/{r.get('id', i)}", "text": r["text"]})
    for i, r in enumerate(_jsonl(os.path.join(data, "webtext/dclm_human_quality/majority_data.jsonl"))):
        rows.append({"id": f"dclm/{i}", "text": r["text"]})
    return rows


def encyclopedia(data):
    rows = []
    for split in ("valid", "test"):
        with open(os.path.join(data, f"text/wikitext2/{split}.txt"), encoding="utf-8") as f:
            text = f.read()
        # articles start at lines " = Title = " (one '=' pair; sections have two or more)
        parts = re.split(r"\n(?= = [^=].* = \n)", text)
        for i, part in enumerate(p.strip() for p in parts):
            if len(part) > 200:
                rows.append({"id": f"wikitext2/{split}/{i}", "text": part})
    for i, r in enumerate(_jsonl(os.path.join(data, "benchmarks/llm_foundry_eval/reading_comprehension/boolq.jsonl"))):
        passage = r["query"].split("\nQuestion:")[0].removeprefix("Passage: ").strip()
        rows.append({"id": f"boolq/{i}", "text": passage})
    return rows


def code(data):
    return [{"id": r["id"], "text": r["text"]} for r in _jsonl(os.path.join(data, "text/python_stdlib/modules.jsonl"))]


def books(data):
    path = os.path.join(data, "benchmarks/llm_foundry_eval/language_understanding/lambada_openai.jsonl")
    return [{"id": f"lambada/{i}", "text": r["context"] + " " + r["continuation"]} for i, r in enumerate(_jsonl(path))]


def medical(data):
    path = os.path.join(data, "benchmarks/llm_foundry_eval/reading_comprehension/pubmed_qa_labeled.jsonl")
    rows = []
    for i, r in enumerate(_jsonl(path)):
        context = r["context"].split("\nQuestion:")[0].removeprefix("Context: ").strip()
        rows.append({"id": f"pubmedqa/{i}", "text": context})
    return rows


QA_FILES = [
    "world_knowledge/arc_easy",
    "world_knowledge/arc_challenge",
    "commonsense_reasoning/openbook_qa",
    "commonsense_reasoning/commonsense_qa",
    "commonsense_reasoning/siqa",
    "commonsense_reasoning/piqa",
    "symbolic_problem_solving/math_qa",
    "symbolic_problem_solving/aqua",
    "symbolic_problem_solving/svamp",
    "symbolic_problem_solving/logi_qa",
    "world_knowledge/triviaqa_sm_sub",
    "world_knowledge/jeopardy_all",
    "world_knowledge/bigbench_qa_wikidata",
    "commonsense_reasoning/bigbench_strategy_qa",
]


def render_example(r: dict) -> str:
    """One benchmark example as question + answer text (the answer marked as the exam pages do)."""
    if "query" in r and "choices" in r:
        choices, gold = r["choices"], int(r["gold"])
        if all(len(c) == 1 for c in choices):  # the query already lists lettered choices
            return f"{r['query'].rstrip()} {choices[gold]}"
        if r["query"].startswith(("Question:", "Q:")):  # question + lettered choices + the letter
            lines = [r["query"].rstrip()] + [f"{'ABCDEFGH'[i]}. {c}" for i, c in enumerate(choices)]
            return "\n".join(lines + [f"Answer: {'ABCDEFGH'[gold]}"])
        return f"{r['query'].rstrip()} {choices[gold]}"  # a sentence to complete
    if "continuation" in r:
        return f"{r['context'].rstrip()} {r['continuation']}"
    steps = r.get("chain_of_thought")
    answer = f"{steps.strip()}\nAnswer: {r['answer']}" if steps else str(r["answer"])
    question = r["context"].rstrip()
    return f"{question}\n{answer}" if question.endswith("?") or steps else f"{question} {answer}"


def qa(data, per_page: int = 20):
    rows = []
    for name in QA_FILES:
        examples = [render_example(r) for r in _jsonl(os.path.join(data, f"benchmarks/llm_foundry_eval/{name}.jsonl"))]
        bench = name.split("/")[1]
        for k in range(0, len(examples), per_page):
            rows.append({"id": f"qa/{bench}/{k // per_page}", "text": "\n\n".join(examples[k : k + per_page])})
    return rows


SOURCES = {"web": web, "encyclopedia": encyclopedia, "code": code, "books": books, "medical": medical}


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def mmlu_split(data, split, out):
    """MMLU's CSVs as JSONL ``{text, subject}``, rendered as connectors.benchmarks renders MMLU
    (question, lettered choices, "Answer: X"), so every stage reads one file format."""
    rows = []
    for path in sorted(glob.glob(os.path.join(data, f"benchmarks/mmlu/{split}/*.csv"))):
        subject = os.path.basename(path).rsplit("_", 1)[0]
        with open(path, encoding="utf-8") as f:
            for q, *choices, ans in csv.reader(f):
                body = "\n".join([q] + [f"{letter}. {c}" for letter, c in zip("ABCD", choices)] + [f"Answer: {ans}"])
                rows.append({"text": body, "subject": subject})
    write_jsonl(out, rows)
    return len(rows)


RECIPE = """\
# Real public text (bench/real_lake.py): curate -> probe -> select -> validate (docs/selection.md)
name: real-lake
seed: 0
sources:
{sources}
output: {{path: output, shard_bytes: 67108864, overwrite: true}}
stages:
  ingest: {{max_doc_chars: 1000000}}
  exact_dedup: {{keep: {{rule: smallest_id}}}}
  near_dedup: {{threshold: 0.8, num_perm: 112, bands: 14, rows: 8, ngram: 5, verify: true}}
  score:
    enabled: true
    targets: [targets/mmlu/val/mmlu_val.jsonl, targets/mmlu/dev/mmlu_dev.jsonl, targets/gsm8k/train.jsonl]
    decontaminate: [targets/mmlu/test/mmlu_test.jsonl, targets/gsm8k/test.jsonl]
    mode: sample
    sample: 6000
    top_p: 0.1
  tier:
    enabled: true
    quality_training: {{positive: [quality/positive.jsonl], negative: [quality/negative.jsonl]}}
    targets: [targets/mmlu/val/mmlu_val.jsonl, targets/gsm8k/train.jsonl]
    source_filters:                # the web keeps every default filter; the others are not web pages
      code:                        # source code is not prose: the language and prose rules would drop all of it
        language: {{enabled: false}}
        c4: {{enabled: false}}
        fineweb: {{enabled: false}}
        gopher_quality: {{min_alpha_words_ratio: 0.2, max_symbol_word_ratio: 1.0, min_stop_words: 0}}
      books:                       # LAMBADA passages are a few sentences of fiction, dialogue lines included
        c4: {{min_sentences: 2}}
        gopher_quality: {{min_doc_words: 20, min_alpha_words_ratio: 0.6}}
        fineweb: {{line_punct_thr: 0.0}}
      medical:                     # abstracts: numbers, units and abbreviations
        gopher_quality: {{min_alpha_words_ratio: 0.6}}
      encyclopedia:                # WikiText-2 is tokenized ("@-@", spaced punctuation); BoolQ passages are short
        c4: {{min_sentences: 1}}
        gopher_quality: {{min_doc_words: 20, min_alpha_words_ratio: 0.6}}
        fineweb: {{line_punct_thr: 0.0}}
      qa:                          # quiz pages: lettered choices and "Answer:" lines repeat by design and end unpunctuated
        gopher_quality: {{min_doc_words: 20, min_alpha_words_ratio: 0.5}}
        gopher_repetition: {{enabled: false}}
        c4: {{min_sentences: 1}}
        fineweb: {{enabled: false}}
    l2: {{threshold: 0.5}}
    l3: {{quality: {{threshold: 0.8}}, alignment_column: betr_score, alignment: {{top_fraction: 0.5}}}}
    l4: {{enabled: false}}
  select:
    enabled: true
    budget_tokens: 2000000
    max_epochs: 4
spark: {{master: "local[*]", driver_memory: 4g}}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--qa", action="store_true", help="add the question-and-answer pages source (qa)")
    args = ap.parse_args(argv)
    data = os.path.abspath(args.data)
    if not os.path.isdir(data):
        print(f"{data} is absent: the real lake needs ../shared/data", file=sys.stderr)
        return 2
    root = os.path.abspath(args.workdir)
    entries = []
    sources = {**SOURCES, **({"qa": qa} if args.qa else {})}
    for name, build in sources.items():
        rows = build(data)
        write_jsonl(os.path.join(root, "lake", name, "part-000.jsonl"), rows)
        print(f"{name:14s} {len(rows):6d} documents {sum(len(r['text'].encode()) for r in rows) / 1e6:6.2f} MB")
        entries.append(f"  - {{name: {name}, path: lake/{name}, id_column: id}}")
    labelled = list(_jsonl(os.path.join(data, "webtext/dclm_human_quality/majority_data.jsonl")))
    write_jsonl(os.path.join(root, "quality", "positive.jsonl"), [{"text": r["text"]} for r in labelled if r["label"] == 1])
    write_jsonl(os.path.join(root, "quality", "negative.jsonl"), [{"text": r["text"]} for r in labelled if r["label"] == 0])
    for split in ("dev", "val", "test"):
        os.makedirs(os.path.join(root, "targets", "mmlu", split), exist_ok=True)
        n = mmlu_split(data, split, os.path.join(root, "targets", "mmlu", split, f"mmlu_{split}.jsonl"))
        print(f"mmlu {split:5s} {n} examples")
    os.makedirs(os.path.join(root, "targets", "gsm8k"), exist_ok=True)
    for split in ("train", "test"):
        rows = list(_jsonl(os.path.join(data, f"benchmarks/gsm8k/{split}.jsonl")))
        write_jsonl(os.path.join(root, "targets", "gsm8k", f"{split}.jsonl"), rows)
        print(f"gsm8k {split:5s} {len(rows)} examples")
    with open(os.path.join(root, "recipe.yaml"), "w", encoding="utf-8") as f:
        f.write(RECIPE.format(sources="\n".join(entries)))
    print(f"wrote {root}/recipe.yaml; next: .venv/bin/tierlake run {root}/recipe.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
