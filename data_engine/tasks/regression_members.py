"""The modality's model members as regressors (:meth:`data_engine.tasks.regression.Regression.members_for`).

The mining stage builds each member as a scikit-learn pipeline ending in a classifier (step
``clf``; :mod:`data_engine.mine.models`). For a number, each keeps its feature steps (the same
scaled numbers, one-hot and tokenised categories, TF-IDF, image and embedding features) and its
final classifier is swapped for the regressor of the same family, recognised by its class:

- logistic regression (``linear``, ``embedding``): ridge regression, the L2-penalised linear model;
- HistGradientBoostingClassifier (``hgb``): HistGradientBoostingRegressor with the same categorical
  columns, early stopping and seed;
- k nearest neighbours (``knn``): the mean of the same number of neighbours (fewer on tiny data);
- the calibrated RBF SVM (``svm``): an RBF support vector regressor with the same C, on the
  standardised target (SVR's epsilon is in the target's units);
- naive Bayes (``nb``) has no regression form: left out, and said (``dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.neighbors import KNeighborsRegressor

from data_engine.errors import EngineError

# Ridge's penalty: scikit-learn's default; the features are standardised (or TF-IDF).
RIDGE_ALPHA = 1.0


class SmallDataKNeighborsRegressor(KNeighborsRegressor):
    """KNeighborsRegressor that averages all training rows when it has fewer than ``n_neighbors``
    of them (the parent raises ``Expected n_neighbors <= n_samples_fit``), as the classification
    member does (``data_engine.mine.tiny.SmallDataKNeighbors``). Module level, so fitted models pickle."""

    def kneighbors(self, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True) -> Any:
        """The parent's neighbours, with ``n_neighbors`` capped at the rows available."""
        if n_neighbors is None:
            available = self.n_samples_fit_ - (1 if X is None else 0)
            n_neighbors = max(1, min(self.n_neighbors, available))
        return super().kneighbors(X, n_neighbors=n_neighbors, return_distance=return_distance)


def _regressor_for(clf: Any) -> Any | None:
    """The regressor of classifier ``clf``'s family (None when the family has none)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    if isinstance(clf, LogisticRegression):
        return Ridge(alpha=RIDGE_ALPHA)
    if isinstance(clf, HistGradientBoostingClassifier):
        return HistGradientBoostingRegressor(categorical_features=clf.categorical_features,
                                             early_stopping=clf.early_stopping, random_state=clf.random_state)
    if isinstance(clf, KNeighborsClassifier):
        return SmallDataKNeighborsRegressor(n_neighbors=clf.n_neighbors)
    if isinstance(clf, CalibratedClassifierCV) and isinstance(clf.estimator, SVC):
        svc = clf.estimator
        return TransformedTargetRegressor(SVR(C=svc.C, gamma=svc.gamma), transformer=StandardScaler())
    return None


def regressor_members(members: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``members`` (name -> unfitted classifier pipeline) as regressors, and the names left out (no
    regression form, e.g. naive Bayes); a member that is a regressor already stays as it is.
    Raises EngineError when none is left."""
    from sklearn.base import clone

    from sklearn.base import is_regressor

    from data_engine.trainers.command import CommandClassifier
    from data_engine.trainers.numbers import CommandRegressor

    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, member in members.items():
        if is_regressor(member):  # already built for numbers (the served model): as it is
            kept[name] = member
            continue
        if isinstance(member, CommandClassifier):  # the user's trainer, asked for numbers
            kept[name] = CommandRegressor(**member.get_params())
            continue
        steps = getattr(member, "steps", None)
        reg = _regressor_for(steps[-1][1]) if steps else None
        if reg is None:
            dropped.append(name)
            continue
        pipe = clone(member)
        pipe.steps[-1] = (steps[-1][0], reg)
        kept[name] = pipe
    if not kept:
        raise EngineError(f"none of the model members ({', '.join(members)}) has a regression form; "
                          "use linear, hgb, knn, svm or embedding in [mining] model")
    return kept, dropped
