"""The model members as regressors, for a task whose label is a number (``estimator_kind = "regressor"``).

Each member keeps its feature steps (:mod:`data_engine.mine.models`: the same scaled numbers,
one-hot and tokenised categories, TF-IDF, image and embedding features) and swaps its final
classifier for the regressor of the same family:

- ``linear`` and ``embedding``: ridge regression (the L2-penalised linear model, as logistic
  regression is for classes);
- ``hgb``: HistGradientBoostingRegressor, the same categorical columns and early stopping;
- ``knn``: the mean of the same 20 nearest neighbours (fewer on tiny data);
- ``svm``: an RBF support vector regressor on the standardised target (SVR's epsilon is in the
  target's units);
- ``nb``: naive Bayes has no regression form; the member is left out (``regressor_members`` says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_engine.errors import EngineError

# Ridge's penalty: scikit-learn's default; the features are standardised (or TF-IDF).
RIDGE_ALPHA = 1.0
# Members with no regression form, left out of a regression model.
NO_REGRESSOR = frozenset({"nb"})


def as_regressor(name: str, member: Any) -> Any:
    """The regressor of member ``name``: a copy of its pipeline with the final step (``clf``) replaced.

    Raises EngineError for a member without a regression form (or a plug-in member whose final
    step is not one of the built-in classifiers).
    """
    from sklearn.base import clone
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    from data_engine.mine.models import KNN_NEIGHBOURS, SVM_C
    from data_engine.mine.tiny import SmallDataKNeighborsRegressor

    if name in NO_REGRESSOR or not hasattr(member, "steps") or member.steps[-1][0] != "clf":
        raise EngineError(f"model member {name!r} has no regression form; use linear, hgb, knn, svm or embedding")
    clf = member.steps[-1][1]
    if name in ("linear", "embedding"):
        reg: Any = Ridge(alpha=RIDGE_ALPHA)
    elif name == "hgb":
        reg = HistGradientBoostingRegressor(categorical_features=clf.categorical_features,
                                            early_stopping=clf.early_stopping, random_state=clf.random_state)
    elif name == "knn":
        reg = SmallDataKNeighborsRegressor(n_neighbors=KNN_NEIGHBOURS)
    elif name == "svm":
        reg = TransformedTargetRegressor(SVR(C=SVM_C, gamma="scale"), transformer=StandardScaler())
    else:
        raise EngineError(f"model member {name!r} has no regression form; use linear, hgb, knn, svm or embedding")
    pipe = clone(member)
    pipe.steps[-1] = ("clf", reg)
    return pipe


def regressor_members(members: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``members`` (name -> classifier pipeline) as regressors, and the names left out (no regression
    form). Raises EngineError when none is left."""
    kept = {name: as_regressor(name, m) for name, m in members.items() if name not in NO_REGRESSOR}
    dropped = [name for name in members if name in NO_REGRESSOR]
    if not kept:
        raise EngineError(f"none of the model members ({', '.join(members)}) has a regression form; "
                          "use linear, hgb, knn, svm or embedding")
    return kept, dropped
