"""Classes as a managed set: ``data-engine classes add NAME...`` and ``classes rename OLD NEW``.

The first labeled batch (or ``[dataset] classes``) fixes ``dataset_classes``; a class that arrives
later (or is renamed upstream) is changed here, on purpose, and each change is a row of
``class_changes``:

* ``add`` appends classes (positions keep counting: models' class columns keep their order) and
  re-admits the quarantined rows whose label is one of them: they are validated again and stored
  as if landed, in a batch of their own (``<batch>-readmit-<n>``) that says where they came from;
  each quarantined row records the batch it was re-admitted in (``quarantine.readmitted_in``).
* ``rename`` gives the class its new name at the same position, writes one ledger event per label
  in force that names the old class (same source, so its precedence is unchanged; the old events
  are never rewritten) and re-admits quarantined rows labeled with the new name.

Ingest says which labels of a batch are not classes and the command that adds them
(:func:`unknown_labels`); a ``[dataset] classes`` that differs from the stored set is said with
the command that applies it (:func:`config_drift`), never applied silently.
"""

from __future__ import annotations

import getpass
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from data_engine.errors import EngineError
from data_engine.ingest.batch import IngestResult, load_rows, record_batch, redact_result
from data_engine.ingest.readers import RawTable, drop_scratch
from data_engine.ingest.validate import GOLD_ID_PREFIX
from data_engine.store.config import DatasetConfig
from data_engine.store.ledger import append_events
from data_engine.store.classes import NOT_A_CLASS, case_variants, control_character_at, first_spellings
from data_engine.store.schema import load_classes
from data_engine.store.values import is_blank, normalize_text, normalized_sql
from data_engine.store.warehouse import json_path, quote_ident, transaction
from data_engine.tasks import task_for



