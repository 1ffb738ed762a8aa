"""A label column of numbers to predict or of tag lists is refused at the first batch, naming the
column, the count and the way out; many real classes are accepted and the batch says so."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse

CONFIG = """\
[dataset]
name = "things"
modality = "tabular"
id_column = "id"
label_column = "target"
feature_columns = ["x"]
"""


def _ingest(home: Home, labels: list[object]):
    path = home.landing / "batch.csv"
    pd.DataFrame({"id": range(len(labels)), "x": np.arange(len(labels)) % 7, "target": labels}).to_csv(path, index=False)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        return result, load_classes(con)


def test_a_regression_target_is_refused(make_home: Callable[..., Home]) -> None:
    # The trial's case: a continuous target read as 597 classes among 700 rows.
    rng = np.random.default_rng(0)
    prices = np.round(rng.uniform(5, 500, 700), 2)
    result, classes = _ingest(make_home(CONFIG), list(prices))
    n = len(set(prices))
    assert result.status == "rejected" and not classes
    assert f"label column 'target': {n} distinct numbers among 700 labeled rows" in result.reason
    assert "[dataset] classes" in result.reason and 'task = "regression"' in result.reason


def test_mostly_distinct_whole_numbers_are_refused_too(make_home: Callable[..., Home]) -> None:
    result, _ = _ingest(make_home(CONFIG), list(range(1000, 1100)))  # 100 values, 100 rows
    assert result.status == "rejected" and "100 distinct numbers among 100 labeled rows" in result.reason


@pytest.mark.parametrize("make_tags", [lambda a, b: f"{a}|{b}", lambda a, b: json.dumps([a, b])])
def test_tag_lists_are_refused(make_home: Callable[..., Home], make_tags) -> None:
    tags = [f"t{i}" for i in range(12)]
    labels = [make_tags(tags[i % 12], tags[(i // 12) % 12]) for i in range(200)]  # 144 combinations
    result, classes = _ingest(make_home(CONFIG), labels)
    assert result.status == "rejected" and not classes
    assert "tag lists" in result.reason and 'task = "multilabel"' in result.reason
    assert "of its" in result.reason and "label column 'target'" in result.reason


def test_many_whole_number_classes_are_accepted_and_said(make_home: Callable[..., Home]) -> None:
    # 60 ages among 900 rows: whole numbers, most repeated; classes, as the engine says.
    labels = [str(18 + i % 60) for i in range(900)]
    result, classes = _ingest(make_home(CONFIG), labels)
    assert result.status == "ingested" and len(classes) == 60
    assert any("60 classes: every distinct value of 'target' is a class" in n for n in result.notes)


def test_few_numeric_classes_stay_classes(make_home: Callable[..., Home]) -> None:
    result, classes = _ingest(make_home(CONFIG), [i % 10 for i in range(100)])
    assert result.status == "ingested" and classes == [str(i) for i in range(10)]
    assert not any("every distinct value" in n for n in result.notes)


def test_classes_from_the_config_are_not_second_guessed(make_home: Callable[..., Home]) -> None:
    classes = [f"{v}.5" for v in range(40)]
    home = make_home(CONFIG + "classes = [" + ", ".join(f'"{c}"' for c in classes) + "]\n")
    result, stored = _ingest(home, [classes[i % 40] for i in range(80)])
    assert result.status == "ingested" and len(stored) == 40


def test_whole_numbers_too_sparse_to_be_classes_are_refused(make_home: Callable[..., Home]) -> None:
    # A new user's trial: a disease-progression score, 214 whole numbers among 442 rows (about two
    # rows a value), became 214 classes and a model with out-of-fold accuracy 0.02.
    rng = np.random.default_rng(0)
    scores = list(np.concatenate([np.arange(25, 239), rng.integers(25, 239, 228)]))
    result, classes = _ingest(make_home(CONFIG), scores)
    assert result.status == "rejected" and not classes
    assert "214 distinct numbers among 442 labeled rows" in result.reason
