"""User errors of the command line and recipes, and how a run's failures are told apart (a module of
its own, so `tierlake` starts without importing every stage's dependencies)."""

from __future__ import annotations

import errno
from collections.abc import Iterator


class RecipeError(Exception):
    """A recipe that cannot run; the message names the field and the expected value."""


class OutOfMemory(Exception):
    """Spark (or this process) ran out of memory in a stage: a resource limit, not a transient
    failure, so a stage is not retried for it, and the command line prints the memory advice."""


def error_chain(exc: BaseException | None) -> Iterator[tuple[BaseException, str]]:
    """(exception, its text) along ``exc``'s causes and contexts. The text of a Py4J error comes from
    its JVM; one whose JVM is gone gives its type name instead of raising."""
    while exc is not None:
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 — a Py4J error whose JVM is gone cannot say more
            text = type(exc).__name__
        yield exc, text
        exc = exc.__cause__ or exc.__context__


def is_out_of_memory(exc: BaseException | None) -> bool:
    """The JVM (or Python) ran out of memory, here or inside a Spark task (then only the text of
    the Py4J error says so)."""
    return any(isinstance(e, (MemoryError, OutOfMemory)) or "OutOfMemoryError" in text for e, text in error_chain(exc))


def is_spark_gone(exc: BaseException | None) -> bool:
    """The Spark JVM this process talks to has stopped (Py4J lost its connection): nothing retried
    in this process can use it again."""
    return any(type(e).__name__ in ("Py4JNetworkError", "ConnectionRefusedError") for e, _ in error_chain(exc))


def is_no_space_left(exc: BaseException | None) -> bool:
    """ENOSPC, raised here or inside a Spark task (then only its text says so)."""
    return any(isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left on device" in text for e, text in error_chain(exc))
