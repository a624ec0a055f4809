"""The ngrams+kernel classifier with its kernel block scaled down (``embedding_weight``), on
bench/betr_topic.py's same-format corpora: ROC-AUC of a family's held-out questions against the
other families' questions, outside the sample (random samples of 2,000, seeds 0-2). The betr_eval
side of the same weights: bench/betr_embedding_weight.py "ng2000+kernel g10 w0.7,ng2000+kernel g10 w0.5".

    .venv/bin/python bench/betr_kernel_weight.py medicine,physics 0.7,0.5

docs/scoring.md, "Kernel features", reads it.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import betr_topic  # noqa: E402

from curation.betr import train_betr_classifier  # noqa: E402
from curation.embedders import get_embedder  # noqa: E402
from curation.params import QualityModelParams  # noqa: E402


def main() -> None:
    if not os.path.isdir(os.path.join(betr_topic.DATA, "benchmarks", "mmlu")):
        print(f"skipped: {betr_topic.DATA}/benchmarks/mmlu is absent (see ../shared/data/SOURCES.md)")
        return
    families = sys.argv[1].split(",") if len(sys.argv) > 1 else list(betr_topic.FAMILIES)
    weights = [float(w) for w in sys.argv[2].split(",")] if len(sys.argv) > 2 else [1.0, 0.7, 0.5]
    embedder = get_embedder("static")
    aucs: dict[str, dict[float, list[float]]] = {}
    for family, seed, texts, kind, _, _, sample, labels, judged in betr_topic.labelled_corpora(families, (0, 1, 2), embedder):
        for w in weights:
            params = QualityModelParams(seed=seed, features="ngrams+kernel", embedding_weight=w)
            model, _, _ = train_betr_classifier([texts[i] for i in sample], labels, 0.1, params)
            score = model.score([texts[i] for i in judged])
            aucs.setdefault(family, {}).setdefault(w, []).append(round(betr_topic.auc(score, kind[judged] == "wanted"), 3))
    for family, by_weight in aucs.items():
        print(family, {w: (v, float(np.median(v))) for w, v in by_weight.items()}, flush=True)


if __name__ == "__main__":
    main()
