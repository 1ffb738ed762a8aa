"""The text members' TF-IDF (:func:`data_engine.mine.features.text_features`): scikit-learn's
``TfidfVectorizer`` with a vocabulary that skops saves in time linear in its size, and that fits a
text column without a term. Module-level class, so fitted models pickle and skops loads it by name
(``ship.registry.TRUSTED_TYPES``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer


def keeps_terms(vectorizer: CountVectorizer, raw_documents: Sequence[Any]) -> bool:
    """Whether fitting ``vectorizer`` (a ``CountVectorizer`` or ``TfidfVectorizer`` with no fixed
    ``vocabulary``) on ``raw_documents`` (N texts) keeps at least one term, decided before the fit.

    The rule is scikit-learn's own (``CountVectorizer.fit_transform``, 1.9): the terms are what the
    vectorizer's ``build_analyzer()`` gives each text (decoding, lower-casing, token pattern or
    character n-grams, stop words, n-gram range); a term is kept when the number of texts holding it
    lies between ``min_df`` and ``max_df`` (an int a count of texts, a float a share of N).
    ``max_features`` keeps the most frequent of those, so it never leaves none. Where ``max_df`` bounds
    nothing (the engine's TF-IDFs) the scan stops at the first term in ``min_df`` texts: the first text
    with a word, the second text sharing a character n-gram with an earlier one. scikit-learn has no
    such test (its fit raises ``ValueError`` with no exception class of its own), hence this one.
    """
    n = len(raw_documents)
    high = vectorizer.max_df if isinstance(vectorizer.max_df, Integral) else vectorizer.max_df * n
    low = vectorizer.min_df if isinstance(vectorizer.min_df, Integral) else vectorizer.min_df * n
    if high < low:
        return False
    analyze = vectorizer.build_analyzer()
    counts: Counter[str] = Counter()
    for doc in raw_documents:
        for term in set(analyze(doc)):
            counts[term] += 1
            if high >= n and counts[term] >= low:  # no text count can exceed high: the term is kept
                return True
    return any(low <= c <= high for c in counts.values())


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

    Saved (skops, pickle) the vocabulary is three arrays, its terms' UTF-8 bytes, where each term
    ends and its index: skops writes a dict as one JSON node per entry (a few hundred bytes each),
    and a tags model on text holds a TF-IDF per tag, member and calibration fold (2,400 review
    sentences: a 1.8 GB artifact of such nodes). Loading rebuilds the same dict.

    A column with no term to keep (every text empty, or only punctuation for the word n-grams, or
    character n-grams each in one text only under ``min_df=2``, or fewer texts than ``min_df`` such
    as a single gold row; scikit-learn raises "empty vocabulary; perhaps the documents only contain
    stop words" or "max_df corresponds to < documents than min_df"; :func:`keeps_terms` tells before
    the fit) is fitted to no term (``no_terms_``): it then gives one all-zero feature for every text,
    at fit and at transform, as ``SimpleImputer(keep_empty_features=True)`` keeps an all-missing number column. So the other
    n-grams and columns still count, in every fold of mining, in training and at predict time, and
    the downstream SVD, normaliser and models get a matrix of the usual form.
    """

    no_terms_: bool = False

    def fit(self, raw_documents: Any, y: Any = None) -> "TextTfidf":
        """Learn the vocabulary and idf of ``raw_documents`` (N texts); returns ``self``."""
        self.fit_transform(raw_documents, y)
        return self

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        """Fit, then return the TF-IDF matrix, sparse of shape (N, vocabulary size); (N, 1) zeros
        when no term is kept (see the class docstring)."""
        if self.vocabulary is None and not isinstance(raw_documents, str):  # else scikit-learn's own errors
            if not hasattr(raw_documents, "__len__"):
                raw_documents = list(raw_documents)  # read twice: by the check, then by the fit
            if not keeps_terms(self, raw_documents):
                self.no_terms_, self.vocabulary_ = True, {}
                return self._zeros(raw_documents)
        out = super().fit_transform(raw_documents, y)
        self.no_terms_ = False
        self.vocabulary_ = {term: int(index) for term, index in self.vocabulary_.items()}
        return out

    def transform(self, raw_documents: Any) -> Any:
        """The TF-IDF matrix of ``raw_documents`` (M texts), sparse (M, vocabulary size); (M, 1) zeros
        for a column fitted to no term."""
        return self._zeros(raw_documents) if self.no_terms_ else super().transform(raw_documents)

    def _zeros(self, raw_documents: Any) -> Any:
        return sparse.csr_matrix((len(raw_documents), 1), dtype=self.dtype)

    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state with ``vocabulary_`` as arrays (see the class docstring)."""
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__ itself
        vocabulary = state.pop("vocabulary_", None)
        if isinstance(vocabulary, dict):
            encoded = [term.encode("utf-8") for term in vocabulary]
            state["vocabulary_bytes_"] = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
            state["vocabulary_ends_"] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
            state["vocabulary_index_"] = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
        elif vocabulary is not None:
            state["vocabulary_"] = vocabulary
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`__getstate__` (or a plain ``TfidfVectorizer``'s)."""
        state = dict(state)
        if "vocabulary_bytes_" in state:
            raw = state.pop("vocabulary_bytes_").tobytes()
            ends = state.pop("vocabulary_ends_").tolist()
            index = state.pop("vocabulary_index_").tolist()
            starts = [0, *ends[:-1]]
            state["vocabulary_"] = {raw[a:b].decode("utf-8"): i for a, b, i in zip(starts, ends, index)}
        super().__setstate__(state)
