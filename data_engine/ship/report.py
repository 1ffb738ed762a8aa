"""``data-engine report``: what the user's own rounds bought, and what more would buy.

One row per champion (each promoted model, in order): the reviews spent up to the label snapshot
it was trained on, how many of them changed a label, and its gold figure as the gate measured it
(the gate's metric: accuracy for classes, MAE for numbers, micro-F1 for tags, with the task's other
metrics beside it). Then the comparison of the two ways forward, on the user's own data:

* a better model: the best served-model candidate by out-of-fold score on the labels in force
  beside the served one (both from the newest model's recorded choice,
  :mod:`data_engine.mine.candidates`);
* more review: the change of the gold figure per review so far (first champion to the newest) and the
  label errors the newest mining run estimates are left (cleanlab's estimated noise rate times the
  labels it saw), with the share of reviews so far that corrected a label.

Read-only and fast: it fits nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import duckdb

from data_engine.mine.candidates import ServedChoice
from data_engine.ship.registry import ModelRecord, current_champion, get_model, latest_model
from data_engine.store.dataset import label_snapshot

if TYPE_CHECKING:
    from data_engine.tasks import Task

REVIEW_SOURCES = ("review", "consensus")


@dataclass(frozen=True)
class ChampionRow:
    """One champion: reviews and corrections in the ledger up to its label snapshot, its gold figures
    (``gold_score``: the gate's metric; ``gold``: every figure of the task's metrics; ``gold_accuracy``
    kept for classes, None for a task without accuracy)."""

    version: int
    label_snapshot: int
    served: str | None
    reviews: int
    corrections: int
    gold_accuracy: float | None
    n_gold: int | None
    gold_score: float | None = None
    gold: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """The report's figures (fractions in [0, 1]; None where there is nothing to measure yet)."""

    rows: list[ChampionRow]
    reviews_total: int
    corrections_total: int
    served: str | None
    served_score: float | None
    best_candidate: str | None
    best_score: float | None
    metric: str | None
    model_gain: float | None
    gain_per_review: float | None
    remaining_errors: int | None
    remaining_errors_snapshot: int | None
    labels_now: int
    notes: list[str] = field(default_factory=list)
    # The gold figure of the rows and the per-review change; whether larger is better.
    gold_metric: str = "accuracy"
    higher_is_better: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def _reviews_up_to(con: duckdb.DuckDBPyConnection, snapshot: int | None) -> tuple[int, int]:
    """(reviews, corrections) in the ledger with ``event_id <= snapshot`` (all when None).

    A correction is a review whose label differs from the one in force before it (a discard counts).
    """
    row = con.execute(
        "WITH ev AS (SELECT event_id, source, label, lag(label) OVER (PARTITION BY example_id ORDER BY event_id) "
        "AS before FROM label_events) SELECT count(*), count(*) FILTER (WHERE label IS DISTINCT FROM before) "
        "FROM ev WHERE source IN (SELECT unnest(?::VARCHAR[])) AND (? IS NULL OR event_id <= ?)",
        [list(REVIEW_SOURCES), snapshot, snapshot]).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def _champions(con: duckdb.DuckDBPyConnection) -> list[ModelRecord]:
    """Every model ever promoted, in the order of their first promotion."""
    from data_engine.ship.deploy import history

    promoted = dict.fromkeys(d.model_version for d in history(con) if d.action == "promote")
    return [get_model(con, v) for v in promoted]


def gold_figures(metrics: Mapping[str, Any] | None, names: tuple[str, ...]) -> dict[str, float | None]:
    """The figures ``names`` (the task's metrics, the gate's first) of a model's recorded gold
    ``metrics``, None where one was not measured."""
    metrics = metrics or {}
    return {n: None if metrics.get(n) is None else float(metrics[n]) for n in names}


def gold_text(figures: Mapping[str, float | None]) -> str:
    """``gold mae 0.4100, rmse 0.5200, r2 0.8100``: the measured figures, '' when none is."""
    shown = [f"{n} {v:.4f}" for n, v in figures.items() if v is not None]
    return f"gold {', '.join(shown)}" if shown else ""


def metric_order(task: "Task", metric: str) -> tuple[str, ...]:
    """The task's metric names with the gate's ``metric`` first."""
    return (metric,) + tuple(n for n in task.metric_names() if n != metric)


def _row(con: duckdb.DuckDBPyConnection, record: ModelRecord, names: tuple[str, ...], task: Task) -> ChampionRow:
    from data_engine.tasks import model_name

    reviews, corrections = _reviews_up_to(con, record.label_snapshot)
    metrics = record.metrics or {}
    choice = record.params.get("served_choice")
    gold = gold_figures(metrics, names)
    return ChampionRow(record.version, record.label_snapshot,
                       model_name(task, choice["chosen"] if choice else record.model_spec),
                       reviews, corrections, metrics.get("accuracy"), metrics.get("n_gold"), gold[names[0]], gold)


