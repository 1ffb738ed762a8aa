"""Appending to the label ledger: the one writer of ``label_ledger`` rows (reviews, votes,
consensus, rules, propagated verdicts). Ingest events are derived from ``examples`` instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from data_engine.store.warehouse import last_event_id

EVENT_COLUMNS = ("example_id", "example_version", "label", "source", "actor", "detail")


def append_events(con: duckdb.DuckDBPyConnection, events: Sequence[dict[str, Any]] | pd.DataFrame) -> list[int]:
    """Append ``events`` (each with :data:`EVENT_COLUMNS`; ``label`` None is a discard, ``detail``
    a JSON string) to the ledger in order, in one set-wise insert; return their event ids.

    The caller owns the transaction. Ids are assigned up front (highest id + 1, ...), so the
    ledger's order is the order decided here.
    """
    frame = events.copy() if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
    if frame.empty:
        return []
    base = last_event_id(con)
    ids = list(range(base + 1, base + 1 + len(frame)))
    frame = frame.reset_index(drop=True)
    frame.insert(0, "event_id", ids)
    frame["label"] = frame["label"].astype(object).where(frame["label"].notna(), None)
    con.register("_events", frame)
    try:
        con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor, detail) "
                    "SELECT event_id, example_id, example_version, CAST(label AS VARCHAR), source, actor, "
                    "CAST(detail AS JSON) FROM _events ORDER BY event_id")
    finally:
        con.unregister("_events")
    return ids
