"""Issue 11, kind 1: a class with one or two labeled examples (one reviewer correction into a rare
class is enough) never ends mining or training in a traceback, for every member of every model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from data_engine.mine.models import MEMBERS, Schema, build_estimator, resolve_spec
from data_engine.tasks.oof import RareClassWarning, out_of_fold_probabilities

SCHEMA = {"x1": "numeric", "x2": "numeric", "color": "categorical", "note": "text"}


def _data(rare: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 60
    y = np.array([0] * 30 + [1] * (30 - rare) + [2] * rare)
    X = pd.DataFrame({
        "x1": rng.normal(size=n) + y, "x2": rng.normal(size=n),
        "color": rng.choice(["red", "blue", "green"], size=n),
        "note": [f"word{k} text {c}" for k, c in zip(range(n), y)],
    })
    return X, y


@pytest.mark.parametrize("rare", [1, 2])
# The engine's own members; the user's trainer ("command") is the user's model, tested in
# tests/ship/test_trainer_command.py.
@pytest.mark.parametrize("member", sorted(set(MEMBERS) - {"command"}))
def test_every_member_copes_with_a_class_of_one_or_two(member: str, rare: int) -> None:
    X, y = _data(rare)
    estimator = build_estimator(resolve_spec(member, "tabular" if member != "nb" else "text"), Schema.from_mapping(SCHEMA))
    with pytest.warns(RareClassWarning):
        result = out_of_fold_probabilities(estimator, X, y, 3, folds=5)
    assert result.probs.shape == (60, 3)
    assert np.allclose(result.probs.sum(axis=1), 1.0)
    # The served model is fitted on all rows, rare class included, and predicts all three classes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = build_estimator(resolve_spec(member, "tabular" if member != "nb" else "text"),
                                 Schema.from_mapping(SCHEMA)).fit(X, y)
    assert fitted.predict_proba(X).shape == (60, 3)


@pytest.mark.parametrize("name", ["auto", "hgb+svm"])
def test_ensembles_cope_with_a_class_of_one(name: str) -> None:
    X, y = _data(1)
    est = build_estimator(resolve_spec(name, "tabular"), Schema.from_mapping(SCHEMA))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert est.fit(X, y).predict_proba(X).shape == (60, 3)
