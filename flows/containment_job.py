"""``tierlake containment LAKE OUTPUT``: which tables of a lake are contained in which.

Orchestration only: catalog (:mod:`connectors.lake_catalog`, cached in ``OUTPUT/catalog.json``)
-> funnel (:mod:`curation.containment_stage`) -> ``OUTPUT/edges.parquet`` (child, parent as paths
relative to the lake root, ratio, child_rows, verified), ``OUTPUT/funnel.json`` (pairs left and
seconds per stage) and ``OUTPUT/report.md``, each written under a temporary name and renamed.
"""

from __future__ import annotations

import os

from curation.containment_stage import run_containment  # noqa: F401  (the CLI's containment command calls it from here)

# ---------------------------------------------------------------- deletion plan costs (YAML)


def load_costs(path: str | None):
    import csv

    import yaml
    from pydantic import ValidationError

    from curation.deletion_plan import CostModel
    from flows.recipe import RecipeError, _format_errors

    if not path:
        return CostModel()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise RecipeError(f"costs file not found: {path}") from None
    csv_path = data.pop("accesses_csv", None)
    try:
        costs = CostModel.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(path, exc)) from None
    if csv_path:
        full = csv_path if os.path.isabs(csv_path) else os.path.join(os.path.dirname(os.path.abspath(path)), csv_path)
        with open(full, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), 2):
                try:
                    costs.accesses[row["table"]] = float(row["accesses_per_month"])
                except (KeyError, ValueError):
                    raise RecipeError(f"{full}:{lineno}: expected columns table,accesses_per_month with a number") from None
    return costs
