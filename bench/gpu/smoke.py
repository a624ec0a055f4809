"""Device smoke test: jax sees the GPU, pydantic imports, proxy throughput per recipe."""
import sys, time
import numpy as np
import jax
print("jax", jax.__version__, jax.devices())
try:
    import pydantic
    print("pydantic", pydantic.VERSION)
except ImportError as e:
    print("no pydantic", e); sys.exit(0)
from tiers.proxy_lm import RECIPES, StreamSlice, train, bits_per_byte, encode_examples
rng = np.random.default_rng(0)
stream = rng.integers(1, 256, 4_000_000).astype(np.uint8)
tgt = encode_examples(["hello world " * 20] * 500)
for name in sys.argv[1:]:
    r = RECIPES[name]
    for tokens in (2_000_000, 8_000_000):
        t = time.time()
        m = train([StreamSlice(stream, 4_000_000, tokens)], r, seed=0, device="cuda")
        bpb = bits_per_byte(m, tgt)
        print(name, r.parameter_count(), tokens, m.steps, f"{time.time()-t:.1f}s", f"{m.tokens_seen/(time.time()-t):.0f} tok/s", bpb, flush=True)
