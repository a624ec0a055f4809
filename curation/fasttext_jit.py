"""fastText's supervised ``predict`` (Joulin et al. 2016) for one quantized model, compiled with
numba and run over Arrow string buffers with the GIL released: the language id of
:mod:`curation.language_id` without one C++ call per document and without worker processes.

The ``.ftz`` file is read here (args, dictionary, pruned n-gram index, product-quantized input
matrix with quantized norms, dense output matrix) and predict is the reference's, step for step:
tokens split at white space (Python's ``str.split`` then fastText's own, as the caller's
``" ".join(text.split())`` does), the end-of-line token ``</s>``, a word's id and character 2-4
grams of ``<word>`` (FNV-1a, 2,000,000 buckets, kept only when the pruned index has them), the
mean of their input rows, then hierarchical softmax's best leaf by depth-first search with
fastText's pruning, its float32 sums and its ``std::log(x + 1e-5)``. Two changes of
representation, neither of a result: each input row is decoded once (the product of its norm and
its centroids, the float32 product the reference adds each time), and the pruned index is a dense
array over the buckets instead of a hash map. One shortcut: a word outside the dictionary has its
n-gram rows computed once per batch and cached (the rows are added in the same order, so the sum
is the same float32 sum). Labels and probabilities equal fasttext-predict's
bit for bit on the test texts (tests/test_hashing_kernel.py); speed in docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import math
import struct

import numpy as np
import pyarrow as pa

from curation.hashing_jit import _jit

FASTTEXT_MAGIC = 793712314
EOS = b"</s>"
ENTRY_WORD, ENTRY_LABEL = 0, 1
_LABEL_PREFIX = np.frombuffer(b"__label__", np.uint8).copy()
# a batch's words outside the dictionary are cached with their n-gram rows: a word's rows are the
# same wherever it occurs, and English prose repeats its out-of-dictionary words (capitalized,
# with punctuation attached: 73% of the tokens of the long-document demo lake) many times
OOV_CACHE_SLOTS = 1 << 17


class FastTextModel:
    """The arrays :func:`predict_rows` reads, from one quantized supervised fastText model."""

    def __init__(self, path: str):
        with open(path, "rb") as fh:
            b = fh.read()
        if len(b) < 8 or struct.unpack_from("<i", b, 0)[0] != FASTTEXT_MAGIC:
            raise ValueError(f"{path} is not a fastText model")
        try:
            self._read(path, b)
        except (struct.error, ValueError, IndexError) as exc:
            if str(exc).startswith(path):
                raise
            raise ValueError(f"{path}: not a complete fastText model ({exc})") from None

    def _read(self, path: str, b: bytes) -> None:
        (dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_rate) = struct.unpack_from("<12i", b, 8)
        if loss != 1 or model != 3 or word_ngrams != 1:
            raise ValueError(f"{path}: only supervised models with hierarchical softmax and wordNgrams 1 are supported")
        off = 8 + 48 + 8
        size, nwords, nlabels = struct.unpack_from("<iii", b, off)
        off += 12
        _ntokens, prune_size = struct.unpack_from("<qq", b, off)
        off += 16
        words, counts, types = [], [], []
        for _ in range(size):
            end = b.index(b"\0", off)
            words.append(b[off:end])
            off = end + 1
            counts.append(struct.unpack_from("<q", b, off)[0])
            types.append(b[off + 8])
            off += 9
        pairs = np.frombuffer(b, np.int32, 2 * prune_size, off).reshape(-1, 2)
        off += 8 * prune_size
        if not b[off]:
            raise ValueError(f"{path}: the input matrix is not quantized (a .bin model); only .ftz models are supported")
        off += 1
        qnorm = b[off]
        rows, cols = struct.unpack_from("<qq", b, off + 1)
        codesize = struct.unpack_from("<i", b, off + 17)[0]
        off += 21
        codes = np.frombuffer(b, np.uint8, codesize, off).reshape(rows, -1)
        off += codesize
        pq_dim, nsubq, dsub, lastdsub = struct.unpack_from("<iiii", b, off)
        off += 16
        centroids = np.frombuffer(b, np.float32, pq_dim * 256, off)
        off += pq_dim * 256 * 4
        norms = np.ones(rows, np.float32)
        if qnorm:
            norm_codes = np.frombuffer(b, np.uint8, rows, off)
            off += rows
            npq_dim = struct.unpack_from("<i", b, off)[0]
            off += 16
            norm_centroids = np.frombuffer(b, np.float32, npq_dim * 256, off)
            off += npq_dim * 256 * 4
            norms = norm_centroids[norm_codes.astype(np.int64)]
        if b[off]:
            raise ValueError(f"{path}: a quantized output matrix is not supported")
        out_rows, out_cols = struct.unpack_from("<qq", b, off + 1)
        off += 17
        self.output = np.frombuffer(b, np.float32, out_rows * out_cols, off).reshape(out_rows, out_cols).copy()
        if cols != dim or out_cols != dim or dsub * (nsubq - 1) + lastdsub != dim:
            raise ValueError(f"{path}: matrix shapes disagree with dim {dim}")
        # each input row decoded once: norm * centroid, the float32 product fastText adds
        decoded = np.empty((rows, dim), np.float32)
        for m in range(nsubq):
            width = lastdsub if m == nsubq - 1 else dsub
            base = m * 256 * dsub
            for j in range(width):
                decoded[:, m * dsub + j] = norms * centroids[base + codes[:, m].astype(np.int64) * width + j]
        self.input = decoded
        self.nwords, self.bucket, self.minn, self.maxn = nwords, bucket, minn, maxn
        self.prune = np.full(bucket, -1, np.int32)
        self.prune[pairs[:, 0]] = pairs[:, 1]
        self.labels = [w.decode("utf-8", "replace").removeprefix("__label__") for w, t in zip(words, types) if t == ENTRY_LABEL]
        if len(self.labels) != nlabels or out_rows != nlabels:
            raise ValueError(f"{path}: {len(self.labels)} labels in the dictionary, {nlabels} declared")
        # the dictionary as an open-addressing table keyed by fastText's word hash
        cap = 1 << max(10, int(4 * size).bit_length())
        self.table = np.full(cap, -1, np.int32)
        lengths = np.array([len(w) for w in words], np.int64)
        self.word_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.word_bytes = np.frombuffer(b"".join(words), np.uint8).copy() if words else np.zeros(1, np.uint8)
        self.word_types = np.array(types, np.int8)
        for wid, w in enumerate(words):
            slot = _fnv1a(np.frombuffer(w, np.uint8)) & (cap - 1)
            while self.table[slot] != -1:
                slot = (slot + 1) & (cap - 1)
            self.table[slot] = wid
        # each word's own row ids: itself, then its character n-grams (none for </s>)
        subwords = [[wid] + ([] if w == EOS else self._ngram_rows(w)) for wid, w in enumerate(words)]
        self.sub_offsets = np.concatenate([[0], np.cumsum([len(s) for s in subwords])]).astype(np.int64)
        self.sub_rows = np.array([r for s in subwords for r in s], np.int32)
        self.eos = words.index(EOS) if EOS in words else -1
        self.tree_left, self.tree_right = huffman_tree(np.array([c for c, t in zip(counts, types) if t == ENTRY_LABEL], np.int64))
        self.whitespace = python_whitespace()

    def _ngram_rows(self, word: bytes) -> list[int]:
        """``Dictionary::computeSubwords`` of ``<word>``: the kernel :func:`predict_rows` uses."""
        rows = np.empty(max(self.maxn - self.minn + 1, 1) * (len(word) + 2) + 1, np.int32)
        n = _add_ngrams(np.frombuffer(word, np.uint8), 0, len(word), self.prune, self.nwords, self.bucket, self.minn, self.maxn, rows, 0)
        return rows[:n].tolist()

    def predict(self, texts, cache_slots: int = OOV_CACHE_SLOTS) -> tuple[pa.Array, pa.Array]:
        """(label, probability) per text, as fasttext-predict's ``predict(line + "\\n", 1, 0.0)`` on
        ``line = " ".join(text.split())``; '' and 0 for a text without a token. ``cache_slots``
        (a power of two): the size of the batch's cache of words outside the dictionary."""
        if cache_slots < 2 or cache_slots & (cache_slots - 1):
            raise ValueError(f"cache_slots must be a power of two of at least 2, not {cache_slots}")
        arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, pa.large_string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.large_string())
        n = len(arr)
        if n == 0:
            return pa.array([], pa.string()), pa.array([], pa.float64())
        _, offsets_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + n + 1]
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        label, prob = predict_rows(
            offsets,
            data,
            valid,
            self.whitespace,
            self.table,
            self.word_offsets,
            self.word_bytes,
            self.word_types,
            self.sub_offsets,
            self.sub_rows,
            self.prune,
            self.input,
            self.output,
            self.tree_left,
            self.tree_right,
            self.nwords,
            self.bucket,
            self.minn,
            self.maxn,
            self.eos,
            cache_slots,
        )
        names = np.array([""] + self.labels, dtype=object)
        return pa.array(names[label + 1], pa.string()), pa.array(prob)


