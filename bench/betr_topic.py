"""Does BETR's sample-mode classifier carry the targets' topic, or only their format?

    .venv/bin/python bench/betr_topic.py [--sample 2000] [--seeds 0,1,2]

For each MMLU subject family (math, medicine, history, law, physics): targets = the family's dev
and val questions; corpus = the family's test questions (wanted), test questions of every other
family in the very same format (hard negatives), real web text (Dolma CC, DCLM) and Wikipedia
articles from ../shared/data. Sample mode as the score stage runs it (``--sample`` documents
ranked exactly against the targets, the top 10% labelled positive, a bagged, cross-fitted
classifier); the ROC-AUC of the score for wanted documents is measured over the documents the
classifier alone scores (those outside the sample), against the same-format questions of other
families and against everything; direct mode (max cosine to the targets) is the reference.

Classifier features compared (each a bagged, cross-fitted logistic regression on the same labels):
``ngrams`` (hashed word 1-2-grams, tierlake before this bench), ``ngrams, format stripped`` (option
letters, "Answer:" lines and other multiple-choice markers removed before featurizing),
``embedding`` (the static embedding the sample is ranked with), ``ngrams + embedding``; and
throughput of featurizing + scoring, in documents per second on one core (embedding included).
Writes bench/results/betr-topic.json and the "BETR on topic" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_markdown import replace_section  # noqa: E402
from dedup import machine  # noqa: E402

DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
FAMILIES = {
    "math": ["abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics", "high_school_statistics"],
    "medicine": [
        "anatomy",
        "clinical_knowledge",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
        "nutrition",
        "virology",
        "college_biology",
        "high_school_biology",
    ],
    "history": ["high_school_european_history", "high_school_us_history", "high_school_world_history", "prehistory"],
    "law": ["international_law", "jurisprudence", "professional_law"],
    "physics": ["astronomy", "college_physics", "conceptual_physics", "high_school_physics"],
}


def questions(subjects: list[str], splits: tuple[str, ...]) -> list[str]:
    from connectors.benchmarks import read_examples

    out = []
    for split in splits:
        for s in subjects:
            out += [e.text for e in read_examples(os.path.join(DATA, "benchmarks", "mmlu", split, f"{s}_{split}.csv"))]
    return out


def real_text(n_web: int, n_wiki: int, rng: random.Random) -> list[str]:
    web = []
    for path in sorted(glob.glob(os.path.join(DATA, "webtext", "dolma_cc_sample", "*.jsonl*"))):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            web += [json.loads(line)["text"] for line in fh if line.strip()]
    with open(os.path.join(DATA, "webtext", "dclm_human_quality", "majority_data.jsonl"), encoding="utf-8") as fh:
        web += [json.loads(line).get("text", "") for line in fh if line.strip()]
    web = [t for t in web if len(t) > 200]
    wiki, article = [], []
    with open(os.path.join(DATA, "text", "wikitext2", "test.txt"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(" = ") and not line.startswith(" = = ") and article:
                wiki.append("".join(article).strip())
                article = []
            article.append(line)
    wiki = [t for t in wiki if len(t) > 500]
    rng.shuffle(web)
    rng.shuffle(wiki)
    return web[:n_web] + wiki[:n_wiki]


def family_corpus(family: str, rng: random.Random, n_wanted: int, n_other: int, real: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, kind per text: wanted / other / real, target texts)."""
    targets = questions(FAMILIES[family], ("dev", "val"))
    wanted = questions(FAMILIES[family], ("test",))
    rng.shuffle(wanted)
    others = []
    for f, subjects in FAMILIES.items():
        if f != family:
            qs = questions(subjects, ("test",))
            rng.shuffle(qs)
            others += qs[: n_other // (len(FAMILIES) - 1)]
    texts = wanted[:n_wanted] + others + real
    kind = np.array(["wanted"] * min(n_wanted, len(wanted)) + ["other"] * len(others) + ["real"] * len(real))
    return texts, kind, targets


# (label, features, characters of each document the classifier reads)
FEATURES = {
    "ngrams (whole text; tierlake before)": ("ngrams", 100_000),
    "ngrams, first 2,000 chars": ("ngrams", 2000),
    "ngrams, format stripped, first 2,000 chars": ("ngrams_stripped", 2000),
    "embedding, first 2,000 chars": ("embedding", 2000),
    "ngrams + embedding, first 2,000 chars": ("ngrams+embedding", 2000),
    "ngrams + embedding, first 1,000 chars": ("ngrams+embedding", 1000),
    "ngrams + kernel (embedding of the first 1,000 chars against 2,000 sampled documents)": ("ngrams+kernel", 100_000),
    "ngrams, first 2,000 chars + kernel (`--classifier-features ngrams+kernel`)": ("ngrams+kernel", 2000),
}


def labelled_corpora(families, seeds, embedder, sample_size: int = 2000):
    """For each family and seed, the offline benches' setting: (family, seed, texts, kind, emb,
    target_emb, sample, labels, judged). The corpus as :func:`family_corpus` builds it (300 wanted,
    1,600 other-family questions, the real text), a random sample, its labels as the score stage
    gives them (top 10% by best rank, ties by maximum similarity) and ``judged``: the wanted and
    other-family documents outside the sample, which the ROC-AUC is taken over."""
    from curation.betr import direct_scores, rank_score, top_labels

    real = real_text(1500, 400, random.Random(0))
    for family in families:
        for seed in seeds:
            texts, kind, targets = family_corpus(family, random.Random(seed), 300, 1600, real)
            emb, target_emb = embedder.embed(texts), embedder.embed(targets)
            sample = np.sort(np.random.default_rng(seed).choice(len(texts), sample_size, replace=False))
            ranks = direct_scores(emb[sample], target_emb)
            labels = top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])
            outside = np.setdiff1d(np.arange(len(texts)), sample)
            judged = outside[np.isin(kind[outside], ["wanted", "other"])]
            yield family, seed, texts, kind, emb, target_emb, sample, labels, judged


