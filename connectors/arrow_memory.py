"""Arrow's memory pool for the processes that run tierlake's stages: jemalloc where the pyarrow
build has it, unless the user chose a pool (``ARROW_DEFAULT_MEMORY_POOL``).

The pool does not change a single output byte, only how fresh memory is obtained. pyarrow 26's
default on Linux is mimalloc; with it the one-process dedup of 100,000 documents took a median
11.2 s against 9.1 s with jemalloc (seven alternating pairs, jemalloc faster in each; the gather
and write of the sorted kept shard and the ingest stage gained most). See docs/engine.md,
"Engines", and docs/benchmarks.md, "Dedup: tierlake vs rensa".
"""

from __future__ import annotations

import os


def use_jemalloc() -> str:
    """Make jemalloc Arrow's default memory pool for this process, unless ``ARROW_DEFAULT_MEMORY_POOL``
    names another or this build lacks it; return the pool in use."""
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.default_memory_pool().backend_name
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (Windows wheels)
        return pa.default_memory_pool().backend_name
    pa.set_memory_pool(pool)
    return pool.backend_name
