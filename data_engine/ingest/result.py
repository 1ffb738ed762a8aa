"""What happened to one landed file: :class:`IngestResult`, as ingest returns and prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb


@dataclass
class IngestResult:
    """What happened to one file."""

    batch_id: str
    path: str
    sha256: str
    status: str
    reason: str | None = None
    is_gold: bool = False
    rows_in: int = 0
    rows_ok: int = 0
    rows_quarantined: int = 0
    rows_new: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    rows_labeled: int = 0
    # {column: rows} of the changed versions whose value in that column changed (rows_changed).
    changed_columns: dict[str, int] = field(default_factory=dict)
    # Changed examples whose person's verdict was kept in force, and those whose file label differs from it.
    verdicts_kept: int = 0
    verdict_conflicts: int = 0
    # {label: rows} of labels quarantined as not one of the classes (a new or renamed class?).
    unknown_labels: dict[str, int] = field(default_factory=dict)
    already_known: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    # {column: type} when this batch fixed the dataset's column types (the first batch), else empty.
    column_types: dict[str, str] = field(default_factory=dict)
    # Things a person should know that are not errors (columns mapped, gold ids equal to training ids).
    notes: list[str] = field(default_factory=list)
    # Things that are probably wrong with the file though it was ingested (a large quarantined share).
    warnings: list[str] = field(default_factory=list)
    quarantine_preview: list[dict[str, Any]] = field(default_factory=list)
    # Drift against the training data in force (data_engine.ship.drift_check): {"drifted", "columns",
    # "auc", "per_column", ...}; None when nothing was compared (gold, no training data yet).
    drift: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


_STORED = ("batch_id", "path", "sha256", "is_gold", "received_at", "rows_in", "rows_ok", "rows_quarantined",
           "rows_new", "rows_changed", "rows_unchanged", "rows_labeled", "status", "reason")


def ingested_batches(con: duckdb.DuckDBPyConnection) -> list[tuple[datetime, IngestResult]]:
    """Every ingested batch as ``batches`` keeps it, oldest first: ``(received_at, result)``, the
    result holding the counts the warehouse stores (notes, previews and column changes are a run's
    only and stay empty)."""
    rows = con.execute(f"SELECT {', '.join(_STORED)} FROM batches WHERE status = 'ingested' "
                       "ORDER BY received_at").fetchall()
    out = []
    for row in rows:
        record = dict(zip(_STORED, row))
        at = record.pop("received_at")
        out.append((at, IngestResult(**record)))
    return out
