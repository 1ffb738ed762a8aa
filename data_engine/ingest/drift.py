"""Drift of a landed batch against the training rows in force.

Per column: numeric columns get the two-sample Kolmogorov-Smirnov test (scipy ``ks_2samp``) and
the Wasserstein distance (scipy ``wasserstein_distance``); categorical columns get a chi-square
test on category frequencies (scipy ``chi2_contingency``) and the categories never seen in training
are named; a 0/1 column of whether each row carries a tag (a set label, one column per tag) gets
Fisher's exact test of the two rates (scipy ``fisher_exact``), its tag named when training never
carried it. Categories are compared in their canonical spelling (``True`` and JSON ``true``, one
instant at two offsets, are one category; :func:`data_engine.store.values.canonical_sql`).

A category never seen in training is drift only when the batch holds more such rows than training
itself predicts: by Good and Turing's estimate (Good 1953, "The population frequencies of species"),
the chance that a new row of the training distribution shows a value never seen is the share of
training rows whose value occurs once; the batch's count of unseen rows is tested against that
binomial rate. A column of fixed codes (no value seen once) is drifted by a single new code; a
column of nearly unique values (timestamps, free codes, ids) is not drifted by its new values. The
column's p-value is the smaller of its two tests, Bonferroni-doubled. The per-column p-values are corrected across columns with Holm's step-down method
(Holm 1979), which is what
keeps the false-alarm rate per batch near ``alpha`` where per-column tests at ``alpha`` without
correction flag a same-distribution batch once in every few batches. Holm's adjustment is the
gate's (:func:`data_engine.tasks.paired.holm`).

On the rows as a whole, a domain classifier (scikit-learn, out-of-fold) tries to tell batch rows
from training rows; its AUC is 0.5 when the batch looks like training and near 1 when it does not
(Lipton et al. 2018, "Detecting and correcting for label shift"; Rabanser et al. 2019, "Failing
loudly").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from data_engine.store.config import DriftConfig
from data_engine.store.values import canonical_sql
from data_engine.tasks.paired import holm


# The thresholds are the ``[drift]`` configuration section (alpha, auc, max_rows).
DriftThresholds = DriftConfig


@dataclass
class ColumnDrift:
    """Drift figures of one column: the test, its raw and Holm-adjusted p-value, a distance."""

    column: str
    kind: str  # "numeric" | "categorical" | "rate" (whether each row carries a tag)
    test: str
    p_value: float
    p_adjusted: float = 1.0
    distance: float | None = None
    new_categories: list[str] = field(default_factory=list)  # for a "rate" column: its tag, when new
    drifted: bool = False


@dataclass
class DriftReport:
    """The drift of one batch: drifted columns named, the domain classifier's AUC, per column."""

    drifted: bool
    columns: list[str]
    auc: float | None
    n_reference: int
    n_batch: int
    per_column: list[ColumnDrift]
    # The domain classifier's out-of-fold probability that a batch row is new, indexed like the
    # batch frame (sampled rows only; None without the classifier).
    row_scores: pd.Series | None = None
    # Numeric identifier columns of the training data (a sequence), neither tested nor read by the
    # domain classifier: new rows take new values by construction.
    identifiers: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The ``drift`` object of ``ingest --json``."""
        return {
            "drifted": self.drifted,
            "columns": self.columns,
            "auc": self.auc,
            "n_reference": self.n_reference,
            "n_batch": self.n_batch,
            "identifiers": self.identifiers,
            "per_column": [
                {
                    "column": c.column,
                    "kind": c.kind,
                    "test": c.test,
                    "p_value": c.p_value,
                    "p_adjusted": c.p_adjusted,
                    "distance": c.distance,
                    "new_categories": c.new_categories,
                    "drifted": c.drifted,
                }
                for c in self.per_column
            ],
        }


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``frame``, drawn at random with ``seed`` (index kept)."""
    return frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame


def _numeric(name: str, ref: pd.Series, new: pd.Series) -> ColumnDrift:
    a, b = ref.dropna().to_numpy(float), new.dropna().to_numpy(float)
    if len(a) == 0 or len(b) == 0:
        return ColumnDrift(name, "numeric", "ks", 1.0)
    p = float(stats.ks_2samp(a, b).pvalue)
    return ColumnDrift(name, "numeric", "ks", p, distance=float(stats.wasserstein_distance(a, b)))


