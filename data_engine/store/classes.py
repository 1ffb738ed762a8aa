"""The dataset's classes as read by ingest and the ``classes`` command: which labels of a batch are
not classes (with the command that adds them), whether ``[dataset] classes`` differs from the
stored set (with the command that applies it: never applied silently), and the classes with their
labels in force. Changing the set is :mod:`data_engine.ingest.classes`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import duckdb

from data_engine.store.config import DatasetConfig
from data_engine.store.schema import load_classes
from data_engine.store.values import normalize_text
from data_engine.wording import counted, verb

# The words of the quarantine reason of a label outside the classes (data_engine.tasks.classification).
NOT_A_CLASS = "is not one of the classes"
# No class name holds a control character (C0 or DEL): ingest cannot tell a NUL from the end of a
# cell, and a tab or newline in a name breaks every one-line message. One pattern, read by Python's
# ``re`` and DuckDB's RE2 alike, for ``classes add`` and for the unknown labels ingest advises adding.
CONTROL_CHARACTER = r"[\x00-\x1f\x7f]"
SHOWN_LABELS = 5


def control_character_at(name: str) -> int | None:
    """The 0-based position of the first control character (:data:`CONTROL_CHARACTER`) in ``name``, or None."""
    found = re.search(CONTROL_CHARACTER, name)
    return None if found is None else found.start()


def add_command(names: list[str]) -> str:
    """The exact command line that adds ``names`` as classes."""
    return shlex.join(["data-engine", "classes", "add", *names])


def relabel_command(label: str, target: str) -> str:
    """The exact command line that gives every training example whose label in force is ``label``
    the label ``target`` (``data-engine relabel``: one ledger event each, the stored values kept)."""
    where = "label_in_force = '" + label.replace("'", "''") + "'"
    # shlex.quote wraps a text holding ' in '"'"' runs; double quotes read the same where the shell
    # expands nothing inside them, and are what a person types.
    quoted = f'"{where}"' if not set(where) & set('"$`\\!') else shlex.quote(where)
    return f"data-engine relabel --where {quoted} --label {shlex.quote(target)}"


def spelling_key(name: str) -> str:
    """``name`` without case and with runs of whitespace as one space: two classes with the same key
    differ only in case or spaces (``Barolo`` and ``barolo``)."""
    return " ".join(normalize_text(name).casefold().split())


def case_variants(labels: list[str], classes: list[str]) -> dict[str, str]:
    """``{label: class}`` for each of ``labels`` that is not a class but differs from one only in case
    or spaces (:func:`spelling_key`)."""
    by_key = {spelling_key(c): c for c in classes}
    return {k: by_key[spelling_key(k)] for k in labels if k not in classes and spelling_key(k) in by_key}


def first_spellings(labels: list[str]) -> list[str]:
    """``labels`` without those that differ from an earlier one only in case or spaces
    (:func:`spelling_key`): the first spelling of each visible label."""
    seen: dict[str, str] = {}
    for label in labels:
        seen.setdefault(spelling_key(label), label)
    return list(seen.values())


def unknown_labels_warning(con: duckdb.DuckDBPyConnection, found: dict[str, int]) -> str:
    """What ingest says about labels that are not classes (``found``: ``{label: rows}``), with the
    commands that take them in; a label that is the old name of a renamed class is named as such
    (the file predates the rename: fix its labels, the engine never maps them silently)."""
    shown = ", ".join(f"{k!r} ({counted(n, 'row')})" for k, n in list(found.items())[:SHOWN_LABELS])
    more = ", ..." if len(found) > SHOWN_LABELS else ""
    renamed = dict(con.execute(
        "SELECT old_label, last(class_label ORDER BY change_id) FROM class_changes "
        "WHERE kind = 'rename' AND list_contains(?::VARCHAR[], old_label) GROUP BY old_label", [list(found)]
    ).fetchall())
    variants = case_variants([k for k in found if k not in renamed], load_classes(con))
    new = [k for k in found if k not in renamed and k not in variants]
    # Two new labels that differ only in case or spaces are one class: the most frequent spelling
    # (``found`` is ordered most rows first) is the one advised, the others named as its spellings.
    spelled = case_variants(new, first_spellings(new))
    new = [k for k in new if k not in spelled]
    total = sum(found.values())
    said = (f"{counted(total, 'row')} {verb(total, 'has', 'have')} a label that is not one of the classes: "
            f"{shown}{more}; {verb(total, 'it is', 'they are')} quarantined")
    if renamed:
        said += ". " + ", ".join(f"{old!r} was renamed {now!r}" for old, now in renamed.items()) + (
            " (`data-engine classes rename`): write the new name in the file and land it again")
    for label, cls in variants.items():
        # Never rewritten silently: the person says which spelling is meant.
        said += (f". {label!r} differs from the class {cls!r} only in case or spaces: write {cls!r} in the file "
                 f"and land it again, or to spell the class so, `{shlex.join(['data-engine', 'classes', 'rename', cls, label])}`"
                 " (its quarantined rows are then admitted)")
    for label, first in spelled.items():
        said += (f". {label!r} differs from {first!r} (also not a class yet) only in case or spaces: one class "
                 f"per visible label, so write {first!r} in the file and land it again")
    if new:
        said += (f". If {'these are new classes' if len(new) > 1 else 'it is a new class'}: `{add_command(new)}` "
                 "(their quarantined rows are then admitted); if a class was renamed: "
                 f"`data-engine classes rename OLD {shlex.quote(new[0])}`")
    return said


def config_drift(con: duckdb.DuckDBPyConnection, ds: DatasetConfig) -> str | None:
    """One line when ``[dataset] classes`` differs from the stored classes, with the command that
    applies it (None when they agree, or before classes are stored, or without configured classes)."""
    stored = load_classes(con)
    if not ds.classes or not stored:
        return None
    wanted = list(dict.fromkeys(normalize_text(c) for c in ds.classes))
    added = [c for c in wanted if c not in stored]
    dropped = [c for c in stored if c not in wanted]
    if not added and not dropped:
        return None
    said = (f"[dataset] classes ({', '.join(map(repr, wanted))}) differ from the stored classes "
            f"({', '.join(map(repr, stored))}), which stay in force until changed with `data-engine classes`")
    if len(added) == 1 and len(dropped) == 1:
        return said + (f": to rename {dropped[0]!r}, run `{shlex.join(['data-engine', 'classes', 'rename', *dropped, *added])}`"
                       f", or to add {added[0]!r}, `{add_command(added)}`")
    if added and not dropped:
        return said + f": to apply, run `{add_command(added)}`"
    return said + (f"; classes are never removed ({', '.join(map(repr, dropped))} stay)"
                   + (f"; to add the others, run `{add_command(added)}`" if added else ""))


def list_classes(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The classes in order: ``class_label``, ``position``, ``source``, ``labels_in_force`` (training
    examples whose label in force is the class) and ``gold_labels`` (gold examples labeled so: the
    gate's, never trained on, so counted apart)."""
    rows = con.execute(
        "WITH gold AS (SELECT DISTINCT example_id FROM examples WHERE is_gold) "
        "SELECT c.class_label, c.position, c.source, "
        "count(cl.example_id) FILTER (WHERE cl.example_id NOT IN (SELECT example_id FROM gold)), "
        "count(cl.example_id) FILTER (WHERE cl.example_id IN (SELECT example_id FROM gold)) "
        "FROM dataset_classes c LEFT JOIN current_labels cl ON cl.label = c.class_label "
        "GROUP BY ALL ORDER BY c.position").fetchall()
    return [dict(zip(("class_label", "position", "source", "labels_in_force", "gold_labels"), r)) for r in rows]


