"""Four more ways to let BETR's classifier carry the targets' topic without losing the benchmark
pages (issue 23), measured offline on both corpora the choice is judged on; none adopted
(docs/scoring.md, "BETR on topic").

    .venv/bin/python bench/betr_topic_regions.py kernel   --gammas 20,40,80 [--families medicine]
    .venv/bin/python bench/betr_topic_regions.py clusters --ks 64,256
    .venv/bin/python bench/betr_topic_regions.py quota
    .venv/bin/python bench/betr_topic_regions.py per-cluster --ks 8,16

* ``kernel``: beside the hashed n-grams, RBF features of the static embedding (first 1,000
  characters) against every sampled document, exp(gamma (cos - 1)), L2-normalized per document:
  a linear model over them can score "near any positive region" (a union of topics), which the raw
  embedding (one direction) cannot.
* ``clusters``: beside the n-grams, counts of the document's tokens per cluster of WordLlama's
  32,000 token vectors (k-means, K clusters; sublinear TF, L2 norm): word-class features that
  smooth the n-grams' sparse vocabulary and stay additive over topics.
* ``quota``: the labels take the top 10% of the sample round-robin over the target benchmarks'
  best-rank orders (so MMLU's examples get a third of the positives, not what GSM8K's 7,323
  examples leave them), with n-grams and with n-grams + embedding.
* ``balanced``: n-grams + kernel with the labels drawn from equal numbers of examples per target
  benchmark (BETR's Target-Core takes equal examples per benchmark), or with quota labels over the
  benchmarks, or over ``--ks`` k-means topics of the targets (``--ks 8,16``).
* ``per-cluster``: the targets are split into K topics (k-means on their embeddings); one
  classifier per topic on its own top-p labels; the score is the maximum percentile.

Judged as bench/betr_combinations.py does: bench/betr_topic.py's MMLU families (ROC-AUC of the
family's held-out questions against the other families' questions, outside the sample) and
bench/betr_eval.py's corpus (% of the 100 held-out MMLU / 150 GSM8K pages in the corpus's top
10%); random samples of 2,000, seeds 0-2. Prints one JSON line per corpus and seed, and the whole
result at the end (bench/results/betr-topic-regions-<method>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import betr_topic  # noqa: E402
from bench_markdown import write_result  # noqa: E402
from betr_combinations import percentile, sample_labels  # noqa: E402

from curation.betr import direct_scores, rank_score, top_labels, train_betr_classifier  # noqa: E402
from curation.betr import quota_labels as stage_quota  # noqa: E402
from curation.params import QualityModelParams  # noqa: E402
from curation.quality_model import kernel_features  # noqa: E402


def normalized_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32)


def token_clusters(embedder, k: int) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    vectors = normalized_rows(embedder.matrix)
    return MiniBatchKMeans(k, random_state=0, batch_size=8192, n_init=1, max_iter=50).fit(vectors).labels_.astype(np.int64)


def cluster_block(embedder, texts: list[str], assignment: np.ndarray, k: int) -> np.ndarray:
    """Per document: log(1 + tokens in each cluster), L2-normalized (the whole text tokenized)."""
    out = np.zeros((len(texts), k), np.float32)
    for start in range(0, len(texts), 1024):
        encoded = embedder.tokenizer.encode_batch(texts[start : start + 1024], add_special_tokens=False)
        for row, e in enumerate(encoded):
            ids = np.clip(np.asarray(e.ids, np.int64), 0, len(assignment) - 1)
            out[start + row] = np.bincount(assignment[ids], minlength=k)
    return normalized_rows(np.log1p(out))


def classify(texts, labels, sample, seed, dense=None, features="ngrams") -> np.ndarray:
    """Corpus scores of the bagged, cross-fitted classifier on the sample's labels (sampled
    documents by their cross-fitted scores); ``dense``: a block beside the n-grams."""
    if dense is not None:
        params = QualityModelParams(seed=seed, features="ngrams+embedding")
    else:
        params = QualityModelParams(seed=seed, features=features, **({"max_chars": 1000} if "embedding" in features else {}))
    model, _, crossfit = train_betr_classifier([texts[i] for i in sample], labels, 0.1, params, embeddings=None if dense is None else dense[sample])
    score = model.score(texts, embeddings=dense) if dense is not None else model.score(texts)
    if crossfit is not None:
        score[sample] = crossfit
    return score


def quota_labels(sample_emb, target_emb, benchmark, top_p=0.1) -> np.ndarray:
    """The score stage's balanced labels (:func:`curation.betr.quota_labels`) over ``benchmark``'s names."""
    return stage_quota([direct_scores(sample_emb, target_emb[benchmark == b]) for b in sorted(set(benchmark))], top_p)[0]


def equal_targets(target_emb: np.ndarray, benchmark: np.ndarray, seed: int) -> np.ndarray:
    """The same number of examples from every target benchmark (a seeded draw of the smallest
    benchmark's count), as BETR's Target-Core takes equal examples per benchmark (paper Sec. 3.6)."""
    rng = np.random.default_rng(seed)
    names = sorted(set(benchmark))
    n = min(int((benchmark == b).sum()) for b in names)
    keep = np.concatenate([np.sort(rng.choice(np.flatnonzero(benchmark == b), n, replace=False)) for b in names])
    return target_emb[keep]


def cluster_quota_labels(sample_emb, target_emb, k: int, seed: int) -> np.ndarray:
    """Quota labels (:func:`curation.betr.quota_labels`) over k-means topics of the targets (topics
    of fewer than 5 examples dropped)."""
    from sklearn.cluster import KMeans

    topic = KMeans(k, random_state=seed, n_init=3).fit(target_emb).labels_
    per = [direct_scores(sample_emb, target_emb[topic == c]) for c in range(k) if (topic == c).sum() >= 5]
    return stage_quota(per, 0.1)[0]


def per_cluster_score(texts, emb, target_emb, sample, seed, k, features, top_p) -> np.ndarray:
    from sklearn.cluster import KMeans

    topic = KMeans(k, random_state=seed, n_init=3).fit(target_emb).labels_
    per = []
    for c in range(k):
        if (topic == c).sum() < 5:
            continue
        ranks = direct_scores(emb[sample], target_emb[topic == c])
        labels = top_labels(rank_score(ranks["best_rank"]), top_p, tiebreak=ranks["max_sim"])
        per.append(percentile(classify(texts, labels, sample, seed, features=features)))
    return np.max(per, axis=0)


def variants(args, embedder, texts, emb1000, sample, labels, target_emb, benchmark, seed) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"ngrams": classify(texts, labels, sample, seed)}
    if args.method == "kernel":
        for gamma in args.gammas:
            out[f"ngrams + kernel, gamma {gamma:g}"] = classify(texts, labels, sample, seed, kernel_features(emb1000, emb1000[sample], gamma))
    elif args.method == "clusters":
        for k in args.ks:
            out[f"ngrams + token clusters, K {k}"] = classify(texts, labels, sample, seed, cluster_block(embedder, texts, args.assignments[k], k))
    elif args.method == "balanced":
        out["ngrams+kernel"] = classify(texts, labels, sample, seed, features="ngrams+kernel")
        for k in args.ks:  # the quota over k-means topics of the targets instead of over benchmarks
            topics = cluster_quota_labels(args.emb[sample], target_emb, k, seed)
            out[f"ngrams+kernel, quota over {k} target topics"] = classify(texts, topics, sample, seed, features="ngrams+kernel")
        if benchmark is not None:  # one benchmark: balancing over benchmarks changes nothing
            quota = quota_labels(args.emb[sample], target_emb, benchmark)
            equal = sample_labels(args.emb, equal_targets(target_emb, benchmark, seed), sample)
            out["ngrams, equal targets"] = classify(texts, equal, sample, seed)
            out["ngrams+kernel, equal targets"] = classify(texts, equal, sample, seed, features="ngrams+kernel")
            out["ngrams+kernel, quota labels"] = classify(texts, quota, sample, seed, features="ngrams+kernel")
    elif args.method == "quota":
        quota = quota_labels(emb1000[sample], target_emb, benchmark) if benchmark is not None else labels
        out["ngrams+embedding"] = classify(texts, labels, sample, seed, features="ngrams+embedding")
        out["ngrams, quota labels"] = classify(texts, quota, sample, seed)
        out["ngrams+embedding, quota labels"] = classify(texts, quota, sample, seed, features="ngrams+embedding")
    else:
        for k in args.ks:
            out[f"one ngrams+embedding model per target topic, K {k}"] = per_cluster_score(
                texts, emb1000, target_emb, sample, seed, k, "ngrams+embedding", 0.1
            )
    return out


def main() -> int:
    from curation.embedders import get_embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", choices=["kernel", "clusters", "quota", "balanced", "per-cluster"])
    ap.add_argument("--gammas", default="20,40,80", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("--ks", default="64,256", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--families", default=",".join(betr_topic.FAMILIES), type=lambda s: s.split(","))
    ap.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--skip-topic", action="store_true", help="only the betr_eval corpus (quota labels change nothing for one benchmark)")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(betr_topic.DATA, "benchmarks", "mmlu")):
        print(f"skipped: {betr_topic.DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return 0
    embedder = get_embedder("static")
    args.assignments = {k: token_clusters(embedder, k) for k in args.ks} if args.method == "clusters" else {}
    result: dict = {"method": args.method, "topic": {}, "betr_eval": {}}
    for family, seed, texts, kind, emb, target_emb, sample, labels, judged in betr_topic.labelled_corpora(
        [] if args.skip_topic else args.families, args.seeds, embedder
    ):
        args.emb = emb
        emb1000 = embedder.embed([t[:1000] for t in texts])
        scores = variants(args, embedder, texts, emb1000, sample, labels, target_emb, None, seed)
        row = {name: round(betr_topic.auc(s[judged], kind[judged] == "wanted"), 3) for name, s in scores.items()}
        for name, value in row.items():
            result["topic"].setdefault(name, {}).setdefault(family, []).append(value)
        print(json.dumps({"family": family, "seed": seed, **row}), flush=True)
    import polars as pl
    from betr_eval import build

    from connectors.benchmarks import load_examples

    setup = build(tempfile.mkdtemp())
    corpus = pl.read_ndjson(setup["corpus"])
    texts, kind = corpus["text"].to_list(), corpus["kind"].to_numpy()
    emb, emb1000 = embedder.embed(texts), embedder.embed([t[:1000] for t in texts])
    examples = load_examples(setup["targets"], role="target")
    target_emb, benchmark = embedder.embed([x.text for x in examples]), np.array([x.benchmark for x in examples])
    args.emb = emb
    if args.method == "balanced":  # the bench's folders name GSM8K "targets" and MMLU's val split "mmlu_val": one name per benchmark
        benchmark = np.array([{"targets": "gsm8k", "mmlu_val": "mmlu"}.get(b, b) for b in benchmark])
    print(json.dumps({"targets": {b: int((benchmark == b).sum()) for b in sorted(set(benchmark))}}), flush=True)
    for seed in args.seeds:
        sample = np.sort(np.random.default_rng(seed).choice(len(texts), 2000, replace=False))
        labels = sample_labels(emb, target_emb, sample)
        scores = variants(args, embedder, texts, emb1000, sample, labels, target_emb, benchmark, seed)
        row = {}
        for name, s in scores.items():
            top = np.quantile(s, 0.9)
            row[name] = [round(100 * float((s[kind == k] > top).mean())) for k in ("held_mmlu", "held_gsm8k")]
            result["betr_eval"].setdefault(name, []).append(row[name])
        print(json.dumps({"betr_eval_seed": seed, **row}), flush=True)
    path = write_result(f"betr-topic-regions-{args.method}.json", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
