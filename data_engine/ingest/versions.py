"""Storing a batch's good rows as example versions, and what a new version does to a person's verdict.

An example gets a new version only when its content differs from the current one: typed values
are compared (numbers as DOUBLEs, categorical cells in their canonical spelling,
:func:`data_engine.store.values.canonical_sql`), so the same rows re-exported by another tool
(``True``/``true``, ``+00``/``+00:00``, list syntax) are unchanged. A changed version is counted
by column. A person's verdict in force on the previous version (a review, a consensus or a rule)
is carried to the new version by a ledger event of the same source and actor (the old events are
never rewritten): re-landing a file never undoes a person's relabel; where the file's label
differs from the verdict, the verdict stays in force and the conflict is counted and said.
"""

from __future__ import annotations

import duckdb

from data_engine.ingest.result import IngestResult
from data_engine.store.config import DatasetConfig
from data_engine.store.values import canonical_sql
from data_engine.store.warehouse import last_event_id, quote_ident

# The sources of a person's verdict (see the view current_labels): kept over a re-landed version.
PERSON_SOURCES = ("review", "consensus", "rule")
# Conflicts named in the batch's note (the rest are counted; the ledger holds them all).
SHOWN_CONFLICTS = 3


def compared_sql(column: str, kind: str, alias: str) -> str:
    """SQL for ``alias.column`` as versions compare it: categorical cells in canonical spelling."""
    expr = f"{alias}.{quote_ident(column)}"
    return canonical_sql(expr) if kind == "categorical" else expr


def store_versions(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, types: dict[str, str],
                   result: IngestResult, *, label_present: bool = True) -> None:
    """Store new and changed examples of the view ``good`` (``types``: the stored columns' kinds) as
    batch ``result.batch_id``, a new version each; a labeled one gets the id of its ingest event (the
    event itself is derived from ``examples``: see the view ``label_events``). Fills ``result``'s
    counts, ``changed_columns``, the verdicts kept and their notes or warnings.

    ``label_present=False`` (the file has no label column): the file says nothing about labels, so
    only the input columns decide whether an example changed; an example whose inputs are the same
    keeps its version and its label (before, every labeled example in such a file lost its label to
    an unlabeled new version)."""
    batch_id = result.batch_id
    if not label_present:
        types = {c: k for c, k in types.items() if k != "label"}
    lq = quote_ident(ds.label_column)
    cols = ", ".join(quote_ident(c) for c in types)
    fresh = con.execute("SELECT count(*) FROM examples").fetchone()[0] == 0
    changed = 0
    if fresh:
        # The first batch of a warehouse has nothing to compare with: every good row is version 1.
        source = "(SELECT *, 1 AS version FROM good)"
    else:
        # New content = any stored value differs from the current version (compared as values, so
        # the decision never depends on a hash function). Staged once, read by the insert and the count.
        same = " AND ".join(f"{compared_sql(c, k, 'ce')} IS NOT DISTINCT FROM {compared_sql(c, k, 'g')}"
                            for c, k in types.items())
        con.execute(
            "CREATE TEMP TABLE staged AS SELECT g.*, coalesce(ce.version, 0) + 1 AS version "
            "FROM good g LEFT JOIN current_examples ce USING (example_id) "
            f"WHERE ce.version IS NULL OR NOT ({same})"
        )
        source = "staged"
        changed = con.execute("SELECT count(*) FROM staged WHERE version > 1").fetchone()[0]
        if changed:
            result.changed_columns = _changed_columns(con, types)
            _stage_verdicts(con, lq)
    # Event ids in file order: the highest so far plus the file's row number (unique within the
    # batch; see last_event_id for why that is safe). No per-row nextval(), which serialised the insert.
    inserted = con.execute(
        "INSERT INTO examples (example_id, version, batch_id, row_number, content_hash, feature_hash, is_gold, "
        f"label_event_id, {cols}) "
        f"SELECT example_id, version, ?, __row, hash(__fh, {lq}), __fh, ?, "
        f"CASE WHEN {lq} IS NOT NULL THEN ? + __row END, {cols} "
        f"FROM {source}",
        [batch_id, result.is_gold, last_event_id(con)],
    ).fetchone()[0]
    if changed:
        _keep_verdicts(con, batch_id, result)
    # Counted from the stored rows of this batch (a narrow scan), not by another pass over the file.
    labeled = con.execute(
        "SELECT count(label_event_id) FROM examples WHERE batch_id = ?", [batch_id]
    ).fetchall()[0][0]
    result.rows_new, result.rows_changed = inserted - changed, changed
    result.rows_unchanged, result.rows_labeled = result.rows_ok - inserted, labeled


