"""Every model member fits and predicts on tiny classes (a cold start), and is unchanged on ordinary data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.mine.models import MEMBERS, build_estimator
from data_engine.mine.spec import ModelSpec
from data_engine.mine.tiny import SmallDataCalibratedClassifierCV, SmallDataHistGradientBoosting, stratified_split_fits
from data_engine.mine.models import Schema


def tiny_frame(counts: list[int], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows per class as given; a numeric, a categorical and a text column that carry the class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    frame = pd.DataFrame({
        "x": rng.normal(size=len(y)) + 3 * y,
        "c": np.array(["u", "v", "w", "z"], dtype=object)[y % 4],
        "t": [f"word{v} filler" for v in y],
    })
    return frame, np.array([f"k{v}" for v in y], dtype=object)


SCHEMA = Schema(("x",), ("c",), ("t",))


# The engine's own members; the user's trainer ("command") is the user's model, tested in
# tests/ship/test_trainer_command.py.
@pytest.mark.parametrize("member", sorted(set(MEMBERS) - {"command"}))
@pytest.mark.parametrize("counts", [[1, 2, 5], [8] * 10, [9, 1]])
def test_every_member_fits_tiny_classes(member: str, counts: list[int]) -> None:
    frame, y = tiny_frame(counts)
    modality = "text" if member == "nb" else "tabular"
    schema = Schema((), ("c",), ("t",)) if member == "nb" else SCHEMA
    model = build_estimator(ModelSpec((member,), modality), schema)
    # 8 of 10 rows per class is a mining fold at the cold start (100 labels over 10 classes, 5 folds).
    model.fit(frame, y)
    probs = model.predict_proba(frame)
    assert probs.shape == (len(y), len(counts))
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_stratified_split_rule_matches_scikit_learn() -> None:
    from sklearn.model_selection import train_test_split

    for counts in ([8] * 10, [10] * 10, [1, 5, 5], [2, 3], [20, 20]):
        y = np.repeat(np.arange(len(counts)), counts)
        try:
            train_test_split(y, test_size=0.1, stratify=y, random_state=0)
            fits = True
        except ValueError:
            fits = False
        assert stratified_split_fits(y, 0.1) == fits, counts


def test_ordinary_data_fit_exactly_as_the_library() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.svm import SVC

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    ours = SmallDataHistGradientBoosting(early_stopping=True, random_state=0).fit(X, y)
    theirs = HistGradientBoostingClassifier(early_stopping=True, random_state=0).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and np.allclose(ours.predict_proba(X), theirs.predict_proba(X))
    ours_svm = SmallDataCalibratedClassifierCV(SVC(), cv=3, ensemble=False).fit(X, y)
    theirs_svm = CalibratedClassifierCV(SVC(), cv=3, ensemble=False).fit(X, y)
    assert np.allclose(ours_svm.predict_proba(X), theirs_svm.predict_proba(X))
    # The parameters a user set survive a fit that had to adapt them.
    small = SmallDataCalibratedClassifierCV(SVC(), cv=3, ensemble=False).fit(X[:7], np.array([0, 0, 0, 1, 1, 1, 2]))
    assert small.cv == 3 and isinstance(small.estimator, SVC)