def params(label: str, seed: int):
    from curation.params import QualityModelParams

    features, chars = FEATURES[label]
    return QualityModelParams(seed=seed, features=features, max_chars=chars)


def fit(label: str, texts: list[str], labels: np.ndarray, seed: int, embeddings: np.ndarray | None):
    """The score stage's classifier (bagged, cross-fitted; ``curation.betr.train_betr_classifier``)
    with the given features; ``embeddings`` of the texts cut as the classifier cuts them."""
    from curation.betr import train_betr_classifier

    model, _, _ = train_betr_classifier(texts, labels, 0.1, params(label, seed), embeddings=embeddings)
    return model


def throughput(texts: list[str]) -> dict[str, float]:
    """Featurize + score ``texts`` on one core per variant: a child process with one BLAS thread
    and one tokenizer thread (RAYON_NUM_THREADS=1), median of 3 passes."""
    import subprocess

    code = f"""
import json, sys, time, numpy as np
sys.path.insert(0, {ROOT!r}); sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from threadpoolctl import threadpool_limits
from betr_topic import FEATURES, fit
texts = json.load(sys.stdin)
out = {{}}
with threadpool_limits(1):
    for label in FEATURES:
        model = fit(label, texts[:2000], np.array([1, 0] * 1000), 0, None)  # 2,000 training documents: ngrams+kernel gets its 2,000 landmarks
        model.score(texts[:50])
        times = []
        for _ in range(3):
            t = time.perf_counter(); model.score(texts); times.append(time.perf_counter() - t)
        out[label] = len(texts) / float(np.median(times))
print(json.dumps(out))
"""
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive.astype(int), score))


