"""What ``ingest`` prints for people: one line per batch, with its notes, warnings and first quarantined rows."""

from __future__ import annotations

from typing import Any

from data_engine.ingest.batch import IngestResult


def summarize(results: list[IngestResult]) -> str:
    """One line per batch, for people."""
    lines = []
    for r in results:
        note = " (already ingested)" if r.already_known else ""
        counts = f"rows_in={r.rows_in} ok={r.rows_ok} quarantined={r.rows_quarantined}"
        lines.append(f"{r.batch_id}: {r.status}{note} {counts}" + (f" - {r.reason}" if r.reason else ""))
        if r.column_types:
            lines.append(f"  column types (fixed from this batch): {types_text(r.column_types)}")
        if r.rows_changed and r.changed_columns:
            lines.append(f"  changed: {r.rows_changed} example(s) got a new version; by column: "
                         + ", ".join(f"{c}={n}" for c, n in r.changed_columns.items()))
        if r.ignored_columns:
            lines.append("  ignored columns: " + ", ".join(map(repr, r.ignored_columns)))
        if line := drift_line(r.drift):
            lines.append(f"  {line}")
        lines += [f"  note: {n}" for n in r.notes]
        lines += [f"  warning: {w}" for w in r.warnings]
        lines += [f"  row {q['row_number']}: {q['reason']}" for q in r.quarantine_preview[:3]]
        if r.rows_quarantined > 3:  # say where the rest are: a cut list reads as the whole story
            lines.append(f"  ... and {r.rows_quarantined - 3} more quarantined row(s): table quarantine, "
                         f"batch_id = '{r.batch_id}'")
    return "\n".join(lines)


# A wider file's types are counted, not listed: a line of 3,000 `name=kind` pairs hides the rest of
# the output (every type stays in `status --json` and the table dataset_columns).
TYPES_LISTED = 30


def types_text(types: dict[str, str]) -> str:
    """``name=kind, ...`` for up to :data:`TYPES_LISTED` columns; above, the count per kind, the
    columns of the rarer kinds when few, and where the whole list is."""
    if len(types) <= TYPES_LISTED:
        return ", ".join(f"{c}={t}" for c, t in types.items())
    by_kind: dict[str, list[str]] = {}
    for column, kind in types.items():
        by_kind.setdefault(kind, []).append(column)
    parts = [f"{len(cols)} {kind}" + (f" ({', '.join(cols)})" if len(cols) <= 5 else "")
             for kind, cols in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))]
    return f"{len(types)} columns: {', '.join(parts)}; each column's type in `status --json` (column_types)"


def drift_line(drift: dict[str, Any] | None) -> str:
    """One line a person reads about a batch's drift ('' when none was computed)."""
    if drift is None:
        return ""
    if drift.get("skipped"):
        return f"drift not checked: {drift['skipped']}"
    auc = "AUC n/a" if drift["auc"] is None else f"domain classifier AUC {drift['auc']:.2f}"
    # A tag training never carried is named even when its rate is no drift (one row of it).
    tags = drift.get("new_tags") or []
    new_tags = f"; new tag{'s' if len(tags) > 1 else ''}: {', '.join(map(str, tags[:5]))}" if tags else ""
    ids = drift.get("identifiers") or []
    new_tags += f"; not compared: {', '.join(map(str, ids[:5]))} (identifier{'s' * (len(ids) > 1)})" if ids else ""
    if not drift["drifted"]:
        return f"no drift from the training data ({auc}){new_tags}"
    new = {c["column"]: c["new_categories"] for c in drift["per_column"] if c["new_categories"]}
    named = ", ".join(c + (f" (new: {', '.join(map(str, new[c][:5]))})" if c in new else "") for c in drift["columns"])
    return f"drifted: {named or 'no single column'}; {auc}{new_tags}"
