"""User errors of the command line and recipes (a module of its own, so `tierlake` starts without
importing every stage's dependencies)."""

from __future__ import annotations


class RecipeError(Exception):
    """A recipe that cannot run; the message names the field and the expected value."""


class OutOfMemory(Exception):
    """Spark (or this process) ran out of memory in a stage: a resource limit, not a transient
    failure, so a stage is not retried for it, and the command line prints the memory advice."""
