"""Regression labels in files: one number per row, stored in one spelling, read with the numeric
features' rules, impossible values quarantined with the reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import ConfigError
from data_engine.ingest.batch import ingest_file
from data_engine.store.config import parse_config
from data_engine.store.home import Home
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse

CONFIG = """\
[dataset]
name = "prices"
modality = "tabular"
id_column = "id"
label_column = "price"
feature_columns = ["x"]
task = "regression"
"""


def _ingest(home: Home, text: str, name: str = "batch.csv"):
    path = home.landing / name
    path.write_text(text)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        stored = dict(con.execute("SELECT example_id, price FROM examples ORDER BY example_id").fetchall())
        reasons = dict(con.execute("SELECT row_number, reason FROM quarantine ORDER BY row_number").fetchall())
        return result, stored, reasons, load_classes(con)


def test_numbers_are_stored_in_one_spelling(make_home: Callable[..., Home]) -> None:
    text = "id,x,price\na,1,3\nb,2, 3.50 \nc,3,1e2\nd,4,-0.0\ne,5,+7\nf,6,0.1\n"
    result, stored, reasons, classes = _ingest(make_home(CONFIG), text)
    assert result.status == "ingested" and not reasons and classes == []
    assert stored == {"a": "3.0", "b": "3.5", "c": "100.0", "d": "0.0", "e": "7.0", "f": "0.1"}


def test_a_rewritten_spelling_is_not_a_new_label(make_home: Callable[..., Home]) -> None:
    home = make_home(CONFIG)
    _ingest(home, "id,x,price\na,1,3\nb,2,4.5\n", "one.csv")
    result, stored, _, _ = _ingest(home, "id,x,price\na,1,3.00\nb,2,4.50\n", "two.csv")
    assert result.rows_new == 0 and result.rows_changed == 0 and result.rows_unchanged == 2
    assert stored == {"a": "3.0", "b": "4.5"}


def test_missing_markers_are_unlabeled_and_bad_numbers_quarantined(make_home: Callable[..., Home]) -> None:
    text = ("id,x,price\na,1,NA\nb,2,\nc,3,NaN\nd,4,\"1,234\"\ne,5,3,5\nf,6,inf\ng,7,cheap\nh,8,12\n")
    # row e has a decimal comma unquoted: the reader sees an extra field; quote it as a writer would.
    text = text.replace("e,5,3,5", 'e,5,"3,5"')
    result, stored, reasons, _ = _ingest(make_home(CONFIG), text)
    assert stored == {"a": None, "b": None, "c": None, "h": "12.0"}
    hint = " (a thousands separator or decimal comma? write it as 1234.5)"
    assert reasons == {4: "column price: label 1,234 is not a finite number" + hint, 5: "column price: label 3,5 is not a finite number" + hint,
                       6: "column price: label inf is not a finite number", 7: "column price: label cheap is not a finite number"}
    assert any("missing-value marker" in n and "'NA'" in n and "'NaN'" in n for n in result.notes)


def test_label_range_quarantines_impossible_values(make_home: Callable[..., Home]) -> None:
    home = make_home(CONFIG + "label_range = [0, 100]\n")
    result, stored, reasons, _ = _ingest(home, "id,x,price\na,1,0\nb,2,100\nc,3,-1\nd,4,100.5\ne,5,55\n")
    assert stored == {"a": "0.0", "b": "100.0", "e": "55.0"}
    assert reasons == {3: "column price: label -1.0 is outside [dataset] label_range [0, 100]",
                       4: "column price: label 100.5 is outside [dataset] label_range [0, 100]"}
    assert result.rows_quarantined == 2


def test_many_distinct_numbers_are_accepted_for_regression(make_home: Callable[..., Home]) -> None:
    # The same column classification refuses (tests/ingest/test_label_kind.py) lands as numbers.
    prices = np.round(np.random.default_rng(0).uniform(5, 500, 700), 2)
    frame = pd.DataFrame({"id": range(700), "x": np.arange(700) % 7, "price": prices})
    result, stored, reasons, classes = _ingest(make_home(CONFIG), frame.to_csv(index=False))
    assert result.status == "ingested" and classes == [] and not reasons
    assert stored["0"] == repr(float(prices[0])) and len(stored) == 700


@pytest.mark.parametrize(("extra", "message"), [
    ("label_range = [5, 1]\n", "dataset.label_range = [5.0, 1.0]: must be [lo, hi] with lo < hi"),
    ("label_range = [1]\n", "dataset.label_range = [1.0]: must be [lo, hi] with lo < hi"),
    ('classes = ["1", "2"]\n', "dataset.classes: a regression label is a number, not a class"),
])
def test_bad_regression_config_is_named(extra: str, message: str) -> None:
    import tomllib

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(tomllib.loads(CONFIG + extra))


def test_label_range_needs_the_regression_task() -> None:
    import tomllib

    with pytest.raises(ConfigError, match="only read when dataset.task"):
        parse_config(tomllib.loads(CONFIG.replace('task = "regression"\n', "") + "label_range = [0, 1]\n"))
