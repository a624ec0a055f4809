"""Proxy language models: the measuring instrument for selection decisions.

A small byte-level decoder-only transformer trained from scratch (no downloaded weights, no
downloaded vocabulary: the 256 byte values are the tokens, so losses are bits per byte and do not
depend on a tokenizer). It is trained on a *training plan* (which byte streams, how many unique
bytes of each, how many bytes seen) and scored on held-out target text (benchmark examples
rendered as question + answer). This is how DCLM, RegMix and BETR compare data: small models,
equal token budgets, a target metric; at this scale loss on target text is the metric that
separates data sources (docs/selection.md, "Evidence").

Written in JAX (runs on CPU with the PyPI wheel and on CUDA where jax has its GPU plugin), with a
hand-written AdamW so it needs nothing beyond numpy and jax: the same code trains the tiny
models of ``make test`` on CPU and the grid on an H100. bf16 matmuls on GPU, float32 on CPU;
deterministic for a seed on CPU (data order, initialisation and the dropout masks all come
from the seed). Recipes per size are fixed and documented in :data:`RECIPES`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "Unable to initialize backend 'tpu'"


class ProxyRecipe(BaseModel):
    """One proxy model size and its training schedule (fixed per size; see :data:`RECIPES`)."""

    model_config = {"extra": "forbid"}
    layers: int = Field(2, ge=1)
    width: int = Field(64, ge=8, description="model dimension")
    heads: int = Field(2, ge=1)
    context: int = Field(64, ge=8, description="bytes per training window")
    batch: int = Field(16, ge=1, description="windows per step")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW)")
    warmup: float = Field(0.05, ge=0, lt=1, description="fraction of steps with linear warm-up")
    final_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine decay ends at lr x this")
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout rate on the embeddings, attention weights and residual branches while training (GPT-2's "
        "places); 0 turns it off. Many passes over a small pool overfit without it: docs/selection.md",
    )
    positions: Literal["rotary", "learned"] = Field(
        "rotary",
        description="rotary position encoding on queries and keys (RoFormer; the default since 2026-12-07) or learned absolute "
        "position embeddings (GPT-2; every probe before that date). Rotary leaves the early loss plateau sooner: docs/selection.md",
    )

    @model_validator(mode="after")
    def _heads_split_the_width(self) -> ProxyRecipe:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if self.positions == "rotary" and (self.width // self.heads) % 2:
            raise ValueError(f"rotary positions turn pairs of channels: width / heads = {self.width // self.heads} must be even")
        return self

    def parameter_count(self) -> int:
        d = self.width
        positions = self.context * d if self.positions == "learned" else 0
        return 256 * d + positions + self.layers * (12 * d * d + 13 * d) + 2 * d


# Fixed recipes. "tiny" is for tests on 2 CPU cores (~0.1M parameters); "small" is the probe size
# on a GPU (2,048 bytes a step, so a 125 kB one-pass probe still takes 61 steps), "base" and
# "large" the validation sizes.
RECIPES: dict[str, ProxyRecipe] = {
    "tiny": ProxyRecipe(layers=2, width=64, heads=2, context=64, batch=16, lr=3e-3),
    "small": ProxyRecipe(layers=4, width=128, heads=4, context=128, batch=16, lr=2e-3),
    "base": ProxyRecipe(layers=4, width=256, heads=4, context=256, batch=32, lr=1.5e-3),
    "large": ProxyRecipe(layers=6, width=384, heads=6, context=256, batch=64, lr=1e-3),
}


@dataclass(frozen=True)
class StreamSlice:
    """Train on the first ``unique`` bytes of ``stream`` until ``seen`` bytes have been seen."""

    stream: np.ndarray  # uint8
    unique: int
    seen: int


def window_plan(parts: list[StreamSlice], context: int, seed: int, in_pass_order: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The training windows as (part index, start offset) pairs, in training order.

    Each part's first ``unique`` bytes are cut into windows of ``context + 1`` bytes (stride
    ``context``); ``seen // context`` windows are drawn by whole passes, each pass a fresh
    permutation, the last pass partial. All parts' windows are then interleaved by one shuffle.
    Repetition is therefore real: a part seen r times shows each of its windows r times.
    ``in_pass_order`` (one part only: a learning curve) skips the final shuffle, so after k
    passes' worth of steps the model has seen every window exactly k times."""
    if in_pass_order and len(parts) != 1:
        raise ValueError("in_pass_order needs exactly one part")
    rng = np.random.default_rng(seed)
    part_ids, offsets = [], []
    for i, part in enumerate(parts):
        unique = min(int(part.unique), len(part.stream))
        n_windows = max(1, (unique - 1) // context)
        draws = max(1, int(round(part.seen / context)))
        full, rest = divmod(draws, n_windows)
        chosen = [rng.permutation(n_windows) for _ in range(full)]
        if rest:
            chosen.append(rng.permutation(n_windows)[:rest])
        idx = np.concatenate(chosen)
        part_ids.append(np.full(len(idx), i, dtype=np.int32))
        offsets.append(idx.astype(np.int64) * context)
    part_ids_all, offsets_all = np.concatenate(part_ids), np.concatenate(offsets)
    if in_pass_order:
        return part_ids_all, offsets_all
    order = rng.permutation(len(part_ids_all))
    return part_ids_all[order], offsets_all[order]


def gather_windows(parts: list[StreamSlice], part_ids: np.ndarray, offsets: np.ndarray, context: int) -> np.ndarray:
    """uint8 array [len(offsets), context + 1] of the windows (vectorized per part)."""
    out = np.zeros((len(offsets), context + 1), dtype=np.uint8)
    ramp = np.arange(context + 1)
    for i, part in enumerate(parts):
        rows = np.nonzero(part_ids == i)[0]
        if not len(rows):
            continue
        stream = part.stream[: max(int(part.unique), context + 1)]
        if len(stream) < context + 1:
            stream = np.resize(stream, context + 1)
        pos = np.minimum(offsets[rows, None] + ramp[None, :], len(stream) - 1)
        out[rows] = stream[pos]
    return out


def _init_params(recipe: ProxyRecipe, key):
    import jax
    import jax.numpy as jnp

    d, std = recipe.width, 0.02
    keys = jax.random.split(key, 2 + 4 * recipe.layers)
    proj_std = std / math.sqrt(2 * recipe.layers)
    params: dict[str, Any] = {
        "tok": jax.random.normal(keys[0], (256, d)) * std,
        "ln_f": {"g": jnp.ones(d), "b": jnp.zeros(d)},
        "blocks": [],
    }
    for layer in range(recipe.layers):
        k = keys[2 + 4 * layer : 6 + 4 * layer]
        params["blocks"].append(
            {
                "ln1": {"g": jnp.ones(d), "b": jnp.zeros(d)},
                "ln2": {"g": jnp.ones(d), "b": jnp.zeros(d)},
                "qkv": jax.random.normal(k[0], (d, 3 * d)) * std,
                "qkv_b": jnp.zeros(3 * d),
                "proj": jax.random.normal(k[1], (d, d)) * proj_std,
                "proj_b": jnp.zeros(d),
                "fc": jax.random.normal(k[2], (d, 4 * d)) * std,
                "fc_b": jnp.zeros(4 * d),
                "out": jax.random.normal(k[3], (4 * d, d)) * proj_std,
                "out_b": jnp.zeros(d),
            }
        )
    if recipe.positions == "learned":
        params["pos"] = jax.random.normal(keys[1], (recipe.context, d)) * std
    return params


def _layer_norm(x, p):
    import jax.numpy as jnp

    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]


