"""Truncated SVD that fits the TF-IDF it is fitted on: the one place the text spaces (the members'
dense space, :func:`data_engine.mine.models.feature_space`, and the ``tfidf`` embedder) reduce a
vocabulary to a fixed number of components.

scikit-learn's :class:`~sklearn.decomposition.TruncatedSVD` refuses more components than the
matrix has features (and any matrix of one feature), and a fitted vocabulary's width is known only
once the TF-IDF is fitted inside the same pipeline: a text column of a few distinct words (a code,
a yes/no answer) has fewer n-grams than the components asked for. The cap is taken at fit time from
the matrix itself, so no caller counts the vocabulary first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.utils.validation import check_is_fitted


def capped_components(asked: int, rows: int, features: int) -> int:
    """Components a truncated SVD of a (rows, features) matrix can give when ``asked`` are wanted:
    fewer than the features (TruncatedSVD's bound) and than the rows, at least 1. Meaningful for
    ``features`` >= 2 (one feature has no SVD: :class:`CappedSVD` passes it through)."""
    return max(1, min(asked, rows - 1, features - 1))


class CappedSVD(TransformerMixin, BaseEstimator):
    """``TruncatedSVD(n_components, random_state=random_state)`` with ``n_components`` capped by
    :func:`capped_components` at fit time: (N, F) in (sparse or dense), (N, k) float out, k the
    fitted ``n_components_``. With F = 1 (one n-gram in the whole column) there is nothing to
    reduce: the column is returned dense as it is (k = 1). Where the cap does not bite, the output
    is TruncatedSVD's exactly. A matrix with no variance (one row, or every row alike) is reduced
    without numpy's 0 / 0 RuntimeWarning and with ``svd_.explained_variance_ratio_`` 0."""

    def __init__(self, n_components: int = 100, random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> CappedSVD:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        rows, features = X.shape
        if features < 2:
            self.svd_ = None
            self.n_components_ = features
            return self._dense(X)
        self.n_components_ = capped_components(self.n_components, rows, features)
        self.svd_ = TruncatedSVD(self.n_components_, random_state=self.random_state)
        if rows > 1 and _total_variance(X) > 0:
            return self.svd_.fit_transform(X)
        # One row (a gold set of one, a fitted subset of one), no n-gram in any row or every row alike:
        # TruncatedSVD divides each component's variance by the data's, 0 / 0, with numpy's RuntimeWarning.
        # The components and the output are still its own; there is no variance to explain, so each
        # component explains none: ratio 0, set here instead of NaN.
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.svd_.fit_transform(X)
        self.svd_.explained_variance_ratio_ = np.zeros_like(self.svd_.explained_variance_)
        return out

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_components_")
        return self._dense(X) if self.svd_ is None else self.svd_.transform(X)

    @staticmethod
    def _dense(X: Any) -> np.ndarray:
        return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)


def _total_variance(X: Any) -> float:
    """The summed column variances of ``X`` (N, F), sparse or dense: TruncatedSVD's denominator of
    ``explained_variance_ratio_``, computed as it does (``mean_variance_axis`` or ``np.var``)."""
    from sklearn.utils import check_array
    from sklearn.utils.sparsefuncs import mean_variance_axis

    X = check_array(X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32])
    return float(mean_variance_axis(X, axis=0)[1].sum() if sparse.issparse(X) else np.var(X, axis=0).sum())
