"""The parameters of the curation stages, as pydantic models: the one place their fields,
defaults and checks are defined, read by the stages, the flows, recipes and the CLI (which imports
only this module to build its options). Importing it costs pydantic alone. Reasoning and
measurements: docs/dedup.md, docs/scoring.md, docs/containment.md, docs/tiers.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

EMBEDDING_CHARS = 1000  # characters an embedding-feature classifier reads (docs/scoring.md, "BETR on topic")
KERNEL_NGRAM_CHARS = 2000  # characters the n-grams of ngrams+kernel read: the same topic figures, 1.4x the speed of whole texts


class KeepPolicy(BaseModel):
    model_config = {"extra": "forbid"}

    rule: Literal["smallest_id", "highest_score", "longest"] = "smallest_id"
    score_column: str | None = None

    @model_validator(mode="after")
    def _score_needs_column(self):
        if self.rule == "highest_score" and not self.score_column:
            raise ValueError("keep rule 'highest_score' needs score_column")
        return self


class ExactDedupParams(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool = True
    keep: KeepPolicy = Field(default_factory=KeepPolicy)


# (false-positive, false-negative) weights of the default banding search (NearDedupParams.banding)
VERIFIED_WEIGHTS = (0.05, 0.95)
UNVERIFIED_WEIGHTS = (0.5, 0.5)


class NearDedupParams(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool = True
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity of shingle sets")
    num_perm: int = Field(112, ge=2, le=1024)
    ngram: int = Field(5, ge=1, le=64)
    unit: Literal["word", "char"] = "word"
    bands: int | None = Field(None, ge=1, description="default: chosen from threshold, num_perm and verify (banding())")
    rows: int | None = Field(None, ge=1)
    seed: int = 1
    verify: bool = True
    keep: KeepPolicy = Field(default_factory=KeepPolicy)

    @model_validator(mode="after")
    def _bands_rows(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither")
        if self.bands and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def banding(self) -> tuple[int, int]:
        """(bands, rows): as given, else datasketch's optimum of the weighted false-positive and
        false-negative areas. With verification on, a false positive costs only its exact check,
        so false negatives (missed duplicates) weigh 0.95 and false positives 0.05 — for t = 0.8
        and 112 permutations that is datatrove's 14 x 8, P(candidate | J = 0.85) = 0.988; without
        verification, datasketch's equal weights (9 x 12, P = 0.75), since a false positive then
        removes a document."""
        if self.bands and self.rows:
            return self.bands, self.rows
        weights = VERIFIED_WEIGHTS if self.verify else UNVERIFIED_WEIGHTS
        from curation.minhash import band_edges

        return band_edges(self.threshold, self.num_perm, *weights)


class QualityModelParams(BaseModel):
    model_config = {"extra": "forbid"}
    n_features: int = Field(1 << 20, ge=1 << 10, le=1 << 24)
    ngram_max: int = Field(2, ge=1, le=3)
    C: float = Field(4.0, gt=0)
    folds: int = Field(5, ge=2, le=20)
    seed: int = 0
    max_chars: int = Field(100_000, ge=100, description="characters of each document the model reads")
    features: Literal["ngrams", "ngrams_stripped", "embedding", "ngrams+embedding", "ngrams+kernel"] = Field(
        "ngrams",
        description="ngrams: hashed word 1-2-grams; ngrams_stripped: the same after removing multiple-choice "
        "markers (option letters, 'Answer:'); embedding: the static text embedding; "
        "ngrams+embedding: both, side by side; ngrams+kernel: the n-grams beside RBF kernel features of the "
        "embedding against the training documents, exp(gamma (cos - 1)) (docs/scoring.md, 'BETR on topic')",
    )
    kernel_gamma: float = Field(10.0, gt=0, le=1000, description="ngrams+kernel: sharpness gamma of the kernel exp(gamma (cos - 1))")
    kernel_landmarks: int = Field(
        2000, ge=2, le=20_000, description="ngrams+kernel: training documents (a seeded draw) the kernel features compare each document with"
    )
    embedding_chars: int | None = Field(
        None, ge=100, description="characters of each document the embedding reads (default: 1000 with ngrams+kernel, else max_chars)"
    )
    embedder: Literal["static", "minilm"] = "static"
    embedding_weight: float = Field(
        1.0, gt=0, description="scale of the embedding block beside the n-grams (both blocks have unit L2 norm per document)"
    )

    @model_validator(mode="before")
    @classmethod
    def _kernel_reads_2000_characters(cls, data):
        """``ngrams+kernel`` without ``max_chars``: its n-grams read the first 2,000 characters."""
        if isinstance(data, dict) and data.get("features") == "ngrams+kernel" and "max_chars" not in data:
            return {**data, "max_chars": KERNEL_NGRAM_CHARS}
        return data

    def with_features(self, features: str, max_chars: int | None = None) -> QualityModelParams:
        """A validated copy with other features; an embedding reads the first
        :data:`EMBEDDING_CHARS` characters unless ``max_chars`` says otherwise (docs/scoring.md)."""
        if max_chars is None:
            max_chars = EMBEDDING_CHARS if "embedding" in features else KERNEL_NGRAM_CHARS if features == "ngrams+kernel" else self.max_chars
        return QualityModelParams.model_validate({**self.model_dump(), "features": features, "max_chars": max_chars})

    def uses_ngrams(self) -> bool:
        return self.features != "embedding"

    def uses_embedding(self) -> bool:
        return "embedding" in self.features or self.uses_kernel()

    def uses_kernel(self) -> bool:
        return self.features == "ngrams+kernel"

    def embedding_cut(self) -> int:
        """Characters of each document the embedding reads: ``embedding_chars``, else 1,000 with
        ``ngrams+kernel`` (whose n-grams read ``max_chars``, 2,000 by default) and ``max_chars``
        otherwise."""
        if self.embedding_chars is not None:
            return self.embedding_chars
        return EMBEDDING_CHARS if self.uses_kernel() else self.max_chars


class ScoreParams(BaseModel):
    model_config = {"extra": "forbid"}
    enabled: bool = True
    targets: list[str] = Field(default_factory=list, description="benchmark train/dev files or folders (test splits refused)")
    decontaminate: list[str] = Field(default_factory=list, description="benchmark test files or folders")
    mode: Literal["sample", "direct"] = "sample"
    embedder: Literal["static", "minilm"] = "static"
    sample: int = Field(10_000, ge=20, description="documents scored directly and used to train the classifier")
    top_p: float = Field(0.1, gt=0, lt=1, description="fraction of the sample labelled positive")
    balance: Literal["benchmarks", "none"] = Field(
        "benchmarks",
        description="benchmarks: with several target benchmarks, the positives are taken round-robin over them, so each "
        "gets an equal share whatever its number of examples (BETR's Target-Core takes equal examples per benchmark); "
        "none: the top by best rank under any example (docs/scoring.md, 'Balanced over benchmarks')",
    )
    holdout: float = Field(0.2, ge=0, lt=1)
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds: each sampled document is scored by a model fit on the other folds")
    ngram: int = Field(13, ge=5, le=50, description="words in a decontamination n-gram")
    max_ngram_doc_frequency: int = Field(
        10_000, ge=1, description="test n-grams found in more corpus documents are templates/boilerplate and exempt (BETR App. B.2)"
    )
    seed: int = 0
    classifier: QualityModelParams = Field(
        default_factory=QualityModelParams,
        description="the sample-mode classifier (hashed n-grams by default). For targets of one subject, "
        "`features: ngrams+kernel` keeps the topic instead of the test format (docs/scoring.md, "
        "'BETR on topic'); its embedder follows `embedder`",
    )


class ContainmentParams(BaseModel):
    model_config = {"extra": "forbid"}
    min_ratio: float = Field(1.0, gt=0, le=1, description="report A ⊑ B when this share of A's distinct rows is in B")
    sample: int = Field(64, ge=1, description="child rows probed per pair in content pruning")
    seed: int = 0
    driver_max_bytes: int = Field(256 << 20, ge=0, description="pairs with a table larger than this are verified on Spark instead of in the driver")
