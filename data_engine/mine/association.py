"""The classical tests of association of one input column with the labels, for the column checks
(:mod:`data_engine.mine.columns`, the useless check's first test) and their benchmark: the one-way
ANOVA F-test or the F-test of a linear association of a numeric column (scikit-learn ``f_classif``,
``f_regression``), the chi-square test of independence of a categorical one or a one-way ANOVA of
numeric labels across its categories (scipy ``chi2_contingency``, ``f_oneway``)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def univariate_p(values: pd.Series, kind: str, y: np.ndarray, *, regression: bool = False) -> tuple[str, float]:
    """The name and p-value of the classical test of association of one column ``values`` (N,) with
    the labels ``y`` (N,): class indices, a one-way ANOVA F-test (numeric column) or the chi-square
    test of independence (categorical); with ``regression`` numeric labels, the F-test of a linear
    association (numeric) or a one-way ANOVA across the categories. 1 when it cannot be computed."""
    if kind == "numeric":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        return ("F-test", _regression_p(x, y)) if regression else ("ANOVA F-test", _anova_p(x, y))
    return ("ANOVA F-test over categories", _categories_p(values, y)) if regression \
        else ("chi-square test", _chi2_p(values, y))


def _anova_p(x: np.ndarray, y: np.ndarray) -> float:
    """The one-way ANOVA F-test p-value of numeric ``x`` (N,) across the classes ``y`` (N,) (scikit-learn
    ``f_classif``; missing values left out); 1 when it cannot be computed (a constant column)."""
    import warnings

    from sklearn.feature_selection import f_classif

    ok = np.isfinite(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant column: F is undefined
        p = f_classif(x[ok].reshape(-1, 1), y[ok])[1][0]
    return float(p) if np.isfinite(p) else 1.0


def _regression_p(x: np.ndarray, y: np.ndarray) -> float:
    """The F-test p-value of the linear association of numeric ``x`` (N,) with numeric ``y`` (N,)
    (scikit-learn ``f_regression``; missing values left out); 1 when it cannot be computed."""
    import warnings

    from sklearn.feature_selection import f_regression

    ok = np.isfinite(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = f_regression(x[ok].reshape(-1, 1), y[ok])[1][0]
    return float(p) if np.isfinite(p) else 1.0


def _categories_p(values: pd.Series, y: np.ndarray) -> float:
    """The one-way ANOVA p-value of numeric ``y`` (N,) across the categories of ``values`` (N,; missing is
    a category) (scipy ``f_oneway``); 1 when it cannot be computed."""
    from scipy.stats import f_oneway

    groups = [g for _, g in pd.Series(y).groupby(values.fillna("<missing>").astype(str).to_numpy()) if len(g) > 1]
    if len(groups) < 2:
        return 1.0
    p = f_oneway(*groups).pvalue
    return float(p) if np.isfinite(p) else 1.0


def _chi2_p(values: pd.Series, y: np.ndarray) -> float:
    """The chi-square test of independence of categorical ``values`` (N,; missing is a category) and the
    classes ``y`` (N,) (scipy ``chi2_contingency``); 1 when it cannot be computed."""
    from scipy.stats import chi2_contingency

    table = pd.crosstab(values.fillna("<missing>").astype(str).to_numpy(), y)
    if min(table.shape) < 2:
        return 1.0
    return float(chi2_contingency(table.to_numpy()).pvalue)
