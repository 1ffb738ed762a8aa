"""The text members' TF-IDF (:func:`data_engine.mine.features.text_features`): scikit-learn's
``TfidfVectorizer`` with a vocabulary that skops saves in time linear in its size. Module-level
class, so fitted models pickle and skops loads it by name (``ship.registry.TRUSTED_TYPES``)."""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer


class TextTfidf(TfidfVectorizer):
    """``TfidfVectorizer`` (same parameters, same vocabulary, same features) whose fitted
    ``vocabulary_`` maps each n-gram to a Python int.

    Why: with ``max_features`` scikit-learn leaves numpy int64 indices in ``vocabulary_``, and
    skops (0.16, ``skops.io._numpy.ndarray_get_state``) writes every numpy scalar as a file of
    its own in the artifact's zip, listing the zip's files before each one: saving is quadratic
    in the vocabulary. Measured on the review sentences (one word and one character TF-IDF): 5,611
    zip entries 3.3 s, 14,974 entries 15.7 s; the tags model on 2,400 sentences (a TF-IDF per tag
    and calibration fold) had not finished saving after 14 minutes. skops stores Python ints in
    the artifact's JSON, one entry for the whole vocabulary. scikit-learn has no option for it,
    hence the subclass.
    """

    def fit(self, raw_documents: Any, y: Any = None) -> "TextTfidf":
        """Learn the vocabulary and idf of ``raw_documents`` (N texts); returns ``self``."""
        self.fit_transform(raw_documents, y)
        return self

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        """Fit, then return the TF-IDF matrix, sparse of shape (N, vocabulary size)."""
        out = super().fit_transform(raw_documents, y)
        self.vocabulary_ = {term: int(index) for term, index in self.vocabulary_.items()}
        return out
