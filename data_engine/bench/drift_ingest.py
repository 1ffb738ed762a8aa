"""``bench drift --ingest``: drift as the engine computes it when a batch lands, through ``ingest``.

Each data set is landed in a fresh engine home: a labeled training batch, then ``batches``
unlabeled batches drawn from the held-out rows (same distribution: a flag is a false alarm) and
as many changed ones. Unlabeled, so the training data in force stays the first batch (a labeled
batch would join it). Every batch row gets an id of its own (a row landed twice would be the same
example, not a new one).

* ``breast-cancer`` (scikit-learn's bundled table; 30 numeric columns, plus ``size``, a categorical
  band of the mean radius): a change is one random column in another unit (x100) or 10 % of
  ``size`` set to a category never seen; detected = flagged with that column named.
* ``sentiment`` (the Sentiment Labelled Sentences, when the shared data folder is there; one text
  column): training rows and same-distribution batches from amazon.com reviews, changed batches
  from imdb.com or yelp.com reviews; detected = flagged (a text is no column a test names; the
  domain classifier on the TF-IDF embedding flags it).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.bench.datasets import BenchDataset, load_sentiment_dataset, load_sklearn_table, sentiment_dir
from data_engine.bench.homes import make_home
from data_engine.store.home import Home

SIZE = "size"  # the categorical column added to breast-cancer
NEW_CATEGORY = "unrecorded"


def _breast_cancer() -> BenchDataset:
    data = load_sklearn_table("breast-cancer")
    frame = data.frame.copy()
    frame[SIZE] = pd.qcut(frame["f00"], 3, labels=["small", "medium", "large"]).astype(str)
    return BenchDataset(data.name, "tabular", frame, data.labels, {**data.schema, SIZE: "categorical"})


def _land(home: Home, frame: pd.DataFrame, name: str, start: int, labels: np.ndarray | None = None) -> dict | None:
    """Write ``frame`` (ids from ``start``) to landing/ and ingest it; the batch's ``drift`` object."""
    from data_engine.steps import ingest_step

    out = frame.reset_index(drop=True).copy()
    out.insert(0, "id", [f"r{start + i}" for i in range(len(out))])
    if labels is not None:
        out["label"] = labels
    path = home.landing / f"{name}.parquet"
    out.to_parquet(path, index=False)
    [result] = ingest_step(home, [path])
    return result.drift


def _run_one(data: BenchDataset, train: np.ndarray, same_pool: np.ndarray, changed_pool: np.ndarray,
             batches: int, batch_rows: int, seed: int, *, text: bool) -> dict[str, float]:
    """Detection and false-alarm rates of one data set through ingest (see the module docstring)."""
    rng = np.random.default_rng(seed)
    root = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        home = make_home(root / "home", data, model="linear", n_jobs=1, budget=10)
        _land(home, data.frame.iloc[train], "train", 0, data.labels[train])
        false = detected = 0
        for i in range(batches):
            same = data.frame.iloc[rng.choice(same_pool, batch_rows, replace=False)]
            false += bool(_land(home, same, f"same{i}", 100_000 * (i + 1))["drifted"])
            changed = data.frame.iloc[rng.choice(changed_pool, batch_rows, replace=False)].reset_index(drop=True)
            column = None
            if not text:
                column = str(rng.choice(changed.columns))
                if column == SIZE:
                    changed.loc[: batch_rows // 10 - 1, SIZE] = NEW_CATEGORY
                else:
                    changed[column] = changed[column] * 100
            drift = _land(home, changed, f"changed{i}", 100_000 * (i + 1) + 50_000)
            detected += bool(drift["drifted"]) and (column is None or column in drift["columns"])
        return {"detected": detected / batches, "false": false / batches}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_through_ingest(batches: int, reference_rows: int, batch_rows: int, seed: int) -> dict[str, dict[str, float]]:
    """``{data set: {"detected": rate, "false": rate}}`` through ``ingest`` (sentiment when present)."""
    rng = np.random.default_rng(seed)
    out = {}
    data = _breast_cancer()
    order = rng.permutation(len(data.frame))
    out["breast-cancer"] = _run_one(data, order[:reference_rows], order[reference_rows:], order[reference_rows:],
                                    batches, batch_rows, seed, text=False)
    if sentiment_dir() is not None:
        data = load_sentiment_dataset()
        sites = data.groups
        amazon = rng.permutation(np.flatnonzero(sites == "amazon"))
        others = np.flatnonzero(sites != "amazon")
        out["sentiment"] = _run_one(data, amazon[:reference_rows], amazon[reference_rows:], others,
                                    batches, batch_rows, seed, text=True)
    return out
