"""Optional L3 refiner: rewrite documents through an OpenAI-compatible chat-completions endpoint.

Wang et al. 2026 refine L3 data by LLM rewriting (UltraData-Math ``L3-Generator``: OpenAI-compatible
prompts for Q&A, textbook and multi-style rewrites). tierlake calls any server that speaks
``POST {endpoint}/chat/completions`` (vLLM, llama.cpp, TGI, a hosted API), off by default. The
original stays in ``documents/``; rewrites go beside it in ``refined/`` (id, refined_text, model,
error), so nothing is replaced and a failed call is a row with its error, not a lost document.

The key comes from the environment variable the recipe names, never from the recipe, and never
reaches logs or outputs. Calls run concurrently per partition (network-bound, not a hot loop).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from tiers.policy import RefinerSettings

REFINED_SCHEMA = pa.schema([("id", pa.string()), ("refined_text", pa.string()), ("model", pa.string()), ("error", pa.string())])


def rewrite_one(text: str, settings: RefinerSettings, api_key: str | None) -> tuple[str | None, str | None]:
    """(rewritten text, None) or (None, error message)."""
    body = json.dumps(
        {
            "model": settings.model,
            "max_tokens": settings.max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": settings.prompt.format(text=text)}],
        }
    ).encode()
    req = urllib.request.Request(
        settings.endpoint.rstrip("/") + "/chat/completions",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=settings.timeout_seconds) as resp:
            reply = json.loads(resp.read())
        return reply["choices"][0]["message"]["content"], None
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return None, f"unreachable: {getattr(exc, 'reason', exc)}"
    except (KeyError, IndexError, ValueError):
        return None, "malformed response"


def _api_key(settings: RefinerSettings) -> str | None:
    """The key from the environment variable the recipe names, read where the run starts (Spark's
    Python workers may have started before it was set)."""
    return os.environ.get(settings.api_key_env) if settings.api_key_env else None


def refine_batches(batches, settings: RefinerSettings, api_key: str | None):
    """(id, refined_text, model, error) batches for batches of (id, text): both engines' kernel."""
    with ThreadPoolExecutor(settings.concurrency) as pool:
        for batch in batches:
            ids, texts = batch.column("id").to_pylist(), batch.column("text").to_pylist()
            results = list(pool.map(lambda t: rewrite_one(t or "", settings, api_key), texts))
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(ids, pa.string()),
                    pa.array([r[0] for r in results], pa.string()),
                    pa.array([settings.model] * len(ids), pa.string()),
                    pa.array([r[1] for r in results], pa.string()),
                ],
                schema=REFINED_SCHEMA,
            )


def refine(docs, settings: RefinerSettings):
    """(id, refined_text, model, error) for every row of the Spark frame ``docs`` (id, text)."""
    api_key = _api_key(settings)
    return docs.mapInArrow(lambda batches: refine_batches(batches, settings, api_key), "id string, refined_text string, model string, error string")


def refine_local(docs: pa.Table, settings: RefinerSettings) -> pa.Table:
    """:func:`refine` on an Arrow table (id, text)."""
    return pa.Table.from_batches(list(refine_batches(docs.select(["id", "text"]).to_batches(), settings, _api_key(settings))), schema=REFINED_SCHEMA)
