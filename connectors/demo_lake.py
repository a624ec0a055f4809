"""The embedded default: a seeded, deterministic demo lake with ground truth beside it.

Layout under ROOT::

    corpus/encyclopedia/part-00{0,1}.jsonl.gz   prose (given ids ``doc_id``); part-001 holds planted bad lines
    corpus/forum/part-000.jsonl.zst             questions and answers, list posts
    corpus/webcrawl/part-00{0,1}.parquet        mixed web: prose, boilerplate, spam, junk, code (no ids)
    corpus/mathcourse/lessons.csv               worked arithmetic solutions (some with planted mistakes)
    tables/                                     Parquet, CSV and a Hive-partitioned dataset; some tables
                                                are copies, projections or row selections of others
    targets/math_train.jsonl, qa_dev.jsonl      benchmark-style target examples (train/dev)
    targets/math_test.jsonl                     a test split, for decontamination only
    quality/positive.jsonl, negative.jsonl      labelled seeds for the quality classifier (not in corpus)
    ground_truth/documents.parquet              per document: kind, planted duplicate/near-duplicate
                                                origin and its exact word-5-gram Jaccard, contamination
    ground_truth/containment.csv                every planted table relation (contained or a near miss)
    ground_truth/summary.json                   counts, including the planted malformed records

Text is built from templates and word lists in ``demo_vocabulary`` so it reads like language.
Jaccard in the ground truth is exact, over sets of word 5-grams of lower-cased ``\\w+`` tokens
(the shingling tierlake's near-dup stage uses by default).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from connectors import demo_vocabulary as V

_WORD = re.compile(r"\w+")


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = word_shingles(a, n), word_shingles(b, n)
    return len(sa & sb) / len(sa | sb) if (sa or sb) else 1.0


class _Writer:
    """Sentence and document makers over one seeded RNG."""

    def __init__(self, rng: random.Random, prose_scale: float = 1.0):
        self.r = rng
        self.prose_scale = prose_scale

    def fill(self, template: str) -> str:
        r = self.r
        return template.format(
            adj=r.choice(V.ADJECTIVES),
            adj2=r.choice(V.ADJECTIVES),
            noun=r.choice(V.NOUNS),
            noun2=r.choice(V.NOUNS),
            noun3=r.choice(V.NOUNS),
            verb=r.choice(V.VERBS_PAST),
            verb2=r.choice(V.VERBS_PAST),
            place=r.choice(V.PLACES),
            person=r.choice(V.PEOPLE),
            year=r.randint(1150, 2015),
            num=r.randint(3, 900),
            goal=r.choice(V.GOALS),
            problem=r.choice(V.PROBLEMS),
            season=r.choice(V.SEASONS),
        )

    def prose(self, sentences: tuple[int, int] = (8, 24)) -> str:
        n = self.r.randint(*(round(k * self.prose_scale) for k in sentences))  # at scale 1 the demo's own draws
        sents = [self.fill(self.r.choice(V.PROSE_TEMPLATES)) for _ in range(n)]
        paras, i = [], 0
        while i < n:
            k = self.r.randint(3, 6)
            paras.append(" ".join(sents[i : i + k]))
            i += k
        return "\n\n".join(paras)

    def forum_thread(self) -> str:
        q = self.fill(self.r.choice(V.QUESTION_TEMPLATES))
        answers = [self.fill(self.r.choice(V.ANSWER_TEMPLATES)) for _ in range(self.r.randint(2, 4))]
        return "Question: " + q + "\n\n" + "\n\n".join(f"Answer {i + 1}: {a}" for i, a in enumerate(answers))

    def listicle(self) -> str:
        k = self.r.randint(5, 9)
        head = f"Top {k} {self.r.choice(V.ADJECTIVES)} places to see in {self.r.choice(V.PLACES)}"
        items = [f"{i + 1}. The {self.r.choice(V.ADJECTIVES)} {self.r.choice(V.NOUNS)} near the {self.r.choice(V.NOUNS)}" for i in range(k)]
        return head + "\n" + "\n".join(items)

    def boilerplate(self) -> str:
        return "\n".join(self.r.sample(V.BOILERPLATE, self.r.randint(2, 4)))

    def spam(self) -> str:
        words = [self.r.choice(V.SPAM_WORDS) for _ in range(self.r.randint(40, 120))]
        return " ".join(words).upper() if self.r.random() < 0.3 else " ".join(words)

    def junk(self) -> str:
        return self.r.choice(["Click here", "Loading...", "404", "ok", "Page 2 of 7", "Read more >>", "N/A", "..."])

    def code(self) -> str:
        parts = []
        for _ in range(self.r.randint(1, 3)):
            parts.append(
                self.r.choice(V.CODE_SNIPPETS).format(
                    fn=self.r.choice(V.FUNCTION_NAMES),
                    attr=self.r.choice(V.ATTRS),
                    num=self.r.randint(1, 99),
                    cls=self.r.choice(V.CLASSES),
                    table=self.r.choice(V.TABLES),
                )
            )
        return "\n".join(parts)

    def exam_problem(self) -> tuple[str, str, int]:
        """A held-out exam item (the test split): worded unlike the lessons, so only a pasted copy of
        it shares a long n-gram with the corpus."""
        r = self.r
        item, place = r.choice(V.MATH_ITEMS), r.choice(V.PLACES)
        a, b, c = r.randint(3, 60), r.randint(2, 40), r.randint(2, 9)
        q = (
            f"On Monday a warehouse in {place} received {a} {item}; on Tuesday it received another {b}. "
            f"Everything is shipped in crates that hold exactly {c}. After shipping every full crate, how many {item} remain?"
        )
        left = (a + b) % c
        sol = f"{a} + {b} = {a + b}, and {a + b} / {c} = {(a + b) // c} remainder {left}. #### {left}"
        return q, sol, left

    def math_problem(self, wrong: bool = False) -> tuple[str, str, int]:
        """(question, worked solution ending in '#### N', N). ``wrong`` plants an arithmetic slip."""
        r = self.r
        name, item = r.choice(V.PEOPLE).split()[0], r.choice(V.MATH_ITEMS)
        a, b, c = r.randint(3, 60), r.randint(2, 40), r.randint(2, 9)
        q = (
            f"{name} has {a} {item}. A friend gives {name} {b} more, and then {name} packs them into "
            f"boxes of {c}. How many {item} are left over after filling as many boxes as possible?"
        )
        total = a + b
        shown_total = total + (r.choice([-2, -1, 1, 2]) if wrong else 0)
        boxes, left = divmod(shown_total, c)
        sol = (
            f"{name} starts with {a} {item} and receives {b}, so {a} + {b} = {shown_total}. "
            f"Each box holds {c}, and {shown_total} / {c} = {boxes} remainder {left}, "
            f"so {boxes} boxes are filled. #### {left}"
        )
        return q, sol, left


def _edit_to_jaccard(text: str, target: float, rng: random.Random) -> str:
    """Substitute words at the rate that gives word-5-gram Jaccard ~ ``target``: with substitution
    rate p about (1-p)^5 of shingles survive, so J = q/(2-q) with q = (1-p)^5."""
    q = 2 * target / (1 + target)
    p = 1 - q ** (1 / 5)
    tokens = text.split(" ")
    for i in range(len(tokens)):
        if rng.random() < p:
            tokens[i] = rng.choice(V.NOUNS + V.ADJECTIVES)
    return " ".join(tokens)


def _write_jsonl(path: str, records: list, compression: str | None, extra_lines: tuple[bytes, ...] | list[bytes] = ()) -> None:
    body = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records) + b"".join(extra_lines)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if compression == "gzip":
        with open(path, "wb") as fh:  # mtime=0 keeps the bytes identical run to run
            with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(body)
    elif compression == "zstd":
        with open(path, "wb") as fh:
            fh.write(zstandard.ZstdCompressor(level=3).compress(body))
    else:
        with open(path, "wb") as fh:
            fh.write(body)


LAKE_VERSION = 3  # bumped when the layout changes, so a cached older lake is rebuilt


def _quality_seeds(seed: int, n: int = 400) -> tuple[list[dict], list[dict]]:
    """Labelled examples for the quality classifier, drawn from their own RNG so the corpus does
    not change: good = prose, answered questions, worked solutions; poor = boilerplate, spam,
    junk, link lists, code."""
    w = _Writer(random.Random(seed + 1000))
    good_makers = [w.prose, w.forum_thread, lambda: "Question: {}\nSolution: {}".format(*w.math_problem()[:2])]
    poor_makers = [w.boilerplate, w.spam, w.junk, w.listicle, w.code]
    good = [{"text": good_makers[i % 3]()} for i in range(n)]
    poor = [{"text": poor_makers[i % 5]()} for i in range(n)]
    return good, poor


def generate_demo_lake(root: str, seed: int = 7, n_docs: int = 20_000, overwrite: bool = False, prose_scale: float = 1.0) -> dict:
    """Write the demo lake under ``root`` (atomically: a temp folder renamed when complete).
    ``prose_scale`` multiplies the sentences of every prose document (encyclopedia articles and
    web pages; 1 = the demo's ~1,200 characters a document on average), for benchmarks at
    longer, real-text-like lengths."""
    if not prose_scale > 0:
        raise ValueError(f"prose_scale must be > 0, got {prose_scale}")
    if os.path.exists(os.path.join(root, "ground_truth", "summary.json")) and not overwrite:
        with open(os.path.join(root, "ground_truth", "summary.json")) as fh:
            summary = json.load(fh)
        if summary.get("lake_version") == LAKE_VERSION and summary.get("prose_scale", 1.0) == prose_scale:
            return summary
    tmp = root.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    rng = random.Random(seed)
    w = _Writer(rng, prose_scale)
    truth: list[dict] = []

    # --- base documents per source
    n_enc, n_forum, n_math = int(n_docs * 0.35), int(n_docs * 0.2), int(n_docs * 0.1)
    n_web = n_docs - n_enc - n_forum - n_math
    enc = [
        {
            "doc_id": f"enc-{i:06d}",
            "title": f"{w.r.choice(V.ADJECTIVES).title()} {w.r.choice(V.NOUNS)} of {w.r.choice(V.PLACES)}",
            "text": w.prose(),
            "url": f"https://encyclopedia.example/wiki/{i}",
        }
        for i in range(n_enc)
    ]
    for d in enc:
        truth.append({"source": "encyclopedia", "key": d["doc_id"], "kind": "prose"})
    forum = []
    for i in range(n_forum):
        kind = "list" if rng.random() < 0.25 else "qa"
        forum.append(
            {
                "id": f"post-{i:06d}",
                "text": w.listicle() if kind == "list" else w.forum_thread(),
                "thread": rng.randint(1, 3000),
                "score": rng.randint(-5, 250),
            }
        )
        truth.append({"source": "forum", "key": forum[-1]["id"], "kind": kind})
    web = []
    web_kinds = ["prose", "prose_with_boilerplate", "boilerplate", "spam", "junk", "code"]
    web_p = [0.45, 0.20, 0.10, 0.10, 0.08, 0.07]
    for i in range(n_web):
        kind = rng.choices(web_kinds, web_p)[0]
        text = {
            "prose": lambda: w.prose((5, 20)),
            "prose_with_boilerplate": lambda: w.boilerplate() + "\n" + w.prose((4, 12)) + "\n" + w.boilerplate(),
            "boilerplate": w.boilerplate,
            "spam": w.spam,
            "junk": w.junk,
            "code": w.code,
        }[kind]()
        web.append({"url": f"https://site{rng.randint(1, 900)}.example/p/{i}", "text": text, "crawl_date": f"2024-0{1 + i % 9}-1{i % 10}"})
        truth.append({"source": "webcrawl", "key": web[-1]["url"], "kind": kind})
    math = []
    for i in range(n_math):
        wrong = rng.random() < 0.1
        q, sol, ans = w.math_problem(wrong)
        math.append({"lesson_id": f"lesson-{i:05d}", "text": f"Question: {q}\nSolution: {sol}", "level": rng.choice(["easy", "medium"])})
        truth.append({"source": "mathcourse", "key": math[-1]["lesson_id"], "kind": "worked_solution", "arith_correct": not wrong})

    # --- planted exact duplicates (case/whitespace variants count as exact) and near-duplicates
    pools: dict[str, tuple[list[dict], str]] = {"encyclopedia": (enc, "doc_id"), "forum": (forum, "id"), "webcrawl": (web, "url")}
    long_enough = [(s, i) for s, (docs, _) in pools.items() for i, d in enumerate(docs) if len(d["text"].split()) >= 60]
    rng.shuffle(long_enough)
    n_exact, n_near = int(n_docs * 0.04), int(n_docs * 0.08)
    for j, (src, i) in enumerate(long_enough[:n_exact]):
        docs, key = pools[src]
        orig = docs[i]
        variant = orig["text"] if j % 3 else "  " + orig["text"].upper().replace(" ", "  ") + "\n"
        target_src = rng.choice(list(pools))
        new = _clone(pools[target_src], orig, variant, f"xdup{j}", rng)
        truth.append({"source": target_src, "key": new, "kind": "exact_duplicate", "dup_of_source": src, "dup_of": orig[key], "jaccard": 1.0})
    for j, (src, i) in enumerate(long_enough[n_exact : n_exact + n_near]):
        docs, key = pools[src]
        orig = docs[i]
        target_j = 0.5 + 0.5 * rng.random()
        edited = _edit_to_jaccard(orig["text"], target_j, rng)
        new = _clone(pools[src], orig, edited, f"ndup{j}", rng)
        truth.append(
            {
                "source": src,
                "key": new,
                "kind": "near_duplicate",
                "dup_of_source": src,
                "dup_of": orig[key],
                "jaccard": round(jaccard(orig["text"], edited), 6),
            }
        )

    # --- targets, and contamination: a few test questions pasted into forum posts
    train = [dict(zip(("question", "answer"), w.math_problem()[:2])) for _ in range(300)]
    test = [dict(zip(("question", "answer"), w.exam_problem()[:2])) for _ in range(100)]
    qa_dev = [{"text": w.forum_thread()} for _ in range(150)]
    for k in range(10):
        forum.append(
            {
                "id": f"post-leak-{k}",
                "text": "Can someone check my homework? " + test[k]["question"] + " I got a different answer.",
                "thread": 9999,
                "score": 1,
            }
        )
        truth.append({"source": "forum", "key": forum[-1]["id"], "kind": "contaminated", "contaminated": True})

    # --- write the corpus
    c = os.path.join(tmp, "corpus")
    half = len(enc) // 2
    _write_jsonl(os.path.join(c, "encyclopedia", "part-000.jsonl.gz"), enc[:half], "gzip")
    bad = [
        b'{"doc_id": "enc-bad-1", "text": "an unterminated string\n',
        b'{"doc_id": "enc-bad-2", "text": }\n',
        b'{"doc_id": "enc-bad-3", "text": "bad bytes \xff\xfe here"}\n',
        b'{"doc_id": "enc-bad-4", "title": "no text field"}\n',
        b"[1, 2, 3]\n",
    ]
    _write_jsonl(os.path.join(c, "encyclopedia", "part-001.jsonl.gz"), enc[half:], "gzip", bad)
    _write_jsonl(os.path.join(c, "forum", "part-000.jsonl.zst"), forum, "zstd")
    os.makedirs(os.path.join(c, "webcrawl"), exist_ok=True)
    wh = len(web) // 2
    for part, rows in enumerate((web[:wh], web[wh:])):
        pq.write_table(pa.Table.from_pylist(rows), os.path.join(c, "webcrawl", f"part-{part:03d}.parquet"), compression="zstd")
    os.makedirs(os.path.join(c, "mathcourse"), exist_ok=True)
    with open(os.path.join(c, "mathcourse", "lessons.csv"), "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=["lesson_id", "text", "level"])
        wr.writeheader()
        wr.writerows(math)

    t = os.path.join(tmp, "targets")
    _write_jsonl(os.path.join(t, "math_train.jsonl"), train, None)
    _write_jsonl(os.path.join(t, "math_test.jsonl"), test, None)
    _write_jsonl(os.path.join(t, "qa_dev.jsonl"), qa_dev, None)

    good, poor = _quality_seeds(seed)
    _write_jsonl(os.path.join(tmp, "quality", "positive.jsonl"), good, None)
    _write_jsonl(os.path.join(tmp, "quality", "negative.jsonl"), poor, None)

    table_truth = _write_tables(os.path.join(tmp, "tables"), np.random.default_rng(seed))

    g = os.path.join(tmp, "ground_truth")
    os.makedirs(g, exist_ok=True)
    cols = ["source", "key", "kind", "dup_of_source", "dup_of", "jaccard", "arith_correct", "contaminated"]
    pq.write_table(pa.Table.from_pylist([{k: t.get(k) for k in cols} for t in truth]), os.path.join(g, "documents.parquet"))
    with open(os.path.join(g, "containment.csv"), "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=["child", "parent", "contained", "relation"])
        wr.writeheader()
        wr.writerows(table_truth)
    summary = {
        "lake_version": LAKE_VERSION,
        "seed": seed,
        **({"prose_scale": prose_scale} if prose_scale != 1 else {}),
        "documents_written": len(enc) + len(forum) + len(web) + len(math),
        "records_written": len(enc) + len(forum) + len(web) + len(math) + len(bad),
        "by_source": {"encyclopedia": len(enc), "forum": len(forum), "webcrawl": len(web), "mathcourse": len(math)},
        "planted": {
            "exact_duplicates": n_exact,
            "near_duplicates": n_near,
            "malformed_records": len(bad) - 1,
            "missing_text_records": 1,
            "contaminated": 10,
            "wrong_worked_solutions": sum(1 for t in truth if t.get("arith_correct") is False),
        },
        "tables": len({r["child"] for r in table_truth} | {r["parent"] for r in table_truth}),
    }
    with open(os.path.join(g, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    if os.path.exists(root):
        shutil.rmtree(root)
    os.rename(tmp, root)
    return summary


def _clone(pool, orig: dict, text: str, tag: str, rng: random.Random) -> str:
    docs, key = pool
    new = {k: v for k, v in docs[rng.randrange(len(docs))].items()}
    new["text"] = text
    if key == "url":
        new[key] = f"https://mirror{rng.randint(1, 50)}.example/{tag}"
    else:
        new[key] = f"{new[key]}-{tag}"
    docs.append(new)
    return new[key]


def _write_tables(root: str, rng: np.random.Generator) -> list[dict]:
    """Base tables and derived ones with known relations. Paths are relative to ``root``."""
    os.makedirs(root, exist_ok=True)
    n = 3000
    regions = np.array(["north", "south", "east", "west"])
    sales = pa.table(
        {
            "order_id": pa.array(np.arange(100_000, 100_000 + n), pa.int64()),
            "region": pa.array(regions[rng.integers(0, 4, n)]),
            "product": pa.array(np.array(V.NOUNS)[rng.integers(0, len(V.NOUNS), n)]),
            "quantity": pa.array(rng.integers(1, 50, n).astype(np.int32)),
            "unit_price": pa.array(np.round(rng.uniform(1, 500, n), 2)),
        }
    )
    stations = pa.table(
        {
            "station": pa.array([f"ST{i:03d}" for i in range(200)]),
            "town": pa.array(np.array(V.PLACES)[rng.integers(0, len(V.PLACES), 200)]),
            "elevation_m": pa.array(rng.integers(0, 2500, 200).astype(np.int32)),
        }
    )
    rel = []

    def put(name: str, table: pa.Table, fmt: str = "parquet"):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if fmt == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path)

    put("sales.parquet", sales)
    put("stations.csv", stations, "csv")
    put("copies/sales_copy.parquet", sales)
    rel.append({"child": "copies/sales_copy.parquet", "parent": "sales.parquet", "contained": True, "relation": "exact_copy"})
    rel.append({"child": "sales.parquet", "parent": "copies/sales_copy.parquet", "contained": True, "relation": "exact_copy"})
    put("derived/sales_products.csv", sales.select(["order_id", "product", "quantity"]), "csv")
    rel.append({"child": "derived/sales_products.csv", "parent": "sales.parquet", "contained": True, "relation": "projection"})
    north = sales.filter(pa.compute.equal(sales["region"], "north"))
    put("derived/sales_north.parquet", north)
    rel.append({"child": "derived/sales_north.parquet", "parent": "sales.parquet", "contained": True, "relation": "row_selection"})
    reordered = sales.select(["unit_price", "order_id", "product", "region", "quantity"])
    put("derived/sales_reordered.parquet", reordered)
    rel.append({"child": "derived/sales_reordered.parquet", "parent": "sales.parquet", "contained": True, "relation": "column_reorder"})
    widened = sales.select(["order_id", "quantity"]).cast(pa.schema([("order_id", pa.int64()), ("quantity", pa.int64())]))
    put("derived/sales_qty_int64.parquet", widened.slice(0, 1000))
    rel.append({"child": "derived/sales_qty_int64.parquet", "parent": "sales.parquet", "contained": True, "relation": "projection_selection_widened"})
    # Hive-partitioned row selection (region as the partition key).
    for reg in ("east", "west"):
        part = sales.filter(pa.compute.equal(sales["region"], reg)).drop_columns(["region"])
        put(f"derived/sales_by_region/region={reg}/part-0.parquet", part)
    rel.append({"child": "derived/sales_by_region", "parent": "sales.parquet", "contained": True, "relation": "partitioned_row_selection"})
    # Near misses: one changed cell; one extra row.
    changed = sales.select(["order_id", "product"]).slice(0, 500).to_pylist()
    changed[17]["product"] = "zeppelin"
    put("near_miss/sales_changed_cell.parquet", pa.Table.from_pylist(changed))
    rel.append({"child": "near_miss/sales_changed_cell.parquet", "parent": "sales.parquet", "contained": False, "relation": "one_changed_cell"})
    extra = sales.slice(0, 400).to_pylist() + [{"order_id": 999_999, "region": "north", "product": "zeppelin", "quantity": 1, "unit_price": 1.0}]
    put("near_miss/sales_extra_row.parquet", pa.Table.from_pylist(extra, schema=sales.schema))
    rel.append({"child": "near_miss/sales_extra_row.parquet", "parent": "sales.parquet", "contained": False, "relation": "one_extra_row"})
    put("derived/stations_high.parquet", stations.filter(pa.compute.greater(stations["elevation_m"], 1200)).select(["station", "elevation_m"]))
    rel.append({"child": "derived/stations_high.parquet", "parent": "stations.csv", "contained": True, "relation": "projection_selection"})
    return rel
