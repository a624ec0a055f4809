"""Device smoke test: jax sees the GPU, pydantic imports, proxy throughput per recipe.

python3 bench/gpu/smoke.py small base large      (on the GPU machine; output in docs/selection.md)
"""

import sys
import time

import jax
import numpy as np

print("jax", jax.__version__, jax.devices())
try:
    import pydantic

    from tiers.proxy_lm import RECIPES, StreamSlice, bits_per_byte, train
except ImportError as e:
    print("missing", e)
    sys.exit(0)
print("pydantic", pydantic.VERSION)
rng = np.random.default_rng(0)
stream = rng.integers(1, 256, 4_000_000).astype(np.uint8)
tgt = np.frombuffer(b"".join(b"\x00" + b"hello world " * 20 for _ in range(500)), np.uint8)
for name in sys.argv[1:]:
    r = RECIPES[name]
    for tokens in (2_000_000, 8_000_000):
        t = time.time()
        m = train([StreamSlice(stream, 4_000_000, tokens)], r, seed=0, device="cuda")
        bpb = bits_per_byte(m, tgt)
        print(
            name, r.parameter_count(), tokens, m.steps, f"{time.time() - t:.1f}s", f"{m.tokens_seen / (time.time() - t):.0f} tok/s", bpb, flush=True
        )