def canonical_spellings(values: pd.Series) -> pd.Series:
    """``values`` (text) in the canonical spelling versions compare categorical cells in, indexed
    like ``values`` (DuckDB evaluates :func:`~data_engine.store.values.canonical_sql` over the
    distinct values)."""
    import duckdb

    distinct = pd.DataFrame({"v": pd.unique(values.to_numpy(dtype=object))})
    if distinct.empty:
        return values
    con = duckdb.connect()
    try:
        con.register("distinct_values", distinct)
        pairs = con.execute(f"SELECT v, {canonical_sql('v')} FROM distinct_values").fetchall()
    finally:
        con.close()
    return values.map(dict(pairs))


def unseen_p_value(ref: pd.Series, new: pd.Series) -> float:
    """One-sided p-value that ``new`` (n_b values) holds more values never seen in ``ref`` (n_r
    values) than a sample of ``ref``'s distribution would: the count of unseen rows against a
    binomial with the Good-Turing probability of an unseen value (the share of ``ref``'s rows whose
    value occurs exactly once; Good 1953). 1.0 when no row is unseen; 0.0 when some are and no
    value of ``ref`` occurs once."""
    unseen = int((~new.isin(set(ref))).sum())
    if unseen == 0:
        return 1.0
    counts = ref.value_counts()
    missing_mass = float((counts == 1).sum()) / max(len(ref), 1)
    return float(stats.binom.sf(unseen - 1, len(new), missing_mass))