@functools.lru_cache(maxsize=4)
def load_fasttext(path: str) -> FastTextModel:
    return FastTextModel(path)


def huffman_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) children of ``HierarchicalSoftmaxLoss::buildTree``'s nodes (-1 at leaves);
    ``counts`` are the labels' counts in dictionary order (descending)."""
    osz = len(counts)
    count = np.full(2 * osz - 1, 1e15)
    count[:osz] = counts
    left = np.full(2 * osz - 1, -1, np.int32)
    right = np.full(2 * osz - 1, -1, np.int32)
    leaf, node = osz - 1, osz
    for i in range(osz, 2 * osz - 1):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j] = leaf
                leaf -= 1
            else:
                mini[j] = node
                node += 1
        left[i], right[i] = mini
        count[i] = count[mini[0]] + count[mini[1]]
    return left, right


def python_whitespace() -> np.ndarray:
    """Code points at which ``str.split()`` splits, plus NUL (fastText splits there too)."""
    spaces = [cp for cp in range(0x110000) if chr(cp).isspace()]
    ws = np.zeros(max(spaces) + 1, np.bool_)
    ws[spaces] = True
    ws[0] = True
    return ws


@_jit
def _std_log(x):
    return np.float32(math.log(np.float64(x) + 1e-5))


@_jit
def _hs_best(hidden, output, left, right, osz, threshold_log):
    """HierarchicalSoftmaxLoss::findKBest with k = 1: the best leaf and its log-probability."""
    best_node, best_score = -1, np.float32(0.0)
    stack_node = np.empty(2 * osz, np.int64)
    stack_score = np.empty(2 * osz, np.float32)
    top = 0
    stack_node[0] = 2 * osz - 2
    stack_score[0] = np.float32(0.0)
    top = 1
    while top > 0:
        top -= 1
        node, score = stack_node[top], stack_score[top]
        if score < threshold_log:
            continue
        if best_node >= 0 and score < best_score:
            continue
        if left[node] == -1 and right[node] == -1:
            best_node, best_score = node, score  # a tie goes to the later leaf, as fastText's heap does
            continue
        f = np.float32(0.0)
        row = node - osz
        for j in range(hidden.shape[0]):
            f += output[row, j] * hidden[j]
        f = np.float32(1.0 / np.float32(np.float32(1.0) + np.float32(np.exp(np.float32(-f)))))
        # depth first, left child first: push the right one below it
        stack_node[top] = right[node]
        stack_score[top] = np.float32(score + _std_log(f))
        stack_node[top + 1] = left[node]
        stack_score[top + 1] = np.float32(score + _std_log(np.float32(1.0 - np.float64(f))))
        top += 2
    return best_node, best_score


