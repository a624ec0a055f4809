"""Large-star/small-star components agree with union-find on random and adversarial graphs."""

import random

import pytest

from curation.components import connected_components


def _union_find(pairs):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


@pytest.mark.parametrize("shape", ["random", "chain", "star"])
def test_components_match_union_find(spark, shape):
    rng = random.Random(5)
    ids = [f"n{i:04d}" for i in range(600)]
    if shape == "random":
        pairs = [(rng.choice(ids), rng.choice(ids)) for _ in range(500)]
    elif shape == "chain":  # long diameter, worst case for label propagation
        order = ids[:]
        rng.shuffle(order)
        pairs = list(zip(order, order[1:]))
    else:
        pairs = [(ids[0], x) for x in ids[1:50]] + [(ids[100], ids[200])]
    pairs = [(a, b) for a, b in pairs if a != b]
    expected = _union_find(pairs)
    got = {r["node"]: r["component"] for r in connected_components(spark.createDataFrame(pairs, "src string, dst string")).collect()}
    assert got == expected


def test_local_components_match_union_find():
    import numpy as np

    from curation.components import components_local

    rng = random.Random(8)
    ids = [f"n{i:04d}" for i in range(400)]
    pairs = [(rng.choice(ids), rng.choice(ids)) for _ in range(300)]
    pairs = [(a, b) for a, b in pairs if a != b]
    nodes, comp = components_local(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
    assert dict(zip(nodes.tolist(), comp.tolist())) == _union_find(pairs)


def test_auto_uses_local_below_the_limit_and_agrees(spark):
    from curation.components import connected_components_auto

    pairs = [("b", "a"), ("c", "b"), ("e", "d"), ("x", "y")]
    df = spark.createDataFrame(pairs, "src string, dst string")
    local = {r["node"]: r["component"] for r in connected_components_auto(df).collect()}
    distributed = {r["node"]: r["component"] for r in connected_components_auto(df, local_max_edges=0).collect()}
    assert local == distributed == _union_find(pairs)
