"""Storing a mining run (``mining_runs``, ``issues``, ``review_queue``) and reading runs back: which
examples are excluded from the queue and which may get a second opinion."""

from __future__ import annotations

import json
from datetime import datetime
from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.mine.detectors import DetectorResult
from data_engine.mine.predictions import PredictionState
from data_engine.positions import positions_of
from data_engine.store.warehouse import FINISHED_TASK_STATUSES, transaction

# Sources of label events that mean a person has looked at the example. A person's bulk rule
# (`discard`/`relabel --where`) decides the examples it names as a review does (it ranks with
# `review` in `current_labels`), so mining does not queue them again for the same content.
REVIEW_SOURCES = ("review", "consensus", "vote", "rule")
# Rows of the issues table handed to DuckDB per INSERT (:func:`insert_issues`).
ISSUE_BATCH_ROWS = 100_000


def issues_table(results: dict[str, DetectorResult], state: PredictionState) -> pd.DataFrame:
    """All detectors' per-example rows in one frame with ``issue_type`` and ``example_version``."""
    parts = []
    for name, result in results.items():
        if len(result.issues):
            parts.append(result.issues.assign(issue_type=name))
    if not parts:
        return pd.DataFrame(columns=["example_id", "example_version", "issue_type", "score", "is_issue", "reason",
                                     "detail"])
    issues = pd.concat(parts, ignore_index=True)
    del parts
    issues["example_version"] = example_versions(issues["example_id"], state)
    return issues


def example_versions(example_ids: pd.Series, state: PredictionState) -> pd.api.extensions.ExtensionArray:
    """The current version of each of ``example_ids`` (shape (M,), nullable Int64; NA for an id
    that is neither a training nor an unlabeled row of ``state``).

    Looked up by :func:`data_engine.positions.positions_of` (pyarrow's hash join of the ids' Arrow
    strings): ``Series.map`` on the frames' ids made a Python string of every example and a hash
    table of them (about +150 MiB at a million rows, docs/mining.md) while the issues table was held.
    """
    where = positions_of(example_ids, state.train["example_id"], state.unlabeled["example_id"])
    versions = pd.concat([state.train["version"], state.unlabeled["version"]], ignore_index=True).astype("Int64")
    return versions.array.take(where, allow_fill=True)


