"""Arrow's memory pool for the processes that run tierlake's stages: jemalloc where the pyarrow
build has it, unless the user chose a pool (``ARROW_DEFAULT_MEMORY_POOL``).

The pool does not change a single output byte, only how fresh memory is obtained. pyarrow 26's
default on Linux is mimalloc; with it the one-process dedup of 100,000 documents took a median
11.56 s against 9.40 s with jemalloc, jemalloc faster in each of four alternating pairs and most of
the gain outside the stages, in writing the sorted kept shard (``bench/arrow_memory_pool.py``,
docs/benchmarks.md "Arrow memory pool: jemalloc vs mimalloc"; docs/engine.md, "Engines").
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
