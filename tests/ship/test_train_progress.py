"""`train` shows progress (data_engine.progress): one unit per ensemble member, from scikit-learn's
own per-member report, without changing the stored model or writing to stdout."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from data_engine import progress as progress_module
from data_engine.ship.fitting import fit_estimator


def test_each_member_advances_the_bar_and_stdout_stays_clean(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ticks: list[int] = []
    real = progress_module.Progress.advance
    monkeypatch.setattr(progress_module.Progress, "advance", lambda self, n=1: (ticks.append(n), real(self, n)))
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = np.array(["x", "y", "z"] * 20)
    est = VotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB()), ("knn", KNeighborsClassifier())],
                           voting="soft")
    with caplog.at_level(logging.INFO, logger="data_engine.progress"):
        fitted = fit_estimator(est, X, y, description="training lr+nb+knn")
    assert sum(ticks) == 3
    assert "training lr+nb+knn: lr, nb, knn on 60 labels in 3 classes: 3 members" in caplog.text
    assert "done in" in caplog.text
    assert fitted.get_params()["verbose"] is False  # the stored model is as built
    assert capsys.readouterr().out == ""


def test_a_single_model_counts_one_fit(caplog: pytest.LogCaptureFixture) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with caplog.at_level(logging.INFO, logger="data_engine.progress"):
        fit_estimator(LogisticRegression(), X, np.array(["p", "q", "p", "q"]), description="training linear")
    assert "training linear on 4 labels in 2 classes: 1 fits" in caplog.text
