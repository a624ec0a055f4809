"""Reading and writing: files, lakes, object stores, Parquet shards, manifests, the Spark engine.

Nothing here knows about dedup, tiers or selection; ``curation`` and ``tiers`` build on it.
"""
