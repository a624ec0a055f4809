"""Orchestration only: the Prefect flows, Spark job entry points, recipes and the CLI."""