@dataclass
class ClassChange:
    """What one ``classes add`` or ``classes rename`` did."""

    kind: str
    classes: list[str]                      # the classes after the change, in order
    added: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)   # {old: new}
    labels_renamed: int = 0                 # ledger events written for labels in force
    rows_readmitted: int = 0                # quarantined rows now stored as examples
    rows_superseded: int = 0                # left quarantined: a later batch gave their ids a newer version
    readmitted_by_class: dict[str, int] = field(default_factory=dict)
    # {label: {"class": ..., "rows": ...}}: rows still quarantined whose label differs from a class of
    # this change only in case or spaces: never admitted under another spelling (the file is fixed).
    spellings_waiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: list[IngestResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def add_classes(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, names: list[str],
                actor: str | None = None) -> ClassChange:
    """Append ``names`` (normalised) to the classes and re-admit the rows quarantined for them, in one
    transaction. Raises :class:`EngineError` for a blank name, one given twice or already a class,
    or before the first labeled batch fixed the classes."""
    stored = _stored_or_raise(con, ds)
    wanted = [_name(n) for n in names]
    twice = [n for n in wanted if n in stored or wanted.count(n) > 1]
    if twice:
        raise EngineError(f"already a class (or given twice): {', '.join(map(repr, dict.fromkeys(twice)))}; "
                          f"the classes are {', '.join(map(repr, stored))}")
    variants = case_variants(wanted, stored)
    if variants:
        label, cls = next(iter(variants.items()))
        raise EngineError(f"{label!r} differs from the class {cls!r} only in case or spaces; to spell the class so, "
                          f"`{shlex.join(['data-engine', 'classes', 'rename', cls, label])}`; "
                          f"else write {cls!r} in the file")
    among = case_variants(wanted, first_spellings(wanted))
    if among:
        label, first = next(iter(among.items()))
        raise EngineError(f"{first!r} and {label!r} differ only in case or spaces: one class per visible label; "
                          f"add one of them and write it in the file")
    actor = actor or f"classes:{getpass.getuser()}"
    change = ClassChange("add", stored + wanted, added=wanted)
    try:
        with transaction(con):
            con.executemany("INSERT INTO dataset_classes VALUES (?, ?, ?)",
                            [[c, len(stored) + i, f"added by {actor}"] for i, c in enumerate(wanted)])
            _readmit(con, ds, wanted, change, f"classes add {' '.join(wanted)}")
            for c in wanted:
                _record(con, "add", c, None, actor, 0, change)
            change.spellings_waiting = _spellings_waiting(con, ds, wanted)
    finally:
        drop_scratch(con)
    return change


def rename_class(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, old: str, new: str,
                 actor: str | None = None) -> ClassChange:
    """Rename class ``old`` to ``new`` at the same position, relabel the labels in force (ledger
    events of the same source; old events untouched) and re-admit rows quarantined with label
    ``new``, in one transaction. Raises :class:`EngineError` when ``old`` is not a class or ``new``
    already is one (a rename never merges two classes) or is blank."""
    stored = _stored_or_raise(con, ds)
    old, new = normalize_text(old), _name(new)
    if old not in stored:
        raise EngineError(f"{old!r} is not a class; the classes are {', '.join(map(repr, stored))}")
    if new in stored:
        raise EngineError(f"{new!r} is already a class: a rename never merges two classes")
    other = case_variants([new], [c for c in stored if c != old])
    if other:
        raise EngineError(f"{new!r} differs from the class {other[new]!r} only in case or spaces: one class per "
                          "visible label (a rename never merges two classes)")
    actor = actor or f"classes:{getpass.getuser()}"
    change = ClassChange("rename", [new if c == old else c for c in stored], renamed={old: new})
    try:
        with transaction(con):
            position, source = con.execute("SELECT position, source FROM dataset_classes WHERE class_label = ?",
                                           [old]).fetchone()
            con.execute("DELETE FROM dataset_classes WHERE class_label = ?", [old])
            con.execute("INSERT INTO dataset_classes VALUES (?, ?, ?)",
                        [new, position, f"renamed from {old!r} by {actor} ({source})"])
            change.labels_renamed = _relabel(con, old, new, actor)
            _readmit(con, ds, [new], change, f"classes rename {old} {new}")
            _record(con, "rename", new, old, actor, change.labels_renamed, change)
            change.spellings_waiting = _spellings_waiting(con, ds, [new])
    finally:
        drop_scratch(con)
    return change


def _stored_or_raise(con: duckdb.DuckDBPyConnection, ds: DatasetConfig) -> list[str]:
    """The stored classes; raise :class:`EngineError` for a task without classes or before they are fixed."""
    if not task_for(ds).has_classes:
        raise EngineError(f"[dataset] task = {ds.task!r} has no classes to add or rename")
    stored = load_classes(con)
    if not stored:
        raise EngineError("no classes yet: the first labeled batch (or [dataset] classes) fixes them")
    return stored


def _name(text: str) -> str:
    """A class name in the spelling labels are compared in; a blank one, or one holding a control
    character (:data:`~data_engine.store.classes.CONTROL_CHARACTER`), is refused."""
    name = normalize_text(text)
    if not name or is_blank(name):
        raise EngineError(f"{text!r} is not a class name (blank)")
    control = control_character_at(name)
    if control is not None:
        raise EngineError(f"{text!r} is not a class name (a control character at character {control + 1})")
    return name


def _relabel(con: duckdb.DuckDBPyConnection, old: str, new: str, actor: str) -> int:
    """One ledger event per label in force ``old``: label ``new``, the in-force event's source (so
    precedence is kept), for the example's current version; return how many."""
    events = con.execute(
        "SELECT cl.example_id, ce.version AS example_version, ?::VARCHAR AS label, cl.source, ? AS actor, "
        "json_object('class_renamed', json_object('from', ?::VARCHAR, 'to', ?::VARCHAR), "
        "'replaces_event', cl.event_id)::VARCHAR AS detail "
        "FROM current_labels cl JOIN current_examples ce USING (example_id) WHERE cl.label = ? ORDER BY cl.example_id",
        [new, actor, old, new, old]).df()
    return len(append_events(con, events))


def _readmit(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, labels: list[str], change: ClassChange,
             why: str) -> None:
    """Store the quarantined rows whose label is one of ``labels`` (and whose only problem was that
    it was not a class), batch by batch in the order they were received."""
    cell = f"json_extract_string(raw, {json_path(ds.label_column)})"
    tags = task_for(ds).cell_classes_sql(cell)
    # A cell of several tags waits for one of ``labels`` and has no tag outside the classes left.
    is_waiting = (f"list_contains(?::VARCHAR[], {normalized_sql(cell)})" if tags is None else
                  f"list_has_any({tags}, ?::VARCHAR[]) AND list_has_all((SELECT list(class_label) FROM dataset_classes), "
                  f"list_filter({tags}, lambda t: t <> ''))")
    waiting = (f"readmitted_in IS NULL AND json_valid(raw) AND contains(reason, '{NOT_A_CLASS}') "
               f"AND NOT contains(reason, '; ') AND {is_waiting}")
    batches = con.execute(
        f"SELECT b.batch_id, b.path, b.sha256, b.is_gold, b.received_at FROM batches b "
        f"WHERE b.batch_id IN (SELECT batch_id FROM quarantine WHERE {waiting}) ORDER BY b.received_at, b.batch_id",
        [labels]).fetchall()
    for batch_id, path, sha, is_gold, received_at in batches:
        drop_scratch(con)
        # Every row of a batch was quarantined as JSON of the same columns (data_engine.ingest.validate).
        keys = con.execute(f"SELECT json_keys(raw) FROM quarantine WHERE batch_id = ? AND {waiting} LIMIT 1",
                           [batch_id, labels]).fetchone()[0]
        cols = ", ".join(f"json_extract_string(raw, {json_path(k)}) AS {quote_ident(k)}" for k in keys)
        con.execute(f"CREATE TEMP TABLE raw_rows AS SELECT {cols}, row_number AS __row FROM quarantine "
                    f"WHERE batch_id = ? AND {waiting} ORDER BY row_number", [batch_id, labels])
        superseded = _drop_superseded(con, ds, is_gold, received_at)
        change.rows_superseded += superseded
        con.execute("CREATE TEMP TABLE raw_rejects (__row BIGINT, raw VARCHAR, reason VARCHAR)")
        rows = con.execute("SELECT count(*) FROM raw_rows").fetchone()[0]
        if not rows:
            continue
        n = con.execute("SELECT count(*) FROM batches WHERE starts_with(batch_id, ?)", [f"{batch_id}-readmit-"]
                        ).fetchone()[0]
        result = IngestResult(batch_id=f"{batch_id}-readmit-{n + 1}", path=path, sha256=sha, status="ingested",
                              is_gold=is_gold)
        load_rows(con, ds, result, RawTable(tuple(keys), rows, 0))
        result.reason = (f"{rows} quarantined rows of batch {batch_id} re-admitted ({why})"
                         + (f"; {result.rows_quarantined} quarantined again" if result.rows_quarantined else ""))
        record_batch(con, redact_result(result), "quarantine")
        con.execute("UPDATE quarantine SET readmitted_in = ? WHERE batch_id = ? AND row_number IN "
                    "(SELECT __row FROM raw_rows)", [result.batch_id, batch_id])
        change.rows_readmitted += result.rows_ok
        stored = quote_ident(ds.label_column)
        per_class = (f"SELECT {stored}, count(*) FROM examples WHERE batch_id = ? GROUP BY ALL" if tags is None else
                     # Rows per class among ``labels`` (a row of several tags counts for each).
                     f"SELECT t, count(*) FROM (SELECT unnest({task_for(ds).cell_classes_sql(stored)}) AS t "
                     "FROM examples WHERE batch_id = ?) WHERE list_contains(?::VARCHAR[], t) GROUP BY t")
        for label, n in con.execute(per_class, [result.batch_id] + ([] if tags is None else [labels])).fetchall():
            change.readmitted_by_class[label] = change.readmitted_by_class.get(label, 0) + n
        change.batches.append(result)


def _spellings_waiting(con: duckdb.DuckDBPyConnection, ds: DatasetConfig,
                       classes: list[str]) -> dict[str, dict[str, Any]]:
    """``{label: {"class": class, "rows": rows}}`` of the rows still quarantined as not a class whose label (or one of whose
    tags) differs from one of ``classes`` only in case or spaces, most rows first."""
    cell = f"json_extract_string(raw, {json_path(ds.label_column)})"
    tags = task_for(ds).cell_classes_sql(cell)
    label = f"unnest({tags})" if tags is not None else normalized_sql(cell)
    rows = con.execute(
        f"SELECT label, count(*) AS n FROM (SELECT {label} AS label FROM quarantine "
        f"WHERE readmitted_in IS NULL AND json_valid(raw) AND contains(reason, '{NOT_A_CLASS}')) "
        "WHERE label IS NOT NULL GROUP BY label ORDER BY n DESC, label").fetchall()
    waiting = dict(rows)
    return {k: {"class": c, "rows": int(waiting[k])} for k, c in case_variants(list(waiting), classes).items()}


def _drop_superseded(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, is_gold: bool, received_at: Any) -> int:
    """Drop from ``raw_rows`` the rows whose id a batch received later already stored: re-admitting
    them would make older data the current version. They stay quarantined; return how many."""
    if ds.id_column is None:  # ids from content: a later version of the same content cannot exist
        return 0
    prefix = GOLD_ID_PREFIX if is_gold else ""
    return con.execute(
        f"DELETE FROM raw_rows WHERE ? || {normalized_sql(quote_ident(ds.id_column))} IN ("
        # A re-admitted row counts from when its original batch was received.
        "SELECT e.example_id FROM examples e JOIN batches b USING (batch_id) LEFT JOIN batches o "
        "  ON b.format = 'quarantine' AND o.batch_id = regexp_replace(b.batch_id, '-readmit-[0-9]+$', '') "
        "WHERE coalesce(o.received_at, b.received_at) > ?)",
        [prefix, received_at]).fetchone()[0]


def _record(con: duckdb.DuckDBPyConnection, kind: str, label: str, old: str | None, actor: str, renamed: int,
            change: ClassChange) -> None:
    """One row of ``class_changes`` for the class ``label``, with the rows re-admitted under it."""
    con.execute(
        "INSERT INTO class_changes (change_id, kind, class_label, old_label, actor, labels_renamed, rows_readmitted) "
        "SELECT coalesce(max(change_id), 0) + 1, ?, ?, ?, ?, ?, ? FROM class_changes",
        [kind, label, old, actor, renamed, change.readmitted_by_class.get(label, 0)])
