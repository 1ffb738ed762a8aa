"""How the engine's messages count things: "1 row", "2 rows" (a trial read "1 rows" in an ingest note).

Hand-written: the engine's nouns are few and regular, and a pluralisation library would be a
dependency for one suffix."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the plural (``plural``, default ``noun + "s"``) unless ``n`` is 1:
    ``counted(1, "row") == "1 row"``, ``counted(3, "row") == "3 rows"``, ``counted(0, "row") == "0 rows"``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb that agrees with a count of ``n``: ``verb(1, "has", "have") == "has"``."""
    return singular if n == 1 else plural
