"""Cheap surface features of examples: what tells junk from data at a glance.

Invalid rows share a *form* more than a meaning: markup, boilerplate, another language, encoded
bytes and near-empty text; blank or noise images; constant or out-of-range sensor readings. The
look-alike detector learns that form from reviewers' discards on these features:

* text columns: character 2-4-grams within word boundaries (TF-IDF, scikit-learn) plus character
  class shares (letters, digits, markup, non-ASCII, upper case, white space) and lengths;
* images (numeric pixel columns): the standardised pixels plus intensity statistics (mean, spread,
  share of dark and saturated pixels, Shannon entropy by scikit-image, gradient energy);
* tabular rows: missing-value indicators, robust z-scores (median/MAD) clipped at 10, the count of
  extreme values, whether all readings are equal, and one-hot categories.

The transform is fitted on the rows it returns (unsupervised: reviewers' rows and candidates
together), so every row is described in the same space.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

# Characters of markup, templates and encodings (HTML/XML tags, entities, URLs, JSON, escapes).
MARKUP_CHARS = "<>{}[]/\\=&;%#|_@^~`$"
# Column kinds these features read; others (image files, vector columns) need an embedding.
SURFACE_KINDS = ("numeric", "categorical", "text")
# Above this robust z-score a reading counts as extreme.
EXTREME_Z = 5.0


def surface_features(frame: pd.DataFrame, schema: Mapping[str, str], modality: str) -> sp.csr_matrix:
    """Surface features of the N rows of ``frame`` (its ``schema`` columns), shape (N, F), float64.

    ``schema`` maps input columns to 'numeric' | 'categorical' | 'text'; ``modality`` is the
    dataset's ('image' adds the pixel statistics). Dense statistics are standardised. Columns of
    other kinds (:data:`SURFACE_KINDS`) are not read: F is 0 when no column is readable.
    """
    from sklearn.preprocessing import StandardScaler

    blocks: list[sp.spmatrix] = []
    dense: list[np.ndarray] = []
    numeric = [c for c, k in schema.items() if k == "numeric"]
    for col in (c for c, k in schema.items() if k == "text"):
        grams, stats = _text_features(frame[col])
        blocks.append(grams)
        dense.append(stats)
    if numeric:
        values = frame[numeric].to_numpy(dtype=np.float64)
        dense.append(_image_features(values) if modality == "image" else _reading_features(values))
    categorical = [c for c, k in schema.items() if k == "categorical"]
    if categorical:
        from sklearn.preprocessing import OneHotEncoder

        cats = frame[categorical].astype(object).where(frame[categorical].notna(), "<missing>").astype(str)
        blocks.append(OneHotEncoder(handle_unknown="ignore", min_frequency=3).fit_transform(cats))
    if dense:
        stacked = np.nan_to_num(np.hstack(dense), nan=0.0, posinf=0.0, neginf=0.0)
        blocks.append(sp.csr_matrix(StandardScaler().fit_transform(stacked)))
    if not blocks:
        return sp.csr_matrix((len(frame), 0))
    return sp.hstack(blocks, format="csr")


def _text_features(texts: pd.Series) -> tuple[sp.csr_matrix, np.ndarray]:
    """Character n-grams (N, V) and character-class statistics (N, 9) of a text column."""
    # TextTfidf: scikit-learn's TfidfVectorizer that gives one zero column where no n-gram is kept
    # (every text empty) instead of stopping at "empty vocabulary".
    from data_engine.mine.text_tfidf import TextTfidf as TfidfVectorizer

    s = texts.fillna("").astype(str)
    n = len(s)
    min_df = 2 if n >= 50 else 1
    grams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=min_df, max_features=50_000,
                            sublinear_tf=True, lowercase=False, dtype=np.float64).fit_transform(s)
    length = s.str.len().to_numpy(dtype=np.float64)
    denom = np.maximum(length, 1.0)
    words = s.str.split()
    stats = np.column_stack([
        np.log1p(length),
        np.log1p(words.str.len().fillna(0).to_numpy(dtype=np.float64)),
        s.str.count(r"[A-Za-z]").to_numpy() / denom,
        s.str.count(r"[0-9]").to_numpy() / denom,
        s.str.count("[" + "".join("\\" + c for c in MARKUP_CHARS) + "]").to_numpy() / denom,
        s.str.count(r"[^\x00-\x7f]").to_numpy() / denom,
        s.str.count(r"[A-Z]").to_numpy() / denom,
        s.str.count(r"\s").to_numpy() / denom,
        np.log1p(words.map(lambda w: max((len(x) for x in w), default=0)).to_numpy(dtype=np.float64)),
    ])
    return grams, stats


def _image_features(pixels: np.ndarray) -> np.ndarray:
    """Standardised pixels plus intensity statistics of flat images, shape (N, P + 6)."""
    from skimage.measure import shannon_entropy

    x = np.nan_to_num(pixels, nan=0.0)
    lo, hi = np.nanmin(x), np.nanmax(x)
    scaled = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    side = int(round(np.sqrt(x.shape[1])))
    if side * side == x.shape[1]:
        img = scaled.reshape(len(x), side, side)
        grad = np.abs(np.diff(img, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(img, axis=2)).mean(axis=(1, 2))
    else:
        grad = np.abs(np.diff(scaled, axis=1)).mean(axis=1) if x.shape[1] > 1 else np.zeros(len(x))
    # Entropy over 16 grey levels per image: scikit-image's definition on the quantised pixels.
    levels = np.minimum((scaled * 16).astype(np.int64), 15)
    entropy = np.array([shannon_entropy(row) for row in levels])
    stats = np.column_stack([scaled.mean(axis=1), scaled.std(axis=1), (scaled <= 0.05).mean(axis=1),
                             (scaled >= 0.95).mean(axis=1), entropy, grad])
    return np.hstack([x, stats])


def _reading_features(values: np.ndarray) -> np.ndarray:
    """Missing and extreme-value patterns of numeric readings, shape (N, 2 D + 4)."""
    missing = np.isnan(values)
    median = np.nanmedian(values, axis=0) if len(values) else np.zeros(values.shape[1])
    mad = np.nanmedian(np.abs(values - median), axis=0) * 1.4826 if len(values) else np.ones(values.shape[1])
    mad = np.where(np.isfinite(mad) & (mad > 0), mad, 1.0)
    z = np.clip(np.abs(np.nan_to_num((values - median) / mad, nan=0.0)), 0.0, 10.0)
    filled = np.where(missing, np.nan, values)
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(filled, axis=1) if values.shape[1] > 1 else np.ones(len(values))
    constant = (np.nan_to_num(spread, nan=0.0) == 0).astype(np.float64)
    return np.hstack([missing.astype(np.float64), z, np.column_stack([
        (z > EXTREME_Z).sum(axis=1), missing.mean(axis=1), constant, z.max(axis=1) if z.shape[1] else np.zeros(len(z))
    ])])
