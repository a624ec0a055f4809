"""Tier policy (L0–L4, Wang et al. 2026) and training-mix selection (projektor OT, QQT).

Empty until those stages land (issues 5 and 7); ``flows`` will compose them after dedup.
"""