def _rotate(t):
    """Rotary position encoding (Su et al., "RoFormer", arXiv 2104.09864) of queries or keys
    [B, heads, T, head_dim]: pairs of channels (i, i + head_dim/2) turned by position × 10000^(-2i/head_dim),
    so a query-key product depends on the two positions' offset only."""
    import jax.numpy as jnp

    half = t.shape[-1] // 2
    angle = jnp.arange(t.shape[-2], dtype=jnp.float32)[:, None] * (10000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half))[None, :]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    first, second = t[..., :half], t[..., half:]
    return jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)


def _forward(params, tokens, recipe: ProxyRecipe, compute_dtype, dropout_key=None):
    """Logits [B, T, 256] (float32) for int32 tokens [B, T]; with ``dropout_key`` (training) the
    recipe's dropout is applied, each site with its own key folded from it."""
    import jax
    import jax.numpy as jnp

    B, T = tokens.shape
    h, d = recipe.heads, recipe.width
    keep = 1.0 - recipe.dropout
    sites = iter(range(1 + 3 * recipe.layers))

    def drop(t):
        if dropout_key is None or recipe.dropout == 0:
            return t
        mask_ = jax.random.bernoulli(jax.random.fold_in(dropout_key, next(sites)), keep, t.shape)
        return jnp.where(mask_, t / keep, 0.0).astype(t.dtype)

    x = params["tok"][tokens]
    if recipe.positions == "learned":
        x = x + params["pos"][:T]
    x = drop(x)
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))

    def mm(a, w):
        return jnp.matmul(a.astype(compute_dtype), w.astype(compute_dtype), preferred_element_type=jnp.float32)

    for blk in params["blocks"]:
        y = _layer_norm(x, blk["ln1"])
        qkv = mm(y, blk["qkv"]) + blk["qkv_b"]
        q, k, v = jnp.split(qkv, 3, axis=-1)
        q, k, v = (t.reshape(B, T, h, d // h).transpose(0, 2, 1, 3) for t in (q, k, v))
        if recipe.positions == "rotary":
            q, k = _rotate(q), _rotate(k)
        att = mm(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d // h)
        att = drop(jax.nn.softmax(jnp.where(mask, att, -1e9), axis=-1))
        y = mm(att, v).transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + drop(mm(y, blk["proj"]) + blk["proj_b"])
        y = _layer_norm(x, blk["ln2"])
        y = jax.nn.gelu(mm(y, blk["fc"]) + blk["fc_b"])
        x = x + drop(mm(y, blk["out"]) + blk["out_b"])
    x = _layer_norm(x, params["ln_f"])
    return mm(x, params["tok"].T)


def _token_losses(params, windows, recipe, compute_dtype, dropout_key=None):
    import jax
    import jax.numpy as jnp

    inputs, targets = windows[:, :-1].astype(jnp.int32), windows[:, 1:].astype(jnp.int32)
    logits = _forward(params, inputs, recipe, compute_dtype, dropout_key)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when jax sees a GPU, else 'cpu'. Asking for 'cuda' without one is an error."""
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"] if _has_backend("gpu") else []
    if device == "auto":
        return "cuda" if gpus else "cpu"
    if device == "cuda" and not gpus:
        raise ValueError("--device cuda: jax sees no CUDA device (install jax with its CUDA plugin, or use --device cpu)")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def _has_backend(name: str) -> bool:
    import jax

    try:
        return bool(jax.devices(name))
    except RuntimeError:
        return False


@dataclass
class TrainedProxy:
    params: object
    recipe: ProxyRecipe
    device: str
    steps: int
    tokens_seen: int
    seconds: float
    train_loss: float


_COMPILED: dict = {}


def _compiled(recipe: ProxyRecipe, device: str):
    """The jitted training step and evaluation loss for one recipe and device, built once per
    process (the schedule's length is an argument, so every probe of a grid reuses them)."""
    key = (recipe.model_dump_json(), device)
    if key in _COMPILED:
        return _COMPILED[key]
    import jax
    import jax.numpy as jnp

    compute_dtype = jnp.bfloat16 if device == "cuda" else jnp.float32

    def lr_at(step, steps, warm):
        step = step.astype(jnp.float32)
        warm_lr = recipe.lr * (step + 1) / warm
        frac = jnp.clip((step - warm) / jnp.maximum(1.0, steps - warm), 0.0, 1.0)
        floor = recipe.lr * recipe.final_lr_ratio
        cos_lr = floor + 0.5 * (recipe.lr - floor) * (1 + jnp.cos(jnp.pi * frac))
        return jnp.where(step < warm, warm_lr, cos_lr)

    def loss_fn(params, windows, dropout_key):
        return _token_losses(params, windows, recipe, compute_dtype, dropout_key).mean()

    def step_fn(state, windows, steps, warm, seed):
        params, m, v, step = state
        # the step's dropout masks: a function of the run's seed and the step only (deterministic)
        dropout_key = jax.random.fold_in(jax.random.PRNGKey(seed), step) if recipe.dropout > 0 else None
        loss, grads = jax.value_and_grad(loss_fn)(params, windows, dropout_key)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.minimum(1.0, recipe.grad_clip / (norm + 1e-6))
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        b1, b2, eps = 0.9, 0.95, 1e-8
        m = jax.tree_util.tree_map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        t = (step + 1).astype(jnp.float32)
        lr = lr_at(step, steps, warm)

        def update(p, mm_, vv):
            upd = (mm_ / (1 - b1**t)) / (jnp.sqrt(vv / (1 - b2**t)) + eps)
            if p.ndim >= 2:  # weight decay on matrices and embeddings, not on gains and biases
                upd = upd + recipe.weight_decay * p
            return p - lr * upd

        params = jax.tree_util.tree_map(update, params, m, v)
        return (params, m, v, step + 1), loss

    @jax.jit
    def sum_loss(params, windows, rows):
        losses = _token_losses(params, windows, recipe, compute_dtype)
        return jnp.where(jnp.arange(windows.shape[0]) < rows, losses.sum(axis=1), 0.0).sum()

    @jax.jit
    def chunk_fn(state, windows, steps, warm, seed):
        """CHUNK steps in one dispatch (lax.scan): windows [CHUNK, batch, context + 1]."""
        return jax.lax.scan(lambda st, w: step_fn(st, w, steps, warm, seed), state, windows)

    _COMPILED[key] = (chunk_fn, jax.jit(step_fn), sum_loss)
    return _COMPILED[key]


def _recent_bits(losses: list, steps: int) -> float:
    """Mean training loss (bits per byte) of the last 5% of ``steps`` steps so far."""
    per_step = np.concatenate([np.atleast_1d(np.asarray(v)) for v in losses])
    return float(per_step[-max(1, steps // 20) :].mean()) / math.log(2)


CHUNK = 16  # training steps per dispatch: small models are bound by per-step launch overhead


def train(
    parts: list[StreamSlice],
    recipe: ProxyRecipe,
    seed: int = 0,
    device: str = "auto",
    progress=None,
    checkpoints: list[int] | None = None,
    on_checkpoint=None,
    warmup_steps: int | None = None,
) -> TrainedProxy:
    """Train one proxy from scratch on ``parts``; ``progress(step, steps)`` is called now and then.

    With ``checkpoints`` (bytes seen, one part only) the run is a learning curve: windows in pass
    order, the learning rate constant after warm-up (no decay follows it), and
    ``on_checkpoint(checkpoint, model)`` is called as the run passes each checkpoint (at the
    nearest whole step). ``warmup_steps`` overrides the warm-up of ``recipe.warmup`` × the run's
    steps: curves of one grid share it, so at equal bytes seen every curve has followed the same
    learning-rate schedule whatever its length."""
    import jax
    import jax.numpy as jnp

    device = resolve_device(device)
    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    started = time.time()
    curve = checkpoints is not None
    part_ids, offsets = window_plan(parts, recipe.context, seed, in_pass_order=curve)
    steps = max(1, len(offsets) // recipe.batch)
    warm = max(1, int(recipe.warmup * steps)) if warmup_steps is None else max(1, int(warmup_steps))
    step_bytes = recipe.batch * recipe.context
    at_step: dict[int, list[int]] = {}  # step -> the checkpoints (bytes seen) it stands for
    for c in checkpoints or []:
        at_step.setdefault(min(steps, max(1, int(round(c / step_bytes)))), []).append(c)
    stops = sorted(at_step)
    chunk_fn, step_fn, _ = _compiled(recipe, device)
    with jax.default_device(dev):
        params = _init_params(recipe, jax.random.PRNGKey(seed))
        state = (params, jax.tree_util.tree_map(jnp.zeros_like, params), jax.tree_util.tree_map(jnp.zeros_like, params), jnp.asarray(0, jnp.int32))
        # a constant schedule is the cosine one with a horizon it never reaches
        steps_arg, warm_arg = jnp.asarray(1e12 if curve else steps, jnp.float32), jnp.asarray(warm, jnp.float32)
        seed_arg = jnp.asarray(seed + 1_000_003, jnp.uint32)  # dropout's key stream, apart from the initialization's
        losses = []
        s = 0
        while s < steps:
            limit = next((c for c in stops if c > s), steps)
            k = CHUNK if limit - s >= CHUNK else 1  # whole chunks, then single steps: two compiled shapes
            rows = slice(s * recipe.batch, (s + k) * recipe.batch)
            windows = gather_windows(parts, part_ids[rows], offsets[rows], recipe.context)
            if k == CHUNK:
                state, loss = chunk_fn(state, jnp.asarray(windows.reshape(k, recipe.batch, -1)), steps_arg, warm_arg, seed_arg)
            else:
                state, loss = step_fn(state, jnp.asarray(windows), steps_arg, warm_arg, seed_arg)
            losses.append(loss)
            s += k
            if progress is not None:
                progress(s, steps)
            if on_checkpoint is not None and s in at_step:
                now = TrainedProxy(state[0], recipe, device, s, s * step_bytes, time.time() - started, _recent_bits(losses, s))
                for c in at_step[s]:
                    on_checkpoint(c, now)
        final_bits = _recent_bits(losses, steps)
    return TrainedProxy(
        params=state[0],
        recipe=recipe,
        device=device,
        steps=steps,
        tokens_seen=steps * recipe.batch * recipe.context,
        seconds=time.time() - started,
        train_loss=final_bits,
    )


def bits_per_byte(model: TrainedProxy, stream: np.ndarray, max_bytes: int | None = None) -> float:
    """Mean bits per byte of ``stream`` under ``model``: non-overlapping windows of context + 1
    bytes, every byte after a window's first is predicted once (deterministic)."""
    import jax
    import jax.numpy as jnp

    recipe = model.recipe
    ctx = recipe.context
    if max_bytes is not None:
        stream = stream[:max_bytes]
    n = (len(stream) - 1) // ctx
    if n < 1:
        raise ValueError("target text shorter than one context window")
    starts = np.arange(n, dtype=np.int64) * ctx
    windows = stream[starts[:, None] + np.arange(ctx + 1)[None, :]]
    _, _, sum_loss = _compiled(recipe, model.device)
    batch = max(recipe.batch, 64)
    total = 0.0
    with jax.default_device(jax.devices("gpu" if model.device == "cuda" else "cpu")[0]):
        for i in range(0, n, batch):
            chunk = windows[i : i + batch]
            rows = len(chunk)
            if rows < batch:  # pad to the one compiled shape; padded rows are not counted
                chunk = np.concatenate([chunk, np.zeros((batch - rows, ctx + 1), np.uint8)])
            total += float(sum_loss(model.params, jnp.asarray(chunk), rows))
    return total / (n * ctx) / math.log(2)