def _categorical(name: str, ref: pd.Series, new: pd.Series) -> ColumnDrift:
    a, b = ref.dropna().astype(str), new.dropna().astype(str)
    a, b = canonical_spellings(a), canonical_spellings(b)
    seen = set(a)
    unseen = sorted(set(b) - seen)
    cats = sorted(seen | set(b))
    table = np.array([[int((a == c).sum()) for c in cats], [int((b == c).sum()) for c in cats]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        p = 1.0
    else:
        p = float(stats.chi2_contingency(table).pvalue)
    p = min(1.0, 2 * min(p, unseen_p_value(a, b)))  # frequencies or unseen values, Bonferroni within the column
    # Total variation distance between the two frequency vectors.
    freq = table / table.sum(axis=1, keepdims=True)
    distance = float(0.5 * np.abs(freq[0] - freq[1]).sum()) if table.size else None
    return ColumnDrift(name, "categorical", "chi2", p, distance=distance, new_categories=unseen)


def _rate(name: str, tag: str, ref: pd.Series, new: pd.Series) -> ColumnDrift:
    """Whether each row carries ``tag`` (1/0, missing for an unlabeled row) on both sides: Fisher's
    exact two-sided test of the two rates (scipy ``fisher_exact``; exact at the small counts a rare tag
    has), distance the batch's rate minus training's. A tag training never carried and the batch does is
    named as new (``new_categories``); its p-value is the rate test's, not 0: one row of a rare tag is
    no drift."""
    a, b = ref.dropna().to_numpy(float), new.dropna().to_numpy(float)
    if len(a) == 0 or len(b) == 0:
        return ColumnDrift(name, "rate", "fisher", 1.0)
    ka, kb = int(a.sum()), int(b.sum())
    p = float(stats.fisher_exact([[ka, len(a) - ka], [kb, len(b) - kb]]).pvalue)
    return ColumnDrift(name, "rate", "fisher", min(1.0, p), distance=kb / len(b) - ka / len(a),
                       new_categories=[tag] if ka == 0 and kb > 0 else [])


# Fewer rows than this on either side: no domain classifier (5-fold cross-validation needs them).
MIN_DOMAIN_ROWS = 10


def domain_scores(reference: pd.DataFrame, batch: pd.DataFrame, seed: int = 0) -> np.ndarray | None:
    """Out-of-fold probability, per row, that a row of ``reference`` (n_r rows) then ``batch`` (n_b
    rows) is a batch row; shape (n_r + n_b,).

    Numeric columns as they are, categorical ones one-hot encoded; a histogram gradient-boosting
    classifier (handles missing values) with 5-fold stratified cross-validation. Returns None
    when either side has fewer than 10 rows or there is no column.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from data_engine.tasks.oof import single_threaded

    if len(reference) < MIN_DOMAIN_ROWS or len(batch) < MIN_DOMAIN_ROWS or not len(reference.columns):
        return None
    both = pd.concat([reference, batch], ignore_index=True)
    x = pd.get_dummies(both, dummy_na=False).astype(float).to_numpy()
    y = np.r_[np.zeros(len(reference)), np.ones(len(batch))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    # One OpenMP thread: on a busy machine (a sensor run beside mining or training) the boosting's
    # threads spin waiting for each other; this 5-fold check over a few thousand rows took 3 to 18
    # times longer with two threads than with one (tests/ingest/test_drift.py at load 4-5).
    with single_threaded():
        return cross_val_predict(
            HistGradientBoostingClassifier(max_iter=50, random_state=seed),
            x,
            y,
            cv=folds,
            method="predict_proba",
        )[:, 1]


def numeric_identifiers(reference: pd.DataFrame, columns: list[str]) -> list[str]:
    """The numeric ``columns`` of ``reference`` (rows in stored order, all of them) that are identifiers."""
    from data_engine.ingest.identifiers import identifier_share

    return [c for c in columns if pd.api.types.is_numeric_dtype(reference[c])
            and identifier_share(reference[c], "numeric") is not None]


def batch_drift(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    thresholds: DriftThresholds | None = None,
    *,
    seed: int = 0,
    with_auc: bool = True,
    domain_columns: list[str] | None = None,
    embedding: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    rates: dict[str, str] | None = None,
    identifiers: list[str] | None = None,
) -> DriftReport:
    """Drift of ``batch`` (n_b rows) against ``reference`` (n_r rows, the training data in force).

    Columns compared are those both frames share; numeric dtype means a numeric column. A column
    is drifted when its Holm-adjusted p-value is below ``alpha`` (for a categorical column: its
    frequencies changed, or it holds more values never seen in training than training predicts).
    The batch is drifted when any column is, or the domain classifier's AUC reaches ``thresholds.auc``. The classifier reads ``domain_columns`` (default: every shared column;
    label and prediction columns are tested one by one but are not what the rows look like) and,
    given ``embedding`` (vectors of the reference rows and of the batch rows, indexed like the two
    frames; e.g. text embedded), those vectors too: they are not tested one dimension at a time.
    ``rates`` (column -> tag name): 1/0 columns of whether each row carries a tag, tested as two rates
    (:func:`_rate`, kind ``"rate"``) and the tag named when training never carried it. A numeric
    column that is an identifier (``identifiers``; default: those of ``reference`` in its order, by
    :func:`~data_engine.ingest.identifiers.identifier_share`) is left out and named in the report.
    Raises ValueError when the frames share no column and there is no ``embedding``.
    """
    t = thresholds or DriftThresholds()
    shared = [c for c in reference.columns if c in batch.columns]
    if identifiers is None:
        identifiers = numeric_identifiers(reference, shared)
    identifiers = [c for c in identifiers if c in shared]
    shared = [c for c in shared if c not in identifiers]
    if not shared and embedding is None:
        raise ValueError("drift: the batch shares no column with the training data")
    ref = sample_rows(reference[shared], t.max_rows, seed)
    new = sample_rows(batch[shared], t.max_rows, seed)
    rates = rates or {}
    per_column = [
        _rate(c, rates[c], ref[c], new[c]) if c in rates
        else _numeric(c, ref[c], new[c])
        if pd.api.types.is_numeric_dtype(ref[c]) and pd.api.types.is_numeric_dtype(new[c])
        else _categorical(c, ref[c], new[c])
        for c in shared
    ]
    for c, adjusted in zip(per_column, holm([c.p_value for c in per_column])):
        c.p_adjusted = adjusted
        c.drifted = adjusted < t.alpha
    auc = row_scores = None
    if with_auc:
        looks = [c for c in (shared if domain_columns is None else domain_columns) if c in shared]
        x_ref, x_new = ref[looks], new[looks]
        if embedding is not None:
            x_ref = pd.concat([x_ref, embedding[0].loc[ref.index]], axis=1)
            x_new = pd.concat([x_new, embedding[1].loc[new.index]], axis=1)
        scores = domain_scores(x_ref, x_new, seed)
        if scores is not None:
            from sklearn.metrics import roc_auc_score

            auc = float(roc_auc_score(np.r_[np.zeros(len(ref)), np.ones(len(new))], scores))
            row_scores = pd.Series(scores[len(ref):], index=new.index)
    names = [c.column for c in per_column if c.drifted]
    drifted = bool(names) or (auc is not None and auc >= t.auc)
    return DriftReport(drifted, names, auc, len(reference), len(batch), per_column, row_scores, identifiers)


def uncorrected_ks_flags(reference: pd.DataFrame, batch: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """The obvious baseline: columns whose per-column test has p < ``alpha`` with no correction."""
    report = batch_drift(reference, batch, DriftThresholds(alpha=alpha), with_auc=False)
    return [c.column for c in report.per_column if c.p_value < alpha]
