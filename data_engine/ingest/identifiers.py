"""Identifier columns: a value in (nearly) every row of its own, which names the row rather than
describing it (a row number, a sequence, a uuid).

Mining names them as dataset issues (:mod:`data_engine.mine.columns`); the drift check leaves
numeric ones out (:mod:`data_engine.ingest.drift`), since a sequence takes new values in every new
batch by construction: compared as a feature, it made every same-distribution batch drift and
saturated the domain classifier (AUC 1.00) for real changes too.

Written by hand: scikit-learn and cleanlab have no identifier test (cleanlab's
``identifier_column`` check is not reachable from Datalab, issue 24).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

# Share of distinct values (among non-missing values) that makes a column an identifier.
IDENTIFIER_UNIQUE = 0.99
# Share of equal gaps between sorted values that makes a unique numeric column a sequence.
EVEN_GAPS = 0.9
# An integer column counts as a sequence (ids issued as rows arrive) when its values are dense, at
# most DENSE_SPAN numbers of its range per value (ids of one table, some issued to other rows), or
# in the rows' order (|Spearman's rho| with the row position at least IN_ROW_ORDER). An integer
# amount (income in cents) is as distinct per row, but neither: a trial's was called an identifier
# and "drop it".
DENSE_SPAN = 4.0
IN_ROW_ORDER = 0.9
# Fewer non-missing values than this: no identifier judged.
MIN_VALUES = 30


def identifier_share(values: pd.Series, kind: str) -> float | None:
    """The share of distinct values of ``values`` (one column, N rows in stored order) when it looks
    like an identifier, else None.

    Numeric: nearly all distinct (:data:`IDENTIFIER_UNIQUE`) and either evenly spaced
    (:data:`EVEN_GAPS` of the gaps between sorted values equal: a row number) or integer-valued and
    a sequence with gaps: dense (its range at most :data:`DENSE_SPAN` times its count) or in the
    rows' order (|Spearman rho| with the row position at least :data:`IN_ROW_ORDER`). Pass the whole
    column: a random sample of a sequence is neither dense nor evenly spaced. Categorical or text: nearly all distinct and no value contains a space
    (free text is distinct per row too, but it is prose, not a code).
    """
    present = values.dropna()
    if len(present) < MIN_VALUES:
        return None
    share = present.nunique() / len(present)
    if share < IDENTIFIER_UNIQUE:
        return None
    if kind == "numeric":
        x = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            return None
        gaps = np.diff(np.sort(x))
        even = len(gaps) > 0 and np.mean(np.isclose(gaps, np.median(gaps), rtol=1e-6, atol=0)) >= EVEN_GAPS
        if even:
            return float(share)
        if not np.all(x == np.round(x)):
            return None
        dense = (x.max() - x.min() + 1) <= DENSE_SPAN * len(x)
        return float(share) if dense or abs(stats.spearmanr(x, np.arange(len(x)))[0]) >= IN_ROW_ORDER else None
    text = present.astype(str)
    return float(share) if not text.str.contains(r"\s").any() else None
