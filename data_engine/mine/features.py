"""Feature blocks the model members and the ``tfidf`` embedder share: missing-value fillers,
TF-IDF of text, imputed/scaled numbers and one-hot categories (scikit-learn transformers)."""

from __future__ import annotations

from typing import Any

# Categories rarer than this share one "infrequent" code (keeps one-hot width bounded).
MIN_CATEGORY_COUNT = 5


MAX_ONE_HOT_CATEGORIES = 50
# N-grams each TF-IDF vocabulary keeps (the most frequent): without a bound the vocabularies of
# 300,000 short texts (every word pair, every 2-5 character n-gram) made a 3.2 GB model.
MAX_TEXT_FEATURES = 50_000


def fill_text(x: Any) -> Any:
    """Replace missing values in a 1-D array of strings by '' (TF-IDF cannot read None)."""
    import numpy as np
    import pandas as pd

    return pd.Series(np.asarray(x, dtype=object).ravel()).fillna("").astype(str).to_numpy()


def fill_category(X: Any) -> Any:
    """Replace missing values in a 2-D block of categories by '<missing>' (a category of its own)."""
    import pandas as pd

    frame = pd.DataFrame(X).astype(object)
    return frame.where(frame.notna(), "<missing>").astype(str)


def text_features(*, char: bool, max_features: int | None = MAX_TEXT_FEATURES) -> Any:
    """TF-IDF of one text column: word uni/bi-grams, plus character n-grams for real text.

    Each vocabulary keeps at most ``max_features`` n-grams (the most frequent; None: all, the
    behaviour before the bound, kept for ``bench size``); character n-grams seen in one text only
    are dropped (``min_df=2``). Word n-grams keep ``min_df=1``: in a small data set a word seen once
    still tells texts apart, and the bound on their number holds the size.
    """
    import numpy as np
    from sklearn.pipeline import FunctionTransformer, make_pipeline, make_union

    # A TfidfVectorizer whose saved vocabulary does not make skops quadratic (see TextTfidf).
    from data_engine.mine.text_tfidf import TextTfidf as TfidfVectorizer

    # Single-character tokens matter in categorical codes ("A", "3"), so the token pattern keeps them.
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32,
                           max_features=max_features)
    parts = [word]
    if char:
        parts.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                                     dtype=np.float32, max_features=max_features))
    return make_pipeline(FunctionTransformer(fill_text), make_union(*parts) if char else word)


def numeric_block(scale: bool) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The indicator keeps "was missing" as a signal instead of hiding it behind the median.
    impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    return make_pipeline(impute, StandardScaler()) if scale else impute


def one_hot(sparse: bool) -> Any:
    import numpy as np
    from sklearn.pipeline import FunctionTransformer, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    return make_pipeline(
        FunctionTransformer(fill_category),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=MIN_CATEGORY_COUNT,
                      max_categories=MAX_ONE_HOT_CATEGORIES, sparse_output=sparse, dtype=np.float32),
    )
