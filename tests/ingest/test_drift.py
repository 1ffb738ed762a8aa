"""Drift per batch: a unit change or a new category is flagged and named; same distribution is not."""

import numpy as np
import pandas as pd

from data_engine.ingest.drift import batch_drift


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "height_m": rng.normal(1.7, 0.1, n),
            "weight": rng.normal(70, 10, n),
            "age": rng.integers(18, 80, n),
            "x3": rng.exponential(1.0, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_unit_change_in_one_column_is_flagged_and_named():
    batch = _rows(300, 1)
    batch["height_m"] = batch["height_m"] * 100  # metres -> centimetres
    report = batch_drift(_rows(1000, 0), batch)
    assert report.drifted
    assert report.columns == ["height_m"]
    assert report.auc is not None and report.auc > 0.9


def test_new_category_is_named():
    batch = _rows(300, 2)
    batch.loc[:20, "plan"] = "enterprise"
    report = batch_drift(_rows(1000, 0), batch, with_auc=False)
    assert "plan" in report.columns
    plan = next(c for c in report.per_column if c.column == "plan")
    assert plan.new_categories == ["enterprise"]


def test_same_distribution_batches_rarely_flagged():
    reference = _rows(1000, 0)
    flagged = sum(batch_drift(reference, _rows(300, 100 + i), seed=i).drifted for i in range(20))
    assert flagged <= 1

