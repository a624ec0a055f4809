"""Which contained tables to delete: storage saved against access cost, within latency bounds.

R2D2 (arXiv 2312.13427) deletes redundant datasets that can be "reconstructed on demand" so as to
minimize "total storage and access costs ... while respecting latency constraints"; only the
abstract is public, so the program below is tierlake's formulation of that sentence
(``../shared/reference/containment.md`` §2, deletion):

    variables  x_i ∈ {0,1}  delete table i;   y_ij ∈ {0,1}  rebuild i from parent j
    minimize   Σ_i storage_i · (1 − x_i)  +  Σ_ij access_i · rebuild_cost_ij · y_ij
    subject to Σ_j y_ij = x_i            (a deleted table has exactly one source)
               y_ij + x_j ≤ 1            (its source is kept: never rebuild from a deleted table)
               y_ij = 0 unless rebuild_seconds_ij ≤ latency_i   (the latency bound)

storage_i = bytes · price per GB-month; rebuild_seconds_ij = parent bytes / read throughput;
rebuild_cost_ij = rebuild_seconds · compute price per second; access_i = reads per month (from a
CSV of accesses or a default). Only verified edges with ratio 1.0 are candidates. The integer
program is solved exactly with scipy's ``milp`` (HiGHS) up to ``max_exact_edges`` edges; above it a
greedy pass takes deletions by net saving, each only if a kept parent remains (and pins that
parent), which keeps every deletion reconstructable but may save less.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field


class CostModel(BaseModel):
    model_config = {"extra": "forbid"}
    storage_usd_per_gb_month: float = Field(0.023, ge=0)
    compute_usd_per_hour: float = Field(0.50, ge=0, description="cost of the machine that rebuilds a table")
    read_mb_per_s: float = Field(200.0, gt=0, description="throughput of reading the parent to rebuild")
    default_accesses_per_month: float = Field(10.0, ge=0)
    accesses: dict[str, float] = Field(default_factory=dict, description="table path -> reads per month")
    default_latency_seconds: float = Field(60.0, gt=0)
    latency_seconds: dict[str, float] = Field(default_factory=dict, description="table path -> latency bound")
    max_exact_edges: int = Field(20_000, ge=0)


def plan_deletions(tables: dict[str, int], edges: list[tuple[str, str]], costs: CostModel) -> dict:
    """``tables``: path -> bytes; ``edges``: (child, parent) verified with ratio 1.0.
    Returns {"delete": [{table, parent, seconds, saving}], "method", "savings_usd_month", ...}."""
    gb = 1024**3
    storage = {t: b / gb * costs.storage_usd_per_gb_month for t, b in tables.items()}
    cand = []
    for child, parent in edges:
        seconds = tables[parent] / (costs.read_mb_per_s * 1024 * 1024)
        if seconds <= costs.latency_seconds.get(child, costs.default_latency_seconds):
            access = costs.accesses.get(child, costs.default_accesses_per_month)
            cand.append((child, parent, seconds, access * seconds * costs.compute_usd_per_hour / 3600))
    nodes = sorted({c for c, *_ in cand})
    if not cand:
        return {"method": "none", "delete": [], "savings_usd_month": 0.0, "candidate_edges": 0}
    if len(cand) <= costs.max_exact_edges:
        chosen, method = _exact(nodes, cand, storage), "milp"
    else:
        chosen, method = _greedy(cand, storage), "greedy"
    delete = [{"table": c, "parent": p, "rebuild_seconds": round(s, 4), "saving_usd_month": round(storage[c] - a, 6)} for c, p, s, a in chosen]
    return {
        "method": method,
        "candidate_edges": len(cand),
        "delete": sorted(delete, key=lambda d: d["table"]),
        "savings_usd_month": round(sum(d["saving_usd_month"] for d in delete), 6),
        "bytes_freed": int(sum(tables[d["table"]] for d in delete)),
    }


def _exact(nodes, cand, storage):
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    idx = {t: k for k, t in enumerate(nodes)}
    n, m = len(nodes), len(cand)
    # variables: x (n) then y (m); minimise -storage·x + access_cost·y (constant Σ storage dropped)
    c = np.concatenate([[-storage[t] for t in nodes], [a for *_, a in cand]])
    a = lil_matrix((n + m, n + m))
    lo, hi = [], []
    for t in nodes:  # Σ_j y_tj − x_t = 0
        a[idx[t], idx[t]] = -1
        lo.append(0)
        hi.append(0)
    for k, (child, parent, *_rest) in enumerate(cand):
        a[n + k, n + k] = 1
        a[idx[child], n + k] = 1
        if parent in idx:  # y_k + x_parent <= 1
            a[n + k, idx[parent]] = 1
        lo.append(-np.inf)
        hi.append(1)
    res = milp(c, constraints=LinearConstraint(a.tocsr(), lo, hi), integrality=np.ones(n + m), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        return _greedy(cand, storage)
    y = res.x[n:] > 0.5
    return [cand[k] for k in np.flatnonzero(y)]


def _greedy(cand, storage):
    deleted, pinned, out = set(), set(), []
    for child, parent, s, a in sorted(cand, key=lambda e: -(storage[e[0]] - e[3])):
        if storage[child] - a <= 0 or child in deleted or child in pinned or parent in deleted:
            continue
        deleted.add(child)
        pinned.add(parent)
        out.append((child, parent, s, a))
    return out
