"""``bench detect --dataset diabetes``: value-error detection on a regression set, engine vs cleanlab.

scikit-learn's bundled diabetes set (442 patients, 10 numbers, a disease-progression score from
25 to 346; no download) gets gross value errors injected at a seed (:func:`inject_value_errors`),
is ingested into a fresh engine home with ``[dataset] task = "regression"`` and mined with the
configured model. The engine's label flags (and its queue's first k, k = the number of injected
errors) are scored against the injected errors, beside cleanlab's own call in the same run:
``cleanlab.regression.learn.CleanLearning`` on a 5-fold model of the same features (standardised
numbers, ridge regression), its ``is_label_issue`` flags and its first k by label quality.
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

REGRESSION_DATASETS = ("diabetes",)
# A gross value error moves a label by this many standard deviations of the labels (uniformly
# between the two), towards the side where the label range has room: a typo, a unit mix-up or a
# value copied from another row, not measurement noise.
ERROR_SHIFT_SD = (2.0, 4.0)


def load_diabetes_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's diabetes set: 10 standardised numbers (442, 10) and the score (442,) float."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.reset_index(drop=True), y.to_numpy(dtype=np.float64)


def inject_value_errors(y: np.ndarray, rate: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gross value errors in ``rate`` of the labels ``y`` (n,): each chosen label moves by
    :data:`ERROR_SHIFT_SD` standard deviations up or down (down when up would leave the labels'
    range), rounded as the labels are written (to integers when all are). Returns the noisy labels
    (n,) and the indices of the changed ones (sorted)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = np.sort(rng.choice(n, size=int(round(rate * n)), replace=False))
    shift = rng.uniform(*ERROR_SHIFT_SD, size=len(idx)) * float(np.std(y))
    up = rng.random(len(idx)) < 0.5
    lo, hi = float(y.min()), float(y.max())
    up = np.where(y[idx] + shift > hi, False, np.where(y[idx] - shift < lo, True, up))
    noisy = y.copy()
    noisy[idx] = np.clip(np.where(up, y[idx] + shift, y[idx] - shift), lo, hi)
    if np.all(y == np.round(y)):
        noisy = np.round(noisy)
    return noisy, idx


def run_regression_detect_benchmark(*, noise: float = 0.1, seed: int = 0, model: str = "auto",
                                    baseline: bool = True, keep: Path | None = None, n_jobs: int = 2) -> dict[str, Any]:
    """Inject, ingest, mine, score (see the module docstring). Returns the figures as a dict."""
    from data_engine.bench.datasets import BenchDataset
    from data_engine.bench.homes import make_home

    X, y = load_diabetes_frame()
    noisy, idx = inject_value_errors(y, noise, seed=seed)
    ids = np.array([f"p{i:04d}" for i in range(len(y))], dtype=object)
    truth = pd.Series(np.isin(np.arange(len(y)), idx), index=ids)
    data = BenchDataset("diabetes", "tabular", X, noisy, {c: "numeric" for c in X.columns})
    with bench_folder(keep, "bench-detect-regression-") as workdir:
        home = make_home(keep if keep is not None else workdir / "home", data, model=model, n_jobs=n_jobs,
                         budget=len(y), task="regression", label_column="target", seed=seed)
        frame = X.copy()
        frame.insert(0, "id", ids)
        frame["target"] = noisy
        engine = mine_landed_frame(home, frame, "diabetes.csv", truth)
    result: dict[str, Any] = {"dataset": "diabetes", "task": "regression", "rows": int(len(y)), "noise": noise,
                              "injected": int(len(idx)), "seed": seed, "engine": engine}
    if baseline:
        result["baseline"] = cleanlab_baseline(X, noisy, truth, seed=seed)
    return result


def cleanlab_baseline(X: pd.DataFrame, noisy: np.ndarray, truth: pd.Series, *, seed: int) -> dict[str, Any]:
    """cleanlab's own call: ``CleanLearning`` (5-fold, standardised numbers + ridge regression) on the same features."""
    from cleanlab.regression.learn import CleanLearning
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = CleanLearning(make_pipeline(StandardScaler(), Ridge()), cv_n_folds=BASELINE_FOLDS, seed=seed,
                              verbose=False).find_label_issues(X.to_numpy(dtype=np.float64), noisy)
    ids = truth.index.to_numpy()
    quality = found["label_quality"].to_numpy()
    ranked = ids[np.argsort(quality, kind="stable")].tolist()
    scores = detection_scores(truth, set(ids[found["is_label_issue"].to_numpy()]), ranked)
    scores["model_spec"] = "cleanlab CleanLearning, 5-fold ridge regression on the standardised features"
    scores["seconds"] = round(time.perf_counter() - started, 2)
    return scores


def format_regression_result(r: dict[str, Any]) -> str:
    """A human-readable report of :func:`run_regression_detect_benchmark` (or of the multi-label one,
    :func:`data_engine.bench.detect_multilabel.run_multilabel_detect_benchmark`: the same figures)."""
    errors = "gross value errors" if r.get("task") == "regression" else "tag errors"
    out = [f"bench detect: {r['dataset']} ({r.get('task', 'regression')}), {r['rows']} rows, {r['injected']} {errors} "
           f"injected ({r['noise']:.0%}, seed {r['seed']})"]
    for who in ("engine", "baseline"):
        s = r.get(who)
        if s:
            out.append(f"  {who:8s} flags P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f} "
                       f"({s['flagged']} flagged); first {s['top_k']} of the ranking: F1 {s['top_k_precision']:.3f}"
                       f"  [{s['model_spec']}, {s['seconds']} s]")
    return "\n".join(out)
