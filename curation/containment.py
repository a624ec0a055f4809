"""Dataset containment across a lake, after R2D2 (Shah, Mukherjee, Tyagi, Mitra, Karnam, Bhosale,
Joshi; SIGMOD 2024, arXiv 2312.13427): schema containment graph -> min-max pruning -> content
pruning -> exact verification. Kernels here are plain Python/numpy over catalog entries
(:mod:`connectors.lake_catalog`) and Arrow tables; the Spark verification is in
:mod:`curation.containment_spark`.

A ⊑ B when every distinct row of A, projected on cols(A), appears in B projected on cols(A); the
ratio is the share of A's distinct rows that do. Only the abstract of R2D2 is available
(``../shared/reference/containment.md``); each rule below is inferred from that definition, and
none can drop a true containment:

* **Schema** — names normalized (NFKC, lower-case, runs of non-alphanumerics -> ``_``, trimmed);
  types compatible within a family (every integer and floating width, both directions, since
  values decide and CSV types are only inferred; any string type; date/timestamp). Candidates come from an inverted index column -> tables: a child's candidate
  parents are the intersection of its columns' posting lists (rarest first), never all n² pairs.
  A ⊑ B requires cols(A) ⊆ cols(B), so no true pair is lost. Equal schemas give edges both ways.
* **Min-max** (ratio 1.0 only: every row of A must then appear in B) — drop A→B when a column's
  [min, max] in A is not inside B's, or A has nulls in a column where B has none. A column without
  statistics never prunes. For a ratio below 1.0 these rules do not hold and are skipped.
* **Content** — A's rows are hashed once (projected on its own columns), B's once per projection;
  if A has more distinct rows than B has rows the pair is dropped (a count, not an estimate). Then
  ``sample`` of A's distinct rows (seeded) are probed against B's projected row hashes: for ratio
  1.0 one missing sampled row drops the pair, which is exact (a missing row proves
  non-containment); for a ratio r < 1 the pair is dropped only when the sampled hits are below what
  a pair with ratio >= r shows with probability 1 - 1e-6 (one-sided Hoeffding bound), so a true
  pair is lost with probability <= 1e-6 and a non-contained pair survives to verification.
* **Exact verification** — distinct row hashes (64-bit, of the projected row rendered canonically:
  numbers as doubles, so int 5 = double 5.0) of A minus those of B; ratio = |A ∩ B| / |A|.
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INTS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "integer", "long", "short", "byte"}


def normalize_name(name: str) -> str:
    name = unicodedata.normalize("NFKC", str(name)).strip().lower()
    return re.sub(r"[^0-9a-z]+", "_", name).strip("_")


def type_family(t: str) -> str:
    t = t.lower()
    if t.startswith(("string", "large_string", "utf8", "large_utf8", "str")):
        return "string"
    if t in _INTS:
        return "int"
    if t in ("float", "double", "halffloat", "float16", "float32", "float64") or t.startswith("decimal"):
        return "float"
    if t.startswith(("timestamp", "date")):
        return "time"
    if t in ("bool", "boolean"):
        return "bool"
    return t


def compatible(child: str, parent: str) -> bool:
    """Can values of type ``child`` appear in a column of type ``parent``? Any two numeric types can
    (widening int32→int64→double is one case; a CSV's inferred int64 holding an int32 column's
    values, or a narrowed copy, are others): the values decide, in verification."""
    c, p = type_family(child), type_family(parent)
    return c == p or {c, p} == {"int", "float"}


def schema_of(table) -> dict[str, str]:
    """{normalized column name: type} of a catalog entry (first spelling wins on a clash)."""
    out: dict[str, str] = {}
    for name, st in table.columns.items():
        out.setdefault(normalize_name(name), st.type)
    return out


def schema_candidates(tables) -> list[tuple[int, int]]:
    """(child index, parent index) pairs with cols(child) ⊆ cols(parent), types compatible."""
    schemas = [schema_of(t) for t in tables]
    index: dict[str, set[int]] = {}
    for i, sch in enumerate(schemas):
        for col in sch:
            index.setdefault(col, set()).add(i)
    pairs = []
    for i, sch in enumerate(schemas):
        if not sch or tables[i].error:
            continue
        cols = sorted(sch, key=lambda c: len(index[c]))
        cand = set(index[cols[0]])
        for c in cols[1:]:
            cand &= index[c]
            if len(cand) <= 1:
                break
        for j in sorted(cand - {i}):
            if tables[j].error:
                continue
            if all(compatible(sch[c], schemas[j][c]) for c in sch):
                pairs.append((i, j))
    return pairs


def _stats_by_norm(table) -> dict:
    out: dict = {}
    for name, st in table.columns.items():
        out.setdefault(normalize_name(name), st)
    return out


def _comparable(a, b) -> bool:
    try:
        a < b  # noqa: B015
        return True
    except TypeError:
        return False


def minmax_keep(child, parent) -> tuple[bool, str | None]:
    """(keep, reason dropped) for ratio 1.0 from statistics alone."""
    cs, ps = _stats_by_norm(child), _stats_by_norm(parent)
    if child.rows > 0 and parent.rows == 0:
        return False, "parent_empty"
    for col, c in cs.items():
        p = ps.get(col)
        if p is None or not (c.has_stats and p.has_stats):
            continue
        if (c.nulls or 0) > 0 and p.nulls == 0:
            return False, "nulls"
        if c.min is not None and p.min is not None and _comparable(c.min, p.min) and c.min < p.min:
            return False, "min"
        if c.max is not None and p.max is not None and _comparable(c.max, p.max) and c.max > p.max:
            return False, "max"
    return True, None


def row_hashes(table: pa.Table, columns: list[str]) -> np.ndarray:
    """64-bit hash per row of ``table`` projected on ``columns`` (in that order), values rendered
    canonically so widened types compare equal (int 5 == double 5.0; nulls distinct from '')."""
    import polars as pl

    exprs = []
    for c in columns:
        col = table.column(c)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
            col = pc.cast(col, pa.float64())
        elif not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = pc.cast(col, pa.string())
        exprs.append(pl.Series(c, col).cast(pl.String).fill_null("\x00null\x00"))
    if not exprs:
        return np.zeros(table.num_rows, np.uint64)
    df = pl.DataFrame(exprs)
    return df.select(pl.concat_str(pl.all(), separator="\x1f").hash(seed=7)).to_series().to_numpy()


def needed_hits(ratio: float, sample: int) -> int:
    """Fewest sampled hits a true ratio >= ``ratio`` pair shows except with probability 1e-6
    (Hoeffding: P(hits <= s·ratio - t) <= exp(-2t²/s))."""
    if ratio >= 1.0:
        return sample
    t = math.sqrt(sample * math.log(1e6) / 2)
    return max(0, math.floor(sample * ratio - t))


def content_keep(child_sample: np.ndarray, parent_hashes: np.ndarray, ratio: float) -> tuple[bool, int]:
    """(keep, hits) for sampled child row hashes probed against the parent's projected row hashes."""
    if len(child_sample) == 0:
        return True, 0
    hits = int(np.isin(child_sample, parent_hashes).sum())
    return hits >= needed_hits(ratio, len(child_sample)), hits


def exact_ratio(child_hashes: np.ndarray, parent_hashes: np.ndarray) -> tuple[float, int]:
    """(share of the child's distinct rows found in the parent, child's distinct rows)."""
    distinct = np.unique(child_hashes)
    if len(distinct) == 0:
        return 1.0, 0
    return float(np.isin(distinct, parent_hashes).mean()), int(len(distinct))
