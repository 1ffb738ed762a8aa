"""When to retrain: a new candidate is trained when there is no model yet, when enough reviewed labels
or a labeled batch arrived since the last model's label snapshot, or when a drifted batch's
new-looking rows are all labeled (:func:`retrain_decision`; a sensor turns a yes into a run request)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_engine.ship.registry import latest_model
from data_engine.store.config import EngineConfig


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to train a new candidate now, and why (a sensor turns it into a run request)."""

    retrain: bool
    reason: str
    new_labels: int
    new_batches: int
    last_snapshot: int
    label_snapshot: int

    @property
    def run_key(self) -> str:
        """Idempotency key: one training per label snapshot and batch count."""
        return f"retrain-{self.label_snapshot}-{self.new_batches}"


def retrain_decision(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> RetrainDecision:
    """Should a new candidate be trained? Yes when there is no model yet and labeled data exists,
    when at least ``[retrain] min_new_labels`` reviewed labels arrived since the last model's label
    snapshot, when a labeled (non-gold) batch arrived after that snapshot, or when the new-looking
    rows of a drifted batch are all labeled, by reviews the last model has not seen
    (:func:`drifted_batches_labeled`): its gate then re-evaluates the champion against a candidate
    that learned the new distribution, however few those rows are."""
    from data_engine.store.dataset import label_snapshot

    snapshot = label_snapshot(con)
    last = latest_model(con)
    if last is None:
        labeled = con.execute(
            "SELECT count(*) FROM current_labels cl JOIN current_examples ce USING (example_id) "
            "WHERE cl.label IS NOT NULL AND NOT ce.is_gold"
        ).fetchall()[0][0]
        if labeled == 0:
            return RetrainDecision(False, "no labeled training data yet (gold data is for evaluation only)",
                                   0, 0, 0, snapshot)
        return RetrainDecision(True, f"no model yet; {labeled} labeled examples", int(labeled), 0, 0, snapshot)
    new_labels = int(con.execute(
        "SELECT count(*) FROM label_events WHERE event_id > ? AND source IN ('review', 'consensus')",
        [last.label_snapshot],
    ).fetchone()[0])
    # Batches whose labels the last model did not see, by label snapshot rather than by clock: a
    # batch ingested while that model was training is still new to it.
    new_batches = int(con.execute(
        "SELECT count(DISTINCT e.batch_id) FROM label_events le JOIN examples e "
        "ON e.example_id = le.example_id AND (le.example_version IS NULL OR e.version = le.example_version) "
        "WHERE le.event_id > ? AND le.source = 'ingest' AND le.label IS NOT NULL AND NOT e.is_gold",
        [last.label_snapshot],
    ).fetchall()[0][0])
    need = cfg.retrain.min_new_labels
    if new_batches:
        reason = f"{new_batches} new labeled batch(es) since model v{last.version}"
        return RetrainDecision(True, reason, new_labels, new_batches, last.label_snapshot, snapshot)
    drifted = drifted_batches_labeled(con, last.label_snapshot)
    if drifted:
        batch_id, rows, reviewed = drifted[0]
        reason = (f"drifted batch {batch_id}: its {rows} new-looking row(s) are labeled ({reviewed} by review since "
                  f"model v{last.version}); a candidate that learned them re-evaluates the champion on gold")
        return RetrainDecision(True, reason, new_labels, 0, last.label_snapshot, snapshot)
    if new_labels >= need:
        reason = f"{new_labels} new reviewed labels since model v{last.version} (retrain.min_new_labels = {need})"
        return RetrainDecision(True, reason, new_labels, 0, last.label_snapshot, snapshot)
    reason = f"{new_labels} new reviewed labels since model v{last.version}; waiting for {need}"
    return RetrainDecision(False, reason, new_labels, 0, last.label_snapshot, snapshot)


def drifted_batches_labeled(con: duckdb.DuckDBPyConnection, since_snapshot: int) -> list[tuple[str, int, int]]:
    """The drifted batches whose new-looking rows (the ``drift`` detector's: a stored domain-classifier
    score of at least :data:`~data_engine.mine.detectors.drift.NEW_LOOKING`) all have a label in force
    or were discarded, at least one of them by a review after label event ``since_snapshot``: the
    distribution a champion never saw is labeled now, so it is re-evaluated once (the next model's
    snapshot is past those reviews). Rows ``(batch_id, new-looking rows, reviewed since)``, oldest
    batch first."""
    from data_engine.mine.detectors.drift import NEW_LOOKING

    return [(str(b), int(n), int(r)) for b, n, r in con.execute(
        "SELECT dr.batch_id, count(*) AS n, "
        "       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM label_events le WHERE le.example_id = dr.example_id "
        "           AND le.event_id > ? AND le.source IN ('review', 'consensus'))) AS reviewed "
        "FROM drift_rows dr JOIN batch_drift bd USING (batch_id) "
        "LEFT JOIN current_labels cl ON cl.example_id = dr.example_id "
        "WHERE bd.drifted AND dr.score >= ? "
        "GROUP BY dr.batch_id, bd.checked_at "
        "HAVING bool_and(cl.example_id IS NOT NULL) AND reviewed > 0 "
        "ORDER BY bd.checked_at, dr.batch_id",
        [since_snapshot, NEW_LOOKING]).fetchall()]