@_jit
def _lookup(data, start, stop, h, table, word_offsets, word_bytes):
    mask = len(table) - 1
    slot = h & mask
    while table[slot] != -1:
        wid = table[slot]
        a, b = word_offsets[wid], word_offsets[wid + 1]
        if b - a == stop - start:
            same = True
            for q in range(b - a):
                if word_bytes[a + q] != data[start + q]:
                    same = False
                    break
            if same:
                return wid
        slot = (slot + 1) & mask
    return -1


@_jit
def _fnv1a(word):
    """fastText's ``Dictionary::hash``: 32-bit FNV-1a over the bytes taken as signed chars."""
    h = np.uint32(2166136261)
    for c in word:
        h = _fnv_byte(h, c)
    return h


@_jit
def _code_point(data, i):
    """(code point, byte width) of the UTF-8 character at ``data[i]``; every 4-byte character is
    reported as U+10000 (none of them is white space, all this kernel asks)."""
    b0 = data[i]
    if b0 < 0x80:
        return np.int64(b0), 1
    if b0 < 0xE0:
        return ((np.int64(b0) & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((np.int64(b0) & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return np.int64(0x10000), 4


@_jit
def _fnv_byte(h, c):
    s = np.uint64(c) if c < 128 else np.uint64(c) | np.uint64(0xFFFFFF00)
    return np.uint32(((np.uint64(h) ^ s) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF))  # numba widens uint32 products


@_jit
def _add_ngrams(data, start, stop, prune, nwords, bucket, minn, maxn, rows, nrows):
    """Rows of the character n-grams of ``<`` + data[start:stop] + ``>`` written to ``rows`` from
    ``nrows`` on (the caller sizes it: at most (maxn - minn + 1) per byte plus two); returns the
    new count."""
    size = stop - start + 2
    for i in range(size):
        ci = 60 if i == 0 else (62 if i == size - 1 else data[start + i - 1])
        if (ci & 0xC0) == 0x80:
            continue
        h = np.uint32(2166136261)
        j, n = i, 1
        while j < size and n <= maxn:
            c = 60 if j == 0 else (62 if j == size - 1 else data[start + j - 1])
            h = _fnv_byte(h, c)
            j += 1
            while j < size:
                c = 60 if j == 0 else (62 if j == size - 1 else data[start + j - 1])
                if (c & 0xC0) != 0x80:
                    break
                h = _fnv_byte(h, c)
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == size)):
                row = prune[np.int64(h % np.uint32(bucket))]
                if row >= 0:
                    rows[nrows] = nwords + row
                    nrows += 1
            n += 1
    return nrows


@_jit
def predict_rows(
    offsets,
    data,
    valid,
    whitespace,
    table,
    word_offsets,
    word_bytes,
    word_types,
    sub_offsets,
    sub_rows,
    prune,
    inp,
    output,
    left,
    right,
    nwords,
    bucket,
    minn,
    maxn,
    eos,
    cache_size,
):
    """(label index or -1, probability) of every document."""
    n_docs = len(offsets) - 1
    label = np.full(n_docs, -1, np.int32)
    prob = np.zeros(n_docs, np.float64)
    osz = output.shape[0]
    dim = inp.shape[1]
    threshold_log = _std_log(np.float32(0.0))
    # a document's rows, sized once for the batch's longest: a token of L bytes gives at most its
    # word row and (maxn - minn + 1) n-grams per byte of <token>, and tokens are set apart by white
    # space; arrays are never reassigned in the loop (numba reference-counts such a variable)
    longest = 1
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    per_byte = max(maxn - minn + 1, 1)
    rows = np.empty((3 * per_byte + 1) * (longest + 1) + (sub_offsets[eos + 1] - sub_offsets[eos] if eos >= 0 else 0) + 8, np.int32)
    hidden = np.zeros(dim, np.float32)
    # the batch's words outside the dictionary and their rows (most are seen many times)
    cache_mask, cache_limit, cache_used = cache_size - 1, cache_size // 2, 0
    cache_start = np.full(cache_size, -1, np.int64)
    cache_len = np.zeros(cache_size, np.int64)
    cache_hash = np.zeros(cache_size, np.uint32)
    cache_rows_at = np.zeros(cache_size, np.int64)
    cache_rows_n = np.zeros(cache_size, np.int64)
    arena = np.empty(32 * cache_size, np.int32)  # the cached words' rows; a word that does not fit is not cached
    arena_n = 0
    for d in range(n_docs):
        if not valid[d]:
            continue
        i, stop = offsets[d], offsets[d + 1]
        nrows = 0
        tokens = 0
        content = False  # what Python's split keeps: a token, or a NUL (fastText's white space only)
        ended = False
        while i < stop and not ended:
            # skip white space (Python's, by code point), then take one token's bytes
            cp, width = _code_point(data, i)
            if cp < len(whitespace) and whitespace[cp]:
                content = content or cp == 0
                i += width
                continue
            start = i
            h = np.uint32(2166136261)
            while i < stop:
                cp, width = _code_point(data, i)
                if cp < len(whitespace) and whitespace[cp]:
                    content = content or cp == 0
                    break
                for q in range(width):
                    h = _fnv_byte(h, data[i + q])
                i += width
            tokens += 1
            wid = _lookup(data, start, i, h, table, word_offsets, word_bytes)
            if wid >= 0:
                if word_types[wid] == ENTRY_WORD:
                    for r in range(sub_offsets[wid], sub_offsets[wid + 1]):
                        rows[nrows] = sub_rows[r]
                        nrows += 1
                if wid == eos:
                    ended = True  # the token </s> ends fastText's line
            else:
                is_label = i - start >= 9
                if is_label:
                    for q in range(9):
                        if data[start + q] != _LABEL_PREFIX[q]:
                            is_label = False
                            break
                if not is_label:
                    # a word outside the dictionary: its n-gram rows from the batch's cache, or
                    # computed (and cached) the first time the batch meets it
                    length = i - start
                    slot = h & cache_mask
                    while cache_start[slot] != -1:
                        if cache_hash[slot] == h and cache_len[slot] == length:
                            a = cache_start[slot]
                            same = True
                            for q in range(length):
                                if data[a + q] != data[start + q]:
                                    same = False
                                    break
                            if same:
                                break
                        slot = (slot + 1) & cache_mask
                    if cache_start[slot] != -1:
                        for r in range(cache_rows_at[slot], cache_rows_at[slot] + cache_rows_n[slot]):
                            rows[nrows] = arena[r]
                            nrows += 1
                    else:
                        before = nrows
                        nrows = _add_ngrams(data, start, i, prune, nwords, bucket, minn, maxn, rows, nrows)
                        if cache_used < cache_limit and arena_n + nrows - before <= len(arena):
                            cache_used += 1
                            cache_start[slot], cache_len[slot], cache_hash[slot] = start, length, h
                            cache_rows_at[slot], cache_rows_n[slot] = arena_n, nrows - before
                            for r in range(before, nrows):
                                arena[arena_n] = rows[r]
                                arena_n += 1
        if tokens == 0 and not content:
            continue
        if not ended and eos >= 0:  # the line's own end
            for r in range(sub_offsets[eos], sub_offsets[eos + 1]):
                rows[nrows] = sub_rows[r]
                nrows += 1
        if nrows == 0:
            continue
        hidden[:] = np.float32(0.0)
        for r in range(nrows):
            row = rows[r]
            for j in range(dim):
                hidden[j] += inp[row, j]
        scale = np.float32(1.0 / nrows)
        for j in range(dim):
            hidden[j] *= scale
        node, score = _hs_best(hidden, output, left, right, osz, threshold_log)
        if node >= 0:
            label[d] = node
            prob[d] = np.float64(np.float32(np.exp(score)))
    return label, prob
