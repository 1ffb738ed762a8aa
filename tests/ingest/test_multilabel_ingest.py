"""Multi-label labels in files: JSON arrays (JSONL, Parquet lists, CSV cells) and tags split by the
separator, stored as one canonical tag set; [] is a label, an empty cell is not; unknown tags,
malformed arrays and empty tags are quarantined with the reason."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.ingest.classes import add_classes
from data_engine.store.home import Home
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from data_engine.tasks.tagsets import canonical

CONFIG = """\
[dataset]
name = "tickets"
modality = "tabular"
task = "multilabel"
id_column = "id"
label_column = "tags"
feature_columns = ["x"]
{extra}
"""


def _home(make_home: Callable[..., Home], extra: str = "") -> Home:
    return make_home(CONFIG.format(extra=extra))


def _ingest(home: Home, name: str, content: str | bytes | None = None):
    path = home.landing / name
    if content is not None:
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        rows = dict(con.execute("SELECT example_id, tags FROM examples ORDER BY example_id").fetchall())
        quarantined = [r[0] for r in con.execute(
            "SELECT reason FROM quarantine WHERE batch_id = ? ORDER BY row_number", [result.batch_id]).fetchall()]
        return result, rows, quarantined, load_classes(con)


def test_csv_separator_and_json_cells_become_one_spelling(make_home: Callable[..., Home]) -> None:
    home = _home(make_home, 'classes = ["billing", "bug", "urgent"]')
    csv = ("id,x,tags\n"
           "1,1,urgent|billing\n"          # separator, unordered
           "2,2,\"[\"\"bug\"\", \"\"urgent\"\", \"\"bug\"\"]\"\n"  # JSON array in a CSV cell, a repeat
           "3,3,[]\n"                       # labeled with no tags
           "4,4,\n"                         # unlabeled
           "5,5, billing | bug \n"          # spaces around tags
           "6,6,NA\n")                      # a missing-value marker: unlabeled
    result, rows, quarantined, classes = _ingest(home, "a.csv", csv)
    assert quarantined == [] and result.rows_ok == 6
    assert classes == ["billing", "bug", "urgent"]
    assert rows == {"1": '["billing","urgent"]', "2": '["bug","urgent"]', "3": "[]", "4": None,
                    "5": '["billing","bug"]', "6": None}


def test_unknown_tags_malformed_arrays_and_empty_tags_are_quarantined(make_home: Callable[..., Home]) -> None:
    home = _home(make_home, 'classes = ["billing", "bug"]')
    csv = ("id,x,tags\n"
           "1,1,billing|refund\n"
           "2,2,\"[\"\"bug\"\"\"\n"         # not valid JSON
           "3,3,\"[[\"\"bug\"\"]]\"\n"      # a nested array
           "4,4,billing||bug\n"             # an empty tag
           "5,5,bug\n")
    result, rows, quarantined, _ = _ingest(home, "b.csv", csv)
    assert rows == {"5": '["bug"]'} and result.rows_quarantined == 4
    assert quarantined[0] == "column tags: tag refund is not one of the classes (billing, bug)"
    assert quarantined[1] == 'column tags: label ["bug" is not a list of tags (a JSON array of text such as ["a","b"], or tags separated by |)'
    assert quarantined[2].startswith('column tags: label [["bug"]] is not a list of tags')
    assert quarantined[3] == '''column tags: label ["","billing","bug"] has an empty tag (two separators in a row, or one at an end)'''


def test_jsonl_and_parquet_lists_and_the_classes_inferred(make_home: Callable[..., Home], tmp_path) -> None:
    home = _home(make_home)
    lines = [{"id": 1, "x": 1, "tags": ["urgent", "billing"]}, {"id": 2, "x": 2, "tags": []},
             {"id": 3, "x": 3, "tags": ["bug", 7]}, {"id": 4, "x": 4, "tags": None}]
    result, rows, quarantined, classes = _ingest(home, "c.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n")
    assert quarantined == [] and classes == ["7", "billing", "bug", "urgent"]
    assert rows == {"1": '["billing","urgent"]', "2": "[]", "3": '["7","bug"]', "4": None}
    table = pa.table({"id": ["5", "6"], "x": [5.0, 6.0], "tags": [["bug", "a, b"], ["billing", "billing"]]})
    pq.write_table(table, home.landing / "d.parquet")
    result, rows, quarantined, _ = _ingest(home, "d.parquet")
    # The tag "a, b" (one tag with a comma) is not among the classes: named whole, not split in two.
    assert quarantined == ["column tags: tag a, b is not one of the classes (7, billing, bug, urgent)"]
    assert rows["6"] == '["billing"]'


def test_reordered_tags_make_no_new_version(make_home: Callable[..., Home]) -> None:
    home = _home(make_home, 'classes = ["a", "b", "c"]')
    _ingest(home, "v1.csv", "id,x,tags\n1,1,a|b\n")
    _ingest(home, "v2.csv", 'id,x,tags\n1,1,"[""b"",""a"",""a""]"\n')
    with open_warehouse(home) as con:
        assert con.execute("SELECT count(*) FROM examples WHERE example_id = '1'").fetchone()[0] == 1
    _ingest(home, "v3.csv", "id,x,tags\n1,1,a|c\n")
    with open_warehouse(home) as con:
        assert con.execute("SELECT count(*) FROM examples WHERE example_id = '1'").fetchone()[0] == 2


def test_a_custom_separator(make_home: Callable[..., Home]) -> None:
    home = _home(make_home, 'label_separator = ";"\nclasses = ["a|x", "b"]')
    _, rows, quarantined, _ = _ingest(home, "e.csv", "id,x,tags\n1,1,a|x;b\n")
    assert quarantined == [] and rows == {"1": '["a|x","b"]'}


@pytest.mark.parametrize("tags", [["b", "a", "a"], ["é", "e\u0301x", " z", "\u00a0y"], ["1.0", "2"], []])
def test_the_python_spelling_equals_the_sql_spelling(tags: list[str]) -> None:
    import duckdb

    task = task_for(_config())
    cell = json.dumps(tags)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT ?::VARCHAR AS cell", [cell])
    stored = con.execute(f"SELECT {task.label_sql('cell', plain=False)} FROM t").fetchone()[0]
    assert stored == canonical(tags) == task.oracle_label(cell) == task.oracle_label(tags)


def _config():
    from data_engine.store.config import DatasetConfig

    return DatasetConfig(name="t", modality="tabular", label_column="tags", feature_columns=("x",), task="multilabel")


def test_an_unknown_tag_is_named_alone_never_the_whole_cell(make_home: Callable[..., Home]) -> None:
    home = _home(make_home, 'classes = ["brunch", "vegan"]')
    csv = ("id,x,tags\n"
           "1,1,Vegan|brunch\n"          # a tag differing from a class only in case
           "2,2,brunch|gluten-free\n"    # a new tag
           "3,3,gluten-free|vegan|Vegan\n"
           "4,4,vegan\n")
    result, rows, quarantined, _ = _ingest(home, "c.csv", csv)
    assert rows == {"4": '["vegan"]'} and result.rows_quarantined == 3
    assert result.unknown_labels == {"Vegan": 2, "gluten-free": 2}
    said = next(w for w in result.warnings if "not one of the classes" in w)
    assert "'Vegan' (2 rows), 'gluten-free' (2 rows)" in said and "|" not in said, said
    assert "'Vegan' differs from the class 'vegan' only in case or spaces" in said
    assert "`data-engine classes add gluten-free`" in said and "classes add Vegan" not in said
    with open_warehouse(home) as con:
        added = add_classes(con, home.config.dataset, ["gluten-free"])
    # The cell whose only unknown tag was the new class comes in; the one with 'Vegan' still waits.
    assert added.rows_readmitted == 1 and added.readmitted_by_class == {"gluten-free": 1}