def main() -> int:
    from curation.betr import direct_scores, rank_score, top_labels
    from curation.embedders import get_embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--wanted", type=int, default=300)
    ap.add_argument("--other", type=int, default=1600)
    ap.add_argument("--web", type=int, default=1500)
    ap.add_argument("--wiki", type=int, default=400)
    ap.add_argument("--families", default=",".join(FAMILIES))
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(DATA, "benchmarks", "mmlu")):
        print(f"skipped: {DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return 0
    embedder = get_embedder("static")
    real = real_text(args.web, args.wiki, random.Random(0))
    rows = []
    for family in args.families.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            rng = random.Random(seed)
            texts, kind, targets = family_corpus(family, rng, args.wanted, args.other, real)
            emb = embedder.embed(texts)
            target_emb = embedder.embed(targets)
            cuts = {params(name, seed).embedding_cut() for name in FEATURES}
            cut_emb = {c: embedder.embed([t[:c] for t in texts]) for c in sorted(c for c in cuts if c < 32_768)}
            cut_emb[100_000] = emb
            direct = (emb @ target_emb.T).max(axis=1)
            sample = np.sort(np.random.default_rng(seed).choice(len(texts), min(args.sample, len(texts)), replace=False))
            ranks = direct_scores(emb[sample], target_emb)
            labels = top_labels(rank_score(ranks["best_rank"]), 0.1, tiebreak=ranks["max_sim"])
            outside = np.setdiff1d(np.arange(len(texts)), sample)
            wanted_or_other = outside[np.isin(kind[outside], ["wanted", "other"])]
            row = {
                "family": family,
                "seed": seed,
                "targets": len(targets),
                "corpus": len(texts),
                "sample_positives_wanted": int(((kind[sample] == "wanted") & (labels == 1)).sum()),
                "sample_positives_other": int(((kind[sample] == "other") & (labels == 1)).sum()),
                "sample_positives_real": int(((kind[sample] == "real") & (labels == 1)).sum()),
                "direct_vs_other": auc(direct[wanted_or_other], kind[wanted_or_other] == "wanted"),
                "direct_vs_all": auc(direct[outside], kind[outside] == "wanted"),
            }
            for name in FEATURES:
                cut = params(name, seed).embedding_cut()  # the characters the classifier's embedding reads
                model = fit(name, [texts[i] for i in sample], labels, seed, cut_emb[cut][sample])
                score = model.score([texts[i] for i in outside], embeddings=cut_emb[cut][outside])
                lookup = dict(zip(outside.tolist(), score))
                s_other = np.array([lookup[i] for i in wanted_or_other])
                row[f"{name}_vs_other"] = auc(s_other, kind[wanted_or_other] == "wanted")
                row[f"{name}_vs_all"] = auc(score, kind[outside] == "wanted")
            rows.append(row)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    # throughput: featurize + score on one core, the embedding included where the features need it
    speed = throughput((real * 4)[:4000])
    for name, v in speed.items():
        print(f"{name}: {v:,.0f} documents/s on one core", flush=True)
    summarize(rows, speed, args)
    return 0


def summarize(rows: list[dict], speed: dict, args) -> None:
    fams = sorted({r["family"] for r in rows}, key=list(FAMILIES).index)
    med = {(f, k): float(np.median([r[k] for r in rows if r["family"] == f])) for f in fams for k in rows[0] if k.endswith(("_other", "_all"))}
    header = "| classifier features | " + " | ".join(fams) + " | worst family | vs everything (median) | documents/s, one core |"
    lines = [header, "|---" * (len(fams) + 4) + "|"]
    for name in ["direct", *FEATURES]:
        vals = [med[(f, f"{name}_vs_other")] for f in fams]
        allv = float(np.median([med[(f, f"{name}_vs_all")] for f in fams]))
        sp = f"{speed[name]:,.0f}" if name in speed else "–"
        label = "direct mode (reference: every document embedded and compared)" if name == "direct" else name
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {min(vals):.3f} | {allv:.3f} | {sp} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "betr-topic.json"), "w") as fh:
        json.dump({"args": vars(args), "rows": rows, "documents_per_second_one_core": speed, "machine": machine()}, fh, indent=2)
    replace_section(
        os.path.join(ROOT, "docs", "benchmarks.md"),
        "BETR on topic: same-format questions of other subjects",
        f"""
Command: `.venv/bin/python bench/betr_topic.py --sample {args.sample} --seeds {args.seeds}` on {machine()}.
Per MMLU family: targets its dev+val questions; corpus {args.wanted} of its test questions (wanted),
{args.other} test questions of the other families in the same format, {args.web} web pages and
{args.wiki} Wikipedia articles; sample mode on {args.sample} sampled documents (top 10% positive,
bagged and cross-fitted). ROC-AUC of the score for wanted documents against the same-format
questions of the other families, over the documents outside the sample (the ones only the
classifier scores), median over seeds {args.seeds}; "vs everything" is against every other
document. Throughput: featurize + score 4,000 of the real documents (mean 4,379 characters) on one
core (one BLAS and one tokenizer thread; embedding included), median of 3.

{table}
""",
    )


if __name__ == "__main__":
    raise SystemExit(main())
