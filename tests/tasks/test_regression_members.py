"""The model members as regressors: same feature steps, the family's regressor as the final step."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from data_engine.errors import EngineError
from data_engine.mine.models import Schema, build_members
from data_engine.mine.spec import ModelSpec
from data_engine.tasks import Regression
from data_engine.tasks.regression_members import SmallDataKNeighborsRegressor, regressor_members


def test_members_become_regressors_and_nb_is_left_out() -> None:
    members = build_members(ModelSpec(("hgb", "linear", "knn", "nb", "svm"), "tabular"), Schema(("n",), ("c",), ()))
    kept, dropped = regressor_members(members)
    assert list(kept) == ["hgb", "linear", "knn", "svm"] and dropped == ["nb"]
    assert list(Regression().members_for(members)) == ["hgb", "linear", "knn", "svm"]
    assert isinstance(kept["linear"].steps[-1][1], Ridge)
    hgb = kept["hgb"].steps[-1][1]
    assert isinstance(hgb, HistGradientBoostingRegressor)
    assert hgb.categorical_features == members["hgb"].steps[-1][1].categorical_features
    assert kept["knn"].steps[-1][1].n_neighbors == members["knn"].steps[-1][1].n_neighbors
    assert isinstance(kept["svm"].steps[-1][1], TransformedTargetRegressor)
    # The feature steps are copies of the classifiers' own.
    assert kept["linear"].steps[0][1] is not members["linear"].steps[0][1]
    assert type(kept["linear"].steps[0][1]) is type(members["linear"].steps[0][1])


def test_no_regression_form_is_an_error() -> None:
    members = build_members(ModelSpec(("nb",), "text"), Schema((), (), ("t",)))
    with pytest.raises(EngineError, match=r"none of the model members \(nb\) has a regression form"):
        regressor_members(members)


def test_knn_regressor_on_fewer_rows_than_neighbours() -> None:
    model = SmallDataKNeighborsRegressor(n_neighbors=20).fit(np.arange(5.0).reshape(-1, 1), np.arange(5.0))
    assert model.predict(np.array([[0.0]])).tolist() == [2.0]  # the mean of all five