def example_info(state: PredictionState, ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Per example: version, given label (None if unlabeled), suggested label and its score (the
    task's :meth:`~data_engine.tasks.Task.best`: for classes the most probable one and its probability).

    ``ids``: only the rows of these examples (training rows, then unlabeled ones, in the state's
    order), with the same values: what a queue shows, not a label string per row of the table (a frame
    of about 50 MB at a million rows and its copy in the queue's lookup, docs/mining.md)."""
    task = state.task
    example_ids = pd.concat([state.train["example_id"], state.unlabeled["example_id"]], ignore_index=True)
    versions = pd.concat([state.train["version"], state.unlabeled["version"]], ignore_index=True)
    if ids is None:
        probs = np.vstack([state.oof_probs, state.unlabeled_probs]) if len(state.unlabeled) else state.oof_probs
        labels, n_unlabeled = state.labels, len(state.unlabeled)
    else:
        rows = np.flatnonzero(example_ids.isin(ids).to_numpy())
        train_rows, unlabeled_rows = rows[rows < len(state.train)], rows[rows >= len(state.train)] - len(state.train)
        probs = np.vstack([state.oof_probs[train_rows], state.unlabeled_probs[unlabeled_rows]])
        labels, n_unlabeled = state.labels[train_rows], len(unlabeled_rows)
        example_ids, versions = example_ids.iloc[rows].reset_index(drop=True), versions.iloc[rows].reset_index(drop=True)
    has = np.isfinite(probs).all(axis=1)
    names = np.full(len(probs), None, dtype=object)
    scores = np.full(len(probs), np.nan)
    # Every row has predictions in a run without unlabeled rows: the array itself, not a copy of it
    # (80 MB at a million rows and ten classes); the same values.
    found, score = task.best(probs if has.all() else probs[has], state.classes)
    names[has], scores[has] = np.asarray(found, dtype=object), score
    given = np.concatenate([np.asarray(task.decode(labels, state.classes), dtype=object),
                            np.full(n_unlabeled, None, dtype=object)])
    return pd.DataFrame({
        "example_id": example_ids,
        "example_version": versions,
        "given_label": given,
        "suggested_label": names,
        "suggested_score": scores,
    })


def excluded_examples(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Examples not to queue: waiting for review, or reviewed at their current version since the
    last ingested label (a newer ingest event re-opens an example)."""
    waiting = [r[0] for r in con.execute(
        "SELECT DISTINCT example_id FROM review_tasks WHERE status NOT IN (SELECT unnest(?::VARCHAR[]))",
        [list(FINISHED_TASK_STATUSES)],
    ).fetchall()]
    reviewed = [r[0] for r in con.execute(
        "SELECT DISTINCT r.example_id FROM label_events r "
        "JOIN current_examples ce ON ce.example_id = r.example_id AND r.example_version = ce.version "
        "WHERE list_contains(?::VARCHAR[], r.source) AND NOT EXISTS ("
        "  SELECT 1 FROM label_events i WHERE i.example_id = r.example_id AND i.source = 'ingest' "
        "  AND i.event_id > r.event_id AND (i.example_version IS NULL OR i.example_version = ce.version))",
        [list(REVIEW_SOURCES)],
    ).fetchall()]
    return sorted(set(waiting) | set(reviewed))


def second_opinion_candidates(con: duckdb.DuckDBPyConnection, max_opinions: int,
                              sources: tuple[str, ...] = ("review",)) -> set[str]:
    """Reviewed examples that may be reviewed once more, if the model contradicts their label.

    Reviewers make mistakes (the simulated one in 2 % of answers), and a wrong answer is final
    unless someone looks again: after the demo's loop 8 of its 12 remaining label errors were
    reviewers' slips. Eligible: the label in force came from one reviewer (``review``, not a
    consensus of several), fewer than ``max_opinions`` tasks of the current content version were
    sent, and none is still open. Mining queues them only when the label detector flags them.
    ``sources``: label sources eligible (ActiveLab passes the consensus of several annotators too).
    """
    if max_opinions <= 1:
        return set()
    return {r[0] for r in con.execute(
        "SELECT cl.example_id FROM current_labels cl "
        "JOIN current_examples ce ON ce.example_id = cl.example_id "
        "LEFT JOIN (SELECT example_id, example_version, count(*) AS opinions, "
        "           count(*) FILTER (WHERE status NOT IN (SELECT unnest(?::VARCHAR[]))) AS unfinished "
        "           FROM review_tasks GROUP BY ALL) t "
        "  ON t.example_id = cl.example_id AND t.example_version = ce.version "
        "WHERE cl.source IN (SELECT unnest(?::VARCHAR[])) AND NOT cl.is_discarded "
        "AND coalesce(t.opinions, 0) < ? AND coalesce(t.unfinished, 0) = 0",
        [list(FINISHED_TASK_STATUSES), list(sources), int(max_opinions)],
    ).fetchall()}


def store_run(con: duckdb.DuckDBPyConnection, state: PredictionState, issues: pd.DataFrame, queue: pd.DataFrame,
              results: dict[str, DetectorResult], *, noise_rate: float | None, started: datetime,
              timings: dict[str, float], budget_split: dict[str, Any] | None = None,
              dataset_issues: list[dict[str, Any]] | None = None, slices: Any = None) -> int:
    """Write ``mining_runs``, ``issues`` (every label row, flagged rows of other types),
    ``review_queue`` and ``discovered_slices`` in one transaction; return the run id.
    ``dataset_issues``: the findings about input columns (:func:`data_engine.mine.columns.column_issues`),
    kept in the run's summary; ``slices``: the run's :class:`data_engine.mine.slices.SliceReport`."""
    counts = {name: r.n_issues for name, r in results.items()}
    summary = {name: r.summary for name, r in results.items()}
    summary["rare_classes"] = [state.classes[i] for i in state.rare_classes]
    summary["ensemble_weights"] = state.member_weights
    summary["budget_split"] = budget_split or {}
    # The embedder the run actually used (``[mining] embedding`` resolved for this data set).
    summary["embedding"] = state.embedding
    summary["dataset_issues"] = dataset_issues or []
    found = list(slices.slices) if slices is not None else []
    summary["slices"] = [x.record() for x in found]
    if "selection" not in queue:
        queue = queue.assign(selection=None)
    with transaction(con, _mined_queue=queue.astype({"issue_types": object})):
        run_id = int(con.execute("SELECT nextval('mining_run_seq')").fetchall()[0][0])
        con.execute(
            "INSERT INTO mining_runs (run_id, started_at, finished_at, label_snapshot, model_spec, counts, timings, "
            "noise_rate, reused_predictions, n_labeled, n_unlabeled, summary, example_versions) "
            "VALUES (?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT count(*) FROM examples))",
            [run_id, started, state.label_snapshot, state.model_spec, json.dumps(counts),
             json.dumps({k: round(v, 4) for k, v in timings.items()}), noise_rate, state.reused,
             len(state.train), len(state.unlabeled), json.dumps(summary, default=_json_default)],
        )
        insert_issues(con, run_id, issues)
        con.execute(
            "INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
            "suggested_label, suggested_score, given_label, scores, selection) SELECT ?, rank, example_id, "
            "example_version, CAST(issue_types AS VARCHAR[]), priority, suggested_label, suggested_score, given_label, "
            "CAST(scores AS JSON), selection FROM _mined_queue", [run_id],
        )
        if found:
            rows = [x.row() for x in found]
            con.executemany(
                "INSERT INTO discovered_slices (run_id, name, definition, n, accuracy, rest_accuracy, p_value, source, "
                "conditions, embedding, centroids, cluster, rule_precision, rule_coverage) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[run_id, r["name"], r["definition"], r["n"], r["accuracy"], r["rest_accuracy"], r["p_value"],
                  r["source"], r["conditions"], r["embedding"], r["centroids"], r["cluster"], r["rule_precision"],
                  r["rule_coverage"]] for r in rows])
    return run_id


def insert_issues(con: duckdb.DuckDBPyConnection, run_id: int, issues: pd.DataFrame, *,
                  batch_rows: int = ISSUE_BATCH_ROWS) -> None:
    """Insert into ``issues`` every label row of ``issues`` (the frame of :func:`issues_table`) and
    the flagged rows of other types, as run ``run_id``, in the caller's transaction.

    The frame goes to DuckDB ``batch_rows`` rows at a time (its row order kept), each slice
    registered alone: DuckDB's scan of the whole registered frame, with its million label rows'
    JSON details, held about 140 MiB over the store stage's start at a million rows
    (docs/mining.md); a slice's scan holds one slice's. The rows kept are picked by DuckDB's
    ``WHERE`` as it inserts, since a pandas mask copied them first. Raises ``ValueError`` for a
    ``batch_rows`` below 1.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    rows = issues[["example_id", "example_version", "issue_type", "score", "is_issue", "reason", "detail"]]
    for start in range(0, len(rows), batch_rows):
        con.register("_mined_issues", rows.iloc[start:start + batch_rows])
        try:
            con.execute(
                "INSERT INTO issues (run_id, example_id, example_version, issue_type, score, is_issue, reason, detail) "
                "SELECT ?, example_id, example_version, issue_type, score, is_issue, reason, CAST(detail AS JSON) "
                "FROM _mined_issues WHERE issue_type = 'label' OR CAST(is_issue AS BOOLEAN)", [int(run_id)],
            )
        finally:
            con.unregister("_mined_issues")


def latest_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest row of ``mining_runs`` as a dict, or None before the first run."""
    df = con.execute("SELECT * FROM mining_runs ORDER BY run_id DESC LIMIT 1").fetchdf()
    return None if df.empty else df.iloc[0].to_dict()


def runs_after(con: duckdb.DuckDBPyConnection, run_id: int) -> list[tuple[int, Any, Any]]:
    """``(run_id, started_at, finished_at)`` of the mining runs after ``run_id``, oldest first."""
    return [(int(r[0]), r[1], r[2]) for r in con.execute(
        "SELECT run_id, started_at, finished_at FROM mining_runs WHERE run_id > ? ORDER BY run_id",
        [int(run_id)]).fetchall()]


def stored_run(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any]:
    """A stored mining run as the plain record a run reports
    (:meth:`data_engine.mine.run.MiningSummary.as_metadata`'s keys), JSON columns parsed.

    Raises KeyError when no run ``run_id`` is stored."""
    names = ("run_id", "label_snapshot", "model_spec", "counts", "timings", "noise_rate", "reused_predictions",
             "n_labeled", "n_unlabeled", "summary")
    found = con.execute(f"SELECT {', '.join(names)} FROM mining_runs WHERE run_id = ?", [int(run_id)]).fetchone()
    if found is None:
        raise KeyError(f"no mining run {run_id}")
    row = dict(zip(names, found))
    summary = json.loads(row.pop("summary") or "{}")
    size = con.execute("SELECT count(*) FROM review_queue WHERE run_id = ?", [int(run_id)]).fetchone()[0]
    return {**row, "counts": json.loads(row["counts"] or "{}"), "timings": json.loads(row["timings"] or "{}"),
            "class_imbalance": summary.get("class_imbalance") or {}, "rare_classes": summary.get("rare_classes") or [],
            "budget_split": summary.get("budget_split") or {}, "queue_size": int(size),
            "dataset_issues": summary.get("dataset_issues") or [], "slices": summary.get("slices") or []}


def stored_queue_top(con: duckdb.DuckDBPyConnection, run_id: int, rows: int) -> list[dict[str, Any]]:
    """The first ``rows`` rows of a stored review queue, by rank (the columns of
    :attr:`data_engine.mine.run.MiningSummary.queue_top`)."""
    names = ("rank", "example_id", "issue_types", "priority", "given_label", "suggested_label")
    return [dict(zip(names, r)) for r in con.execute(
        f"SELECT {', '.join(names)} FROM review_queue WHERE run_id = ? ORDER BY rank LIMIT ?",
        [int(run_id), int(rows)]).fetchall()]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def reviewed_examples(con: duckdb.DuckDBPyConnection, input_columns: list[str]) -> pd.DataFrame:
    """Examples whose label in force is a person's verdict (review or consensus) on their current
    version: ``example_id``, ``feature_hash``, ``is_discarded``, ``label`` (None if discarded),
    ``given_label`` (the latest ingested label) and the ``input_columns`` (image files as absolute
paths, as :func:`data_engine.store.dataset.load_examples` gives them). What the look-alike
    detector learns from; a propagated verdict never counts as one."""
    from data_engine.store.warehouse import quote_ident

    from data_engine.store.images import absolute_image_paths, warehouse_home
    from data_engine.store.schema import stored_columns

    cols = "".join(f", ce.{quote_ident(c)}" for c in input_columns)
    frame = con.execute(
        "SELECT cl.example_id, CAST(ce.feature_hash AS VARCHAR) AS feature_hash, cl.is_discarded, cl.label, "
        f"g.label AS given_label{cols} FROM current_labels cl JOIN current_examples ce USING (example_id) "
        "LEFT JOIN (SELECT example_id, example_version, label FROM label_events WHERE source = 'ingest' "
        "           QUALIFY row_number() OVER (PARTITION BY example_id, example_version ORDER BY event_id DESC) = 1) g "
        "  ON g.example_id = ce.example_id AND g.example_version = ce.version "
        "WHERE cl.source IN ('review', 'consensus') ORDER BY cl.example_id"
    ).fetchdf()
    kinds = stored_columns(con)
    for c in input_columns:
        if kinds.get(c) == "image":  # read like the mined rows: the stored home-relative path made absolute
            frame[c] = absolute_image_paths(frame[c], warehouse_home(con))
    return frame
