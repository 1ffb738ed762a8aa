"""Bulk actions by a person: ``data-engine discard --where SQL`` and ``relabel --where SQL --label X``.

The WHERE text is the user's SQL over the view ``rule_scope`` (``current_examples`` plus
``label_in_force``, ``is_discarded``, ``label_source``, ``is_reviewed``), which also shows the
example id under the dataset's own id column name (``[dataset] id_column``, the id as the user's
files spell it, without the gold prefix). It is checked to be one
expression (no ``;``, no comments, one SELECT statement once wrapped) and run on a read-only
connection with external access off, so it can read the examples and nothing else; everything
the engine adds to the query is a parameter. Each selected example whose label in force would
change gets one ledger event, ``source = 'rule'``, the rule's text in its detail. Gold examples
are never touched; reviewed ones only with ``include_reviewed``.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from data_engine.errors import EngineError
from data_engine.store.ledger import append_events
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse, rollback_quietly
from data_engine.tasks import task_for

# Rows of a dry run's sample.
SAMPLE_ROWS = 10


@dataclass
class RuleResult:
    """What a rule matched and did: ``matched`` examples, ``changed`` (events written, or that a
    dry run would write), ``unchanged`` (the label in force is already the target), a sample."""

    action: str
    where: str
    matched: int
    changed: int
    unchanged: int
    dry_run: bool
    sample: list[dict[str, Any]] = field(default_factory=list)


def check_where(where: str) -> str:
    """The WHERE text, stripped; EngineError if it is empty, holds ``;`` or a comment, or is not
    one expression (parsed by DuckDB as part of a single SELECT)."""
    text = where.strip()
    if not text:
        raise EngineError("--where: give a condition, e.g. --where \"length(sentence) < 3\"")
    # DuckDB's own tokenizer, so a `;` or `--` inside a string literal (`LIKE '%&nbsp;%'`, common in
    # the junk rows a rule is written for) is allowed, and only real statement breaks and comments are not.
    tokens = duckdb.tokenize(text)
    for (start, kind), (end, _) in zip(tokens, [*tokens[1:], (len(text), None)], strict=True):
        if kind == duckdb.token_type.comment:
            raise EngineError("--where: a comment is not allowed; give one condition, not statements")
        if kind == duckdb.token_type.operator and ";" in text[start:end]:
            raise EngineError("--where: a semicolon is not allowed; give one condition, not statements")
    try:
        statements = duckdb.extract_statements(_select(text))
    except duckdb.Error as exc:
        raise EngineError(f"--where: not a valid condition: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise EngineError("--where: must be one condition")
    return text


def _select(where: str, scope: str = "rule_scope") -> str:
    return f"SELECT DISTINCT example_id FROM {scope} WHERE ({where})"


def _scope(con: duckdb.DuckDBPyConnection, id_column: str) -> tuple[str, list[str]]:
    """The relation a rule runs over and its column names: ``rule_scope`` plus the user's id
    column (the id as in their files, gold ids without their prefix) unless that name is taken."""
    from data_engine.ingest.validate import GOLD_ID_PREFIX

    columns = [r[0] for r in con.execute("SELECT * FROM rule_scope LIMIT 0").description]
    if not id_column or id_column in columns:
        return "rule_scope", columns
    quoted = '"' + id_column.replace('"', '""') + '"'
    user_id = f"CASE WHEN is_gold THEN substr(example_id, {len(GOLD_ID_PREFIX) + 1}) ELSE example_id END"
    return f"(SELECT *, {user_id} AS {quoted} FROM rule_scope) AS rule_scope", columns + [id_column]


def select_examples(home: Home, where: str) -> pd.DataFrame:
    """The examples ``where`` selects (checked by :func:`check_where`), read-only: ``example_id``,
    ``version``, ``is_gold``, ``is_reviewed``, ``is_discarded``, ``label_in_force``.

    The user's query yields ids only; their flags are read again by the engine's own query, so a
    condition cannot pass off gold or reviewed examples as others.
    """
    text = check_where(where)
    with open_warehouse(home, read_only=True) as con:
        con.execute("SET enable_external_access = false")
        scope, columns = _scope(con, home.config.dataset.id_column)
        try:
            ids = [r[0] for r in con.execute(_select(text, scope)).fetchall()]
        except duckdb.BinderException as exc:
            raise EngineError(f"--where: {str(exc).splitlines()[0]} (columns: {', '.join(columns)})") from None
        except duckdb.Error as exc:
            raise EngineError(f"--where: {str(exc).splitlines()[0]}") from None
        return con.execute(
            "SELECT example_id, version, is_gold, is_reviewed, is_discarded, label_in_force FROM rule_scope "
            "WHERE example_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY example_id", [ids]).fetchdf()


def apply_rule(home: Home, where: str, *, label: str | None = None, discard: bool = False,
               include_reviewed: bool = False, dry_run: bool = False, actor: str | None = None) -> RuleResult:
    """Discard (``discard``) or relabel to ``label`` the examples ``where`` selects.

    Raises EngineError when it would touch gold examples (never allowed) or reviewed ones
    (unless ``include_reviewed``), or when ``label`` is not one of the dataset's classes (for a task
    without classes, such as numbers: not a label of the task; ``"3"`` is stored as ``"3.0"``).
    """
    if discard == (label is not None):
        raise EngineError("a rule either discards or relabels")
    action = "discard" if discard else "relabel"
    found = select_examples(home, where)
    gold = int(found["is_gold"].sum())
    if gold:
        raise EngineError(f"the rule matches {gold} gold example(s); rules never change gold data "
                          "(add `AND NOT is_gold` to the condition)")
    reviewed = int(found["is_reviewed"].sum())
    if reviewed and not include_reviewed:
        raise EngineError(f"the rule matches {reviewed} reviewed example(s); add --include-reviewed to override "
                          "reviewers' verdicts, or `AND NOT is_reviewed` to leave them")
    if discard:
        same = found["is_discarded"].astype(bool)
    else:
        task = task_for(home.config.dataset)
        if task.has_classes:
            with open_warehouse(home, read_only=True) as con:
                classes = [r[0] for r in con.execute("SELECT class_label FROM dataset_classes ORDER BY position").fetchall()]
            if label not in classes:
                raise EngineError(f"--label {label!r}: not one of the dataset's classes ({', '.join(classes)})")
        else:  # a label without classes (a number): in the task's stored spelling, checked by the task
            try:
                label = task.oracle_label(label)
            except ValueError as exc:
                raise EngineError(f"--label {label!r}: {exc}") from None
            problem = task.answer_problem(label, [])
            if problem:
                raise EngineError(f"--label: {problem}")
        same = ~found["is_discarded"].astype(bool) & (found["label_in_force"] == label)
    todo = found[~same.to_numpy()]
    result = RuleResult(action, where.strip(), len(found), len(todo), int(same.sum()), dry_run,
                        todo.head(SAMPLE_ROWS).astype(object).where(todo.head(SAMPLE_ROWS).notna(), None)
                        .to_dict("records"))
    if dry_run or todo.empty:
        return result
    detail = json.dumps({"rule": result.where, "action": action})
    events = pd.DataFrame({"example_id": todo["example_id"], "example_version": todo["version"].astype("int64"),
                           "label": None if discard else label, "source": "rule",
                           "actor": actor or f"rule:{getpass.getuser()}", "detail": detail})
    with open_warehouse(home) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            append_events(con, events)
            con.execute("COMMIT")
        except Exception:
            rollback_quietly(con)
            raise
    return result