def _changed_columns(con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> dict[str, int]:
    """``{column: rows}`` of the staged changed versions whose value in that column differs from the
    current version's (a row may count in several columns); columns without a change are left out."""
    counts = con.execute(
        "SELECT " + ", ".join(
            f"count(*) FILTER ({compared_sql(c, k, 'ce')} IS DISTINCT FROM {compared_sql(c, k, 's')})"
            for c, k in types.items())
        + " FROM staged s JOIN current_examples ce USING (example_id) WHERE s.version > 1"
    ).fetchone()
    return {c: int(n) for c, n in zip(types, counts) if n}


def _stage_verdicts(con: duckdb.DuckDBPyConnection, lq: str) -> None:
    """``kept_verdicts``: the person's verdict in force on each changed example's current version
    (read before the new versions are stored, after which it no longer counts)."""
    con.execute(
        "CREATE TEMP TABLE kept_verdicts AS "
        f"SELECT s.example_id, s.version, s.{lq}::VARCHAR AS ingest_label, cl.label AS verdict, cl.source, "
        "cl.actor, cl.event_id, le.detail "
        "FROM staged s JOIN current_labels cl USING (example_id) "
        "JOIN label_events le ON le.event_id = cl.event_id "
        f"WHERE s.version > 1 AND cl.source IN ({', '.join(repr(s) for s in PERSON_SOURCES)})"
    )


def _keep_verdicts(con: duckdb.DuckDBPyConnection, batch_id: str, result: IngestResult) -> None:
    """Carry each staged verdict to the new version (ledger events of the same source and actor,
    after the batch's ingest events, so the verdict stays in force) and say the conflicts."""
    cur = con.execute(
        "SELECT example_id, version AS example_version, verdict AS label, source, actor, "
        "json_merge_patch(coalesce(detail::JSON, '{}'::JSON), json_object('kept_from_event', event_id, "
        "'batch_id', ?::VARCHAR, 'ingest_label', ingest_label))::VARCHAR AS detail, ingest_label "
        "FROM kept_verdicts ORDER BY example_id", [batch_id])
    names = [d[0] for d in cur.description]
    kept = [dict(zip(names, row)) for row in cur.fetchall()]
    if not kept:
        return
    # Imported here: the ledger writer reads pandas, which an ingest without kept verdicts never needs.
    from data_engine.store.ledger import append_events
    
    append_events(con, [{k: v for k, v in e.items() if k != "ingest_label"} for e in kept])
    conflicts = [e for e in kept if e["ingest_label"] is not None and e["ingest_label"] != e["label"]]
    result.verdicts_kept, result.verdict_conflicts = len(kept), len(conflicts)
    note = (f"{len(kept)} changed example(s) had a person's verdict in force: kept in force on the new version "
            f"(ledger events of the same source)")
    if conflicts:
        shown = "; ".join(
            f"{e['example_id']}: file says {e['ingest_label']!r}, {e['source']} by {e['actor']} says "
            f"{'discard' if e['label'] is None else repr(e['label'])}" for e in conflicts[:SHOWN_CONFLICTS])
        more = ", ..." if len(conflicts) > SHOWN_CONFLICTS else ""
        note += (f"; {len(conflicts)} of them have a file label that differs from the verdict ({shown}{more}): "
                 "the verdict stays; relabel the example to change it")
    # A conflict is probably something to look at; a verdict kept without one is only said.
    (result.warnings if conflicts else result.notes).append(note)
