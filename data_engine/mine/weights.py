"""The queue's weights learned from verdicts: how often reviewers confirmed each issue type.

Mining reads the reviewers' verdicts (``review_verdicts``, second opinions left out) and scales
``[review] weights`` by the smoothed confirmation rate, so a detector reviewers mostly reject gets
fewer examples reviewed.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from data_engine.store.config import EngineConfig
from data_engine.mine.second_opinions import SECOND_OPINION

# effective_weights: a Beta prior worth this many reviewed examples at a 50% confirmation rate,
# so a handful of verdicts nudges a weight and hundreds decide it.
PRIOR_VERDICTS = 20.0


PRIOR_RATE = 0.5


# The smallest share of its configured weight an issue type keeps, so a detector reviewers
# mostly reject still gets an occasional example reviewed (and can earn its weight back).
MIN_WEIGHT_FACTOR = 0.1


MAX_WEIGHT_FACTOR = 2.0


def confirmation_rates(con: duckdb.DuckDBPyConnection, issue_types: Iterable[str]) -> dict[str, float]:
    """Smoothed share of flagged examples reviewers confirmed, per issue type, over all runs.

    With ``c`` confirmed among ``n`` reviewed the rate is
    ``(c + PRIOR_VERDICTS * PRIOR_RATE) / (n + PRIOR_VERDICTS)`` (a Beta prior): PRIOR_RATE
    before any verdict, the measured share after hundreds. Verdicts of second opinions
    (:mod:`data_engine.mine.second_opinions`) are left out.
    """
    # Second opinions measure the reviewers, not the detectors: their verdicts stay out.
    totals: dict[str, tuple[int, int]] = {r[0]: (int(r[1]), int(r[2])) for r in con.execute(
        "SELECT issue_type, count(*) FILTER (WHERE outcome = 'confirmed'), count(*) FROM ("
        "  SELECT v.outcome, unnest(v.issue_types) AS issue_type FROM review_verdicts v "
        "  WHERE NOT EXISTS (SELECT 1 FROM review_queue q WHERE q.run_id = v.run_id "
        "                    AND q.example_id = v.example_id AND q.selection = ?)) "
        "GROUP BY issue_type", [SECOND_OPINION]).fetchall()}
    out = {}
    for issue_type in issue_types:
        confirmed, reviewed = totals.get(issue_type, (0, 0))
        out[issue_type] = (confirmed + PRIOR_VERDICTS * PRIOR_RATE) / (reviewed + PRIOR_VERDICTS)
    return out


def effective_weights(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> dict[str, float]:
    """The queue's weight per issue type: ``review.weights`` scaled by how often reviewers confirm it.

    The weight is the configured one times ``rate / PRIOR_RATE`` (:func:`confirmation_rates`),
    clipped to [MIN_WEIGHT_FACTOR, MAX_WEIGHT_FACTOR] times it. Without verdicts the configured
    weights come back unchanged.
    """
    weights = dict(cfg.review.weights)
    rates = confirmation_rates(con, weights)
    return {t: round(base * min(max(rates[t] / PRIOR_RATE, MIN_WEIGHT_FACTOR), MAX_WEIGHT_FACTOR), 4)
            for t, base in weights.items()}
