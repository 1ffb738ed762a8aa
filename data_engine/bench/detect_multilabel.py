"""``bench detect --dataset digit-tags``: tag-error detection on a real multi-label set, engine vs cleanlab.

No multi-label set ships offline, so one is built from real data by fixed rules: scikit-learn's
bundled handwritten digits (1,797 scans of 8 x 8 pixels; no download), each scan tagged with the
properties of the digit it shows (:data:`DIGIT_TAGS`): ``even`` (0 2 4 6 8), ``prime`` (2 3 5 7),
``closed_loop`` (0 6 8 9: a closed stroke, as usually written; 4 is drawn open in this set), and
``large`` (5 and up). Several tags per scan, some with none (1), and the tags depend on the pixels
through the digit's shape, not through a feature chosen to make them easy.

Tag errors are injected at a seed (:func:`inject_tag_errors`: one tag of a chosen example added or
removed, the multi-label annotator's usual slip), the set is ingested into a fresh home with
``[dataset] task = "multilabel"`` and mined with the configured model. The engine's label flags
(and its ranking's first k, k = the injected errors) are scored against the injected errors, beside
cleanlab's own call in the same run: ``cleanlab.multilabel_classification.filter.find_label_issues``
and ``rank.get_label_quality_scores`` on 5-fold one-vs-rest logistic regression of the same pixels.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_engine.bench.folders import bench_folder
from data_engine.bench.scores import BASELINE_FOLDS, detection_scores, mine_landed_frame

# The documented rules: tag -> the digits it applies to.
DIGIT_TAGS: dict[str, frozenset[int]] = {
    "closed_loop": frozenset({0, 6, 8, 9}),
    "even": frozenset({0, 2, 4, 6, 8}),
    "large": frozenset({5, 6, 7, 8, 9}),
    "prime": frozenset({2, 3, 5, 7}),
}


def load_digit_tags() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The digits as a tag set: pixels (1797, 64) named ``p00``..``p63``, the true tag matrix
    (1797, 4) of 0/1 in the order of the tag names (sorted), and the tag names."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = pd.DataFrame(digits.data, columns=[f"p{j:02d}" for j in range(digits.data.shape[1])])
    tags = sorted(DIGIT_TAGS)
    Y = np.array([[int(d) in DIGIT_TAGS[t] for t in tags] for d in digits.target], dtype=np.int8)
    return X, Y, tags


def inject_tag_errors(Y: np.ndarray, rate: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One tag added or removed (uniformly among the K) in ``rate`` of the examples of ``Y`` (n, K) 0/1.
    Returns the noisy matrix (n, K) and the indices of the changed examples (sorted)."""
    rng = np.random.default_rng(seed)
    n, k = Y.shape
    idx = np.sort(rng.choice(n, size=int(round(rate * n)), replace=False))
    noisy = Y.copy()
    cols = rng.integers(0, k, size=len(idx))
    noisy[idx, cols] = 1 - noisy[idx, cols]
    return noisy, idx


def tag_cells(Y: np.ndarray, tags: list[str]) -> list[str]:
    """Each row of ``Y`` (n, K) as a CSV cell: its tags joined by ``|``; ``[]`` for no tags."""
    return ["|".join(t for t, on in zip(tags, row) if on) or "[]" for row in Y]


def run_multilabel_detect_benchmark(*, noise: float = 0.1, seed: int = 0, model: str = "auto",
                                    baseline: bool = True, keep: Path | None = None, n_jobs: int = 2) -> dict[str, Any]:
    """Inject, ingest, mine, score (see the module docstring). Returns the figures as a dict."""
    from data_engine.bench.datasets import BenchDataset
    from data_engine.bench.homes import make_home

    X, Y, tags = load_digit_tags()
    noisy, idx = inject_tag_errors(Y, noise, seed=seed)
    ids = np.array([f"d{i:04d}" for i in range(len(Y))], dtype=object)
    truth = pd.Series(np.isin(np.arange(len(Y)), idx), index=ids)
    data = BenchDataset("digit-tags", "tabular", X, np.array(tag_cells(noisy, tags), dtype=object),
                        {c: "numeric" for c in X.columns})
    with bench_folder(keep, "bench-detect-multilabel-") as workdir:
        home = make_home(keep if keep is not None else workdir / "home", data, model=model, n_jobs=n_jobs,
                         budget=len(Y), task="multilabel", classes=tags, label_column="tags", seed=seed)
        frame = X.copy()
        frame.insert(0, "id", ids)
        frame["tags"] = data.labels
        engine = mine_landed_frame(home, frame, "digit_tags.csv", truth)
    result: dict[str, Any] = {"dataset": "digit-tags", "task": "multilabel", "rows": int(len(Y)), "noise": noise,
                              "injected": int(len(idx)), "seed": seed, "tags": tags, "engine": engine}
    if baseline:
        result["baseline"] = cleanlab_multilabel_baseline(X, noisy, truth, seed=seed)
    return result


def cleanlab_multilabel_baseline(X: pd.DataFrame, noisy: np.ndarray, truth: pd.Series, *, seed: int) -> dict[str, Any]:
    """cleanlab's own call on 5-fold one-vs-rest logistic regression (standardised pixels) of ``X``
    (n, D) with the given tag matrix ``noisy`` (n, K): ``find_label_issues`` flags, ranked by
    ``get_label_quality_scores``; scored against ``truth`` (bool per example id)."""
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    model = OneVsRestClassifier(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, X.to_numpy(dtype=np.float64), noisy,
                                  cv=KFold(BASELINE_FOLDS, shuffle=True, random_state=seed), method="predict_proba")
        given = [list(np.flatnonzero(row)) for row in noisy]
        is_issue = find_label_issues(given, probs, n_jobs=1)
        quality = get_label_quality_scores(given, probs)
    ids = truth.index.to_numpy()
    ranked = ids[np.argsort(quality, kind="stable")].tolist()
    scores = detection_scores(truth, set(ids[np.asarray(is_issue, dtype=bool)]), ranked)
    scores["model_spec"] = "cleanlab multilabel find_label_issues, 5-fold one-vs-rest logistic regression"
    scores["seconds"] = round(time.perf_counter() - started, 2)
    return scores
