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



def _stamped(n: int, seed: int, start: str) -> pd.DataFrame:
    """``_rows`` with a timestamp per row (unique, as a tasting or an order time is) and a yes/no
    column as pandas writes it."""
    rows = _rows(n, seed)
    rows["tasted"] = (pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n) * 7, unit="min")).astype(str)
    rows["organic"] = np.where(np.random.default_rng(seed).random(n) < 0.3, "True", "False")
    return rows


def test_new_values_of_a_nearly_unique_column_are_not_drift():
    # Every timestamp of a batch is new; training predicts that (each of its own occurs once), so a
    # batch of the same distribution is not drifted by them (before: every batch was, naming 'tasted').
    reference = _stamped(1000, 0, "2024-03-01")
    flagged = [batch_drift(reference, _stamped(300, 100 + i, "2024-04-01"), seed=i, with_auc=False)
               for i in range(10)]
    assert sum(r.drifted for r in flagged) <= 1
    tasted = next(c for c in flagged[0].per_column if c.column == "tasted")
    assert len(tasted.new_categories) == 300 and not tasted.drifted  # still named, not drift


def test_one_value_spelled_by_another_tool_is_not_a_new_category():
    batch = _stamped(300, 3, "2024-03-01")
    batch["organic"] = batch["organic"].str.lower()  # JSON's true/false for pandas' True/False
    report = batch_drift(_stamped(1000, 0, "2024-03-01"), batch, with_auc=False)
    organic = next(c for c in report.per_column if c.column == "organic")
    assert organic.new_categories == [] and not organic.drifted


def test_a_new_code_among_fixed_codes_is_drift_even_in_few_rows():
    # No code of 'plan' occurs once in training: one row with an unseen code is more than it predicts.
    batch = _rows(300, 4)
    batch.loc[:2, "plan"] = "enterprise"
    report = batch_drift(_rows(1000, 0), batch, with_auc=False)
    assert report.columns == ["plan"]


def test_an_issued_id_sequence_is_not_compared_and_does_not_drift_every_batch():
    """A trial's sequential application number drifted all five same-distribution batches (KS, AUC
    1.00 for every batch, real changes included); a sequence is named and left out."""
    reference = _rows(1000, 0).assign(app_id=np.arange(100_000, 101_000))
    batches = [_rows(300, 100 + i).assign(app_id=np.arange(101_000 + 300 * i, 101_300 + 300 * i)) for i in range(5)]
    reports = [batch_drift(reference, b, seed=i) for i, b in enumerate(batches)]
    assert [r.identifiers for r in reports] == [["app_id"]] * 5
    assert sum(r.drifted for r in reports) <= 1 and all(r.auc < 0.7 for r in reports)
    assert "app_id" not in [c.column for c in reports[0].per_column]
    assert reports[0].to_json()["identifiers"] == ["app_id"]
    moved = batches[0].assign(height_m=batches[0]["height_m"] * 100)
    changed = batch_drift(reference, moved)
    assert changed.columns == ["height_m"] and changed.auc > 0.9
    # An integer amount in random order is a feature: compared as one.
    amounts = _rows(1000, 0).assign(cents=np.random.default_rng(5).integers(2_000_000, 20_000_000, 1000))
    assert batch_drift(amounts, amounts.iloc[:300], with_auc=False).identifiers == []


def test_the_domain_classifier_fits_on_one_native_thread(monkeypatch):
    # Two OpenMP threads on a busy two-core machine made this check 3-18 times slower (spinning threads).
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info, threadpool_limits

    seen: list[int] = []
    fit = HistGradientBoostingClassifier.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording_fit)
    batch = _rows(300, 1)
    batch["height_m"] = batch["height_m"] * 100
    with threadpool_limits(limits=2, user_api="openmp"):  # as on a machine with no cap set (make test sets one)
        assert batch_drift(_rows(1000, 0), batch).drifted
    assert seen and set(seen) == {1}, seen