def _remaining_errors(con: duckdb.DuckDBPyConnection) -> tuple[int | None, int | None]:
    """(estimated wrong labels, label snapshot) of the newest mining run with a noise estimate."""
    row = con.execute("SELECT noise_rate, n_labeled, label_snapshot FROM mining_runs WHERE noise_rate IS NOT NULL "
                      "ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchone()
    if row is None:
        return None, None
    return int(round(float(row[0]) * int(row[1]))), int(row[2])


def build_report(con: duckdb.DuckDBPyConnection, task: "Task | None" = None, metric: str | None = None) -> Report:
    """The report of the user's rounds (see the module). ``task``: the dataset's (default
    classification); ``metric``: the gate's (default the task's :attr:`~data_engine.tasks.Task.default_metric`)."""
    from data_engine.tasks import Classification, model_name

    task = task or Classification()
    names = metric_order(task, metric or task.default_metric)
    notes: list[str] = []
    rows = [_row(con, r, names, task) for r in _champions(con)]
    champion = current_champion(con)
    if champion is not None and rows and rows[-1].version != champion.version:
        rows.append(_row(con, champion, names, task))  # after a rollback the champion is an earlier one
    reviews_total, corrections_total = _reviews_up_to(con, None)
    newest = latest_model(con)
    served = served_score = best = best_score = metric = gain = None
    if newest is not None and newest.params.get("served_choice"):
        choice = ServedChoice.from_dict(newest.params["served_choice"])
        served, metric = model_name(task, choice.chosen), choice.metric
        served_score = choice.score_of(choice.chosen)
        if choice.best is not None:
            best, best_score = model_name(task, choice.best.name), choice.best.metric(metric)
            if served_score is not None:
                gain = best_score - served_score
        else:
            notes.append(f"the newest model v{newest.version} was {choice.rule}: no candidates were scored")
    elif newest is None:
        notes.append("no model trained yet: run `data-engine train`")
    if newest is not None and newest.label_snapshot != label_snapshot(con):
        notes.append(f"labels changed since the newest model v{newest.version} (its candidates were scored on label "
                     f"snapshot {newest.label_snapshot}); `data-engine train` scores them again")
    per_review = None
    measured = [r for r in rows if r.gold_score is not None]
    if len(measured) >= 2 and measured[-1].reviews > measured[0].reviews:
        per_review = (measured[-1].gold_score - measured[0].gold_score) / (measured[-1].reviews - measured[0].reviews)
    elif rows:
        notes.append("fewer than two champions with gold figures and reviews between them: no gain per review yet")
    remaining, remaining_snapshot = _remaining_errors(con)
    if remaining is None and task.column_labels != "class":
        # cleanlab's joint of given and true labels is for one class index per example (``encode``'s (n,), the
        # rule of mine/noise): mining again would not help.
        notes.append(f"the errors left are not estimated for a {task.name} dataset: mining estimates the label "
                     "noise (cleanlab's joint of given and true classes) for one class per example only")
    elif remaining is None:
        notes.append("no mining run has estimated the label noise yet: run `data-engine mine`")
    labels_now = int(con.execute("SELECT count(*) FROM current_labels cl JOIN current_examples ce USING (example_id) "
                                 "WHERE cl.label IS NOT NULL AND NOT ce.is_gold").fetchone()[0])
    return Report(rows, reviews_total, corrections_total, served, served_score, best, best_score, metric, gain,
                  per_review, remaining, remaining_snapshot, labels_now, notes, names[0],
                  task.higher_is_better(names[0]))


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_report(r: Report) -> str:
    """The report as plain text."""
    head = f"gold {r.gold_metric}"
    out = [f"{'champion':>8s} {'reviews':>7s} {'corrected':>9s} {head:>13s}  served model (the task's other gold figures)"]
    for row in r.rows:
        gold = _f(row.gold_score) + (f" of {row.n_gold}" if row.n_gold else "")
        others = ", ".join(f"{n} {v:.4f}" for n, v in list(row.gold.items())[1:] if v is not None)
        served = f"{row.served}" + (f" ({others})" if others else "")
        out.append(f"{'v' + str(row.version):>8s} {row.reviews:7d} {row.corrections:9d} {gold:>13s}  {served}")
    if not r.rows:
        out.append("(no champion yet)")
    out += ["", f"reviews so far: {r.reviews_total}, of which {r.corrections_total} changed a label"]
    out.append("what a better model would buy (out-of-fold "
               f"{r.metric or 'score'} on the labels in force, from the newest model's candidates):")
    if r.best_candidate is None:
        out.append("  n/a")
    else:
        out.append(f"  served {r.served}: {_f(r.served_score)}; best candidate {r.best_candidate}: "
                   f"{_f(r.best_score)} ({'+' if (r.model_gain or 0) >= 0 else ''}{_f(r.model_gain)})")
    out.append("what more review would buy:")
    per100 = None if r.gain_per_review is None else 100 * r.gain_per_review
    direction = "" if r.higher_is_better else " (lower is better)"
    out.append(f"  gold {r.gold_metric} per 100 reviews so far{direction}: "
               f"{'n/a' if per100 is None else f'{per100:+.4f}'}")
    if r.remaining_errors is not None:
        share = r.corrections_total / r.reviews_total if r.reviews_total else None
        rate = "" if share is None else f"; {share:.0%} of the reviews so far corrected a label"
        out.append(f"  estimated label errors left: {r.remaining_errors} of {r.labels_now} labels (newest mining "
                   f"run, label snapshot {r.remaining_errors_snapshot}){rate}")
    else:
        out.append("  estimated label errors left: n/a")
    out += [f"note: {n}" for n in r.notes]
    return "\n".join(out)


__all__ = ["ChampionRow", "Report", "build_report", "format_report", "gold_figures", "gold_text", "metric_order"]
