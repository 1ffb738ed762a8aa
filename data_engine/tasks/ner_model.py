"""The built-in NER baseline: a per-token linear classifier on word, shape, affix and context features.

No download: scikit-learn's ``DictVectorizer`` turns each token's features into a sparse row and a
multinomial ``LogisticRegression`` gives calibrated-enough per-token probabilities over the IO tags
(:mod:`data_engine.tasks.tokens`). The features are the classic ones of feature-based taggers
(Ratinov & Roth 2009, "Design challenges and misconceptions in named entity recognition"): the
lower-cased word, its shape (``Xxxx``, ``dd``), prefixes and suffixes of 2-3 characters,
capitalisation, digits, and the same for the words in a window of two on each side. A CRF
(sklearn-crfsuite) would model tag transitions; it is not a dependency of the engine, and the
independent per-token model is what cleanlab's token-classification scores read anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from data_engine.errors import EngineError
from data_engine.tasks import tokens as tk
from data_engine.tasks.spans import decode, spans_of

if TYPE_CHECKING:
    from data_engine.compute.backend import Backend
    from data_engine.tasks.oof import OOFResult

WINDOW = 2


def _shape(word: str) -> str:
    """``Xxxx``-style shape with runs collapsed (``McDonald`` -> ``XxXx``, ``2024`` -> ``d``)."""
    out = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def token_features(words: Sequence[str]) -> list[dict[str, Any]]:
    """One feature dict per token of a text (the words in order)."""
    low = [w.lower() for w in words]
    shapes = [_shape(w) for w in words]
    feats = []
    for i, w in enumerate(words):
        f: dict[str, Any] = {"bias": 1.0, "w": low[i], "shape": shapes[i], "p2": low[i][:2], "p3": low[i][:3],
                             "s2": low[i][-2:], "s3": low[i][-3:], "title": w.istitle(), "upper": w.isupper(),
                             "digit": w.isdigit(), "first": i == 0}
        for d in range(1, WINDOW + 1):
            for side, j in (("-", i - d), ("+", i + d)):
                if 0 <= j < len(words):
                    f[f"w{side}{d}"] = low[j]
                    f[f"shape{side}{d}"] = shapes[j]
                else:
                    f[f"w{side}{d}"] = "<edge>"
        feats.append(f)
    return feats


def text_column_of(X: pd.DataFrame, column: str | None) -> pd.Series:
    """The text column of model inputs ``X``: ``column`` when given and present, else the only
    column of text. Raises ``EngineError`` when there is none."""
    if column is not None and column in X.columns:
        return X[column]
    text = [c for c in X.columns if pd.api.types.is_string_dtype(X[c]) or pd.api.types.is_object_dtype(X[c])]
    if len(text) != 1:
        raise EngineError(f"the NER tagger reads one text column; inputs have {list(X.columns)}")
    return X[text[0]]


class TokenTagger(ClassifierMixin, BaseEstimator):
    """A per-token IO tagger fitted on texts and their stored span sets.

    ``fit(X, y)``: ``X`` a frame with the text column (n rows), ``y`` (n,) stored span sets
    (:mod:`data_engine.tasks.spans`) or their encoded matrix (n, 1 + 3 * MAX_SPANS) with ``tags``
    the entity types it indexes (``tags``: the dataset's types; default those ``y`` uses). ``token_probs(X)``: per text, token offsets (m, 2) and tag
    probabilities (m, 1 + K) over ``["O", *types_]``. ``predict_proba(X)``: the packed fixed-width
    predictions (n, MAX_TOKENS * (3 + K)) of :func:`data_engine.tasks.tokens.pack`.
    """

    def __init__(self, tags: tuple[str, ...] | None = None, text_column: str | None = None, C: float = 1.0,
                 seed: int = 0) -> None:
        self.tags = tags
        self.text_column = text_column
        self.C = C
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Sequence[str]) -> TokenTagger:
        """Fit on the tokens of ``X``'s texts, tagged from the span sets ``y``."""
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression

        texts = text_column_of(X, self.text_column).astype(str).tolist()
        y = np.asarray(y)
        if y.ndim == 2:  # the task's encoded matrix: its type indices need the type names
            if self.tags is None:
                raise EngineError("an encoded span matrix needs the tagger's entity types (tags)")
            y = np.asarray(decode(y, list(self.tags)), dtype=object)
        labels = [spans_of(str(v)) for v in y]
        if len(texts) != len(labels):
            raise EngineError(f"{len(texts)} texts but {len(labels)} labels")
        self.types_ = tuple(self.tags) if self.tags is not None else tuple(sorted({s.label for sp in labels for s in sp}))
        self.classes_ = np.asarray(self.types_, dtype=object)  # the entity types (the dataset's classes); tag 0 is "outside"
        feats: list[dict[str, Any]] = []
        tags: list[np.ndarray] = []
        for text, spans in zip(texts, labels):
            toks = tk.tokenize(text)
            feats += token_features([t for t, _, _ in toks])
            tags.append(tk.spans_to_tags(spans, tk.offsets(text), self.types_))
        y_tok = np.concatenate(tags) if tags else np.array([], dtype=np.int64)
        self.vectorizer_ = DictVectorizer()
        Xt = self.vectorizer_.fit_transform(feats)
        self.tags_seen_ = np.unique(y_tok)
        if len(self.tags_seen_) < 2:  # one tag only (no entities at all): that tag with certainty
            self.model_ = None
        else:
            self.model_ = LogisticRegression(C=self.C, max_iter=1000, random_state=self.seed).fit(Xt, y_tok)
        return self

    def token_probs(self, X: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text of ``X``: token offsets (m, 2) int64 and tag probabilities (m, 1 + K)."""
        texts = text_column_of(X, self.text_column).astype(str).tolist()
        k = len(self.types_) + 1
        out = []
        all_feats: list[dict[str, Any]] = []
        bounds = []
        for text in texts:
            toks = tk.tokenize(text)
            bounds.append((len(all_feats), len(toks), tk.offsets(text)))
            all_feats += token_features([t for t, _, _ in toks])
        probs = np.zeros((len(all_feats), k))
        if all_feats:
            if self.model_ is None:
                probs[:, int(self.tags_seen_[0]) if len(self.tags_seen_) else 0] = 1.0
            else:
                probs[:, self.model_.classes_.astype(int)] = self.model_.predict_proba(self.vectorizer_.transform(all_feats))
        for first, m, off in bounds:
            out.append((off, probs[first:first + m]))
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Packed per-token predictions (n, MAX_TOKENS * (3 + K)) for ``X``'s texts."""
        pairs = self.token_probs(X)
        return tk.pack([o for o, _ in pairs], [p for _, p in pairs], len(self.types_))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Each text's predicted span set (stored spelling), shape (n,) object: the most likely tag per token."""
        from data_engine.tasks.spans import canonical

        return np.asarray([canonical(tk.tags_to_spans(p.argmax(axis=1), o, self.types_))
                           for o, p in self.token_probs(X)], dtype=object)


def out_of_fold_tokens(members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, types: Sequence[str],
                       fold_of: np.ndarray, n_folds: int, *, compute: Backend | None = None, n_jobs: int = 1) -> OOFResult:
    """Out-of-fold packed per-token predictions of each member (a :class:`TokenTagger`) on the texts of
    ``X`` (n rows) with span sets ``y`` (n,): :func:`data_engine.tasks.oof.out_of_fold_packed` with
    rows of MAX_TOKENS * (3 + K) numbers."""
    from data_engine.tasks.oof import out_of_fold_packed

    return out_of_fold_packed(members, X, y, types, fold_of, n_folds, width=tk.MAX_TOKENS * tk.slot_width(len(types)),
                              compute=compute, n_jobs=n_jobs, noun="texts")


def aligned_predictions(model: Any, X: pd.DataFrame, types: Sequence[str]) -> np.ndarray:
    """A fitted tagger's packed predictions for ``X`` with tag columns in ``["O", *types]`` order
    (shape (n, MAX_TOKENS * (3 + K))); a type the model was not fitted with gets probability 0."""
    types = [str(t) for t in types]
    if hasattr(model, "token_probs"):
        learned = list(getattr(model, "types_", ()))
        pairs = model.token_probs(X)
    else:  # the user's trainer answering through its serve worker: packed rows in its classes_ order
        learned = [str(c) for c in model.classes_]
        pairs = [tk.unpack(row, len(learned)) for row in model.predict_proba(X)]
    if learned == types:
        return tk.pack([o for o, _ in pairs], [p for _, p in pairs], len(types))
    index = {t: j + 1 for j, t in enumerate(learned)}
    cols = [0] + [index.get(t, -1) for t in types]
    probs = []
    for _, p in pairs:
        out = np.zeros((len(p), len(cols)))
        for k, j in enumerate(cols):
            if j >= 0:
                out[:, k] = p[:, j]
        probs.append(out)
    return tk.pack([o for o, _ in pairs], probs, len(types))
