"""Connected components on Spark DataFrames by alternating large-star / small-star
(Kiveris, Lattanzi, Mirrokni, Rastogi & Vassilvitskii, "Connected Components in MapReduce and
Beyond", SoCC 2014). No GraphFrames (its JAR is not reachable from pip).

Large-star: for each node u with neighbours N(u), m = min(N(u) ∪ {u}); every neighbour v > u is
re-linked to m. Small-star: orient every edge from the larger to the smaller node; for each u,
m = min(smaller neighbours ∪ {u}); u and each smaller neighbour are linked to m. Repeat until the
edge set stops changing; every component is then a star around its smallest node. Converges in
O(log² n) rounds (the paper's bound); lineage is cut with ``localCheckpoint`` each round.
"""
from __future__ import annotations


def connected_components(edges, max_rounds: int = 40):
    """``edges``: DataFrame (src, dst) of string node ids. Returns (node, component) for every node
    on an edge, component = the smallest node id of its component."""
    from pyspark.sql import functions as F

    e = edges.where(F.col("src") != F.col("dst")).select(
        F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).distinct().localCheckpoint()
    for _ in range(max_rounds):
        # large-star
        both = e.unionByName(e.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
        m = both.groupBy("src").agg(F.least(F.min("dst"), F.first("src")).alias("m"))
        large = (both.join(m, "src").where(F.col("dst") > F.col("src"))
                 .select(F.col("dst").alias("src"), F.col("m").alias("dst")).distinct())
        # small-star (edges oriented larger -> smaller)
        oriented = large.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).where(F.col("src") != F.col("dst"))
        m2 = oriented.groupBy("src").agg(F.min("dst").alias("m"))
        small = (oriented.join(m2, "src").where(F.col("dst") != F.col("m"))
                 .select(F.col("dst").alias("src"), F.col("m").alias("dst"))
                 .unionByName(m2.select("src", F.col("m").alias("dst")))
                 .select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
                 .distinct().localCheckpoint())
        changed = small.exceptAll(e).limit(1).count() + e.exceptAll(small).limit(1).count()
        e = small
        if changed == 0:
            break
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    # converged: every edge is (member, root); roots map to themselves
    members = e.select(F.col("src").alias("node"), F.col("dst").alias("component"))
    roots = e.select(F.col("dst").alias("node"), F.col("dst").alias("component")).distinct()
    return members.unionByName(roots).groupBy("node").agg(F.min("component").alias("component"))
