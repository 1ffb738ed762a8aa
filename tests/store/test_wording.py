"""Counts in messages agree with their nouns and verbs (a trial read "1 rows" in an ingest note)."""

from __future__ import annotations

from pathlib import Path

from data_engine.store.classes import unknown_labels_warning
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from data_engine.wording import counted, verb


def test_counted_and_verb() -> None:
    assert [counted(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert counted(1, "class", "classes") == "1 class" and counted(2, "class", "classes") == "2 classes"
    assert (verb(1, "has", "have"), verb(2, "has", "have")) == ("has", "have")


def test_one_unknown_label_is_said_in_the_singular(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    with open_warehouse(home) as con:
        _said(con)


def _said(con) -> None:
    said = unknown_labels_warning(con, {"eleven": 1})
    assert said.startswith("1 row has a label that is not one of the classes: 'eleven' (1 row); it is quarantined")
    said = unknown_labels_warning(con, {"eleven": 2, "twelve": 1})
    assert said.startswith("3 rows have a label that is not one of the classes: 'eleven' (2 rows), 'twelve' (1 row); "
                           "they are quarantined")
