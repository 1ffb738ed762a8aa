"""Decisions the loop's sensors make, as plain functions over the warehouse (tested without Dagster);
:func:`pull_decision` asks the review server instead (the review sensor stays off the DuckDB file).
The steps they start are in :mod:`data_engine.steps`; the landing folder's decision, which files
are new, is :func:`data_engine.ingest.landing.decide_landing` (it owns the landing cursor).

The mining and retrain decisions return a :class:`Trigger`: whether to request a run, why (shown as the SkipReason or in the
run's tags), and a run key that makes the request idempotent: the same state never starts the
same work twice. These rules hold:

- **in flight**: while a run of the job is queued or in progress, no new one is requested (the
  sensor asks Dagster's run storage and passes the ids in; a run acting on a state the next tick
  would also see otherwise gets a twin);
- **same state**: when the state a run would act on equals the last run's, nothing is requested
  (mining: label snapshot and stored example versions; training: label snapshot);
- **the loop settles**: when nothing is left to review and reviewed labels are in no model, one
  final retrain runs, whatever ``[retrain] min_new_labels`` says, so at rest the newest model has
  seen every verdict;
- **reviewers have work**: new verdicts alone re-mine only once fewer than ``[review]
  refill_below`` of the budget's tasks are open (new examples re-mine at once);
- **reviewers first**: a retrain waits while newly landed examples have not been mined yet;
- **gold moves, the champion is re-scored**: when the gold set's version (a content hash, see
  :mod:`data_engine.ship.gold`) differs from the one the champion was last scored on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from data_engine.errors import ReviewServiceError
from data_engine.review.consensus import _norm_ts
from data_engine.review.labelstudio.client import ReviewClient
from data_engine.review.project import project_title
from data_engine.store.config import EngineConfig
from data_engine.store.dataset import label_snapshot
from data_engine.store.warehouse import FINISHED_TASK_STATUSES


@dataclass(frozen=True)
class Trigger:
    """A sensor's decision."""

    run: bool
    reason: str
    run_key: str


@dataclass(frozen=True)
class MiningState:
    """What a mining run acts on: the label snapshot (highest label event id) and the number of
    stored example versions (``examples`` keeps every version, so any new or changed row counts)."""

    label_snapshot: int
    example_versions: int

    @property
    def run_key(self) -> str:
        """Idempotency key of a mining run on this state."""
        return f"mine-{self.label_snapshot}-{self.example_versions}"


def in_flight_reason(job: str, run_ids: Sequence[str]) -> str | None:
    """Why not to request a run of ``job`` while ``run_ids`` (its queued or running runs) exist."""
    if not run_ids:
        return None
    shown = ", ".join(r[:8] for r in run_ids[:3])
    return f"{job} run(s) {shown} queued or in progress; the next tick looks again once they finish"


def mining_state(con: duckdb.DuckDBPyConnection) -> MiningState:
    """The warehouse's state as mining sees it."""
    versions = int(con.execute("SELECT count(*) FROM examples").fetchone()[0])
    return MiningState(label_snapshot(con), versions)


def last_mining_state(con: duckdb.DuckDBPyConnection) -> tuple[int, MiningState | None] | None:
    """``(run_id, state)`` of the newest mining run (state None for runs stored before migration
    0720 recorded it), or None before the first run."""
    row = con.execute("SELECT run_id, label_snapshot, example_versions FROM mining_runs "
                      "ORDER BY run_id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return int(row[0]), (MiningState(int(row[1]), int(row[2])) if row[2] is not None else None)


def has_training_labels(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any non-gold example has a label in force (what out-of-fold predictions need)."""
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM current_labels cl JOIN current_examples ce USING (example_id) "
        "WHERE cl.label IS NOT NULL AND NOT ce.is_gold)").fetchone()[0]


def refill_threshold(cfg: EngineConfig) -> int:
    """Open review tasks below which new verdicts alone start a mining run: ``[review] refill_below``
    (a share of ``[review] budget``), at least 1."""
    return max(1, math.ceil(cfg.review.refill_below * cfg.review.budget))


def mining_trigger(con: duckdb.DuckDBPyConnection, *, in_flight: Sequence[str] = (),
                   refill_below: int | None = None) -> Trigger:
    """Mine when the label snapshot or the stored example versions differ from the last mining
    run's (and labeled data exists), unless a mining run is queued or in progress.

    With ``refill_below`` (see :func:`refill_threshold`), new verdicts alone do not start a run
    while at least that many review tasks are still open: reviewers have work, and a run after
    every pulled verdict (out-of-fold fits and all) would hold the one warehouse writer so the next
    verdicts' pulls queue behind it. New or changed examples start a run at once."""
    state = mining_state(con)
    key = state.run_key
    busy = in_flight_reason("mine_job", in_flight)
    if busy:
        return Trigger(False, busy, key)
    if state.label_snapshot == 0:
        return Trigger(False, "no labeled data yet", key)
    last = last_mining_state(con)
    if last is None:
        if not has_training_labels(con):
            return Trigger(False, "no labeled training data yet (gold data is for evaluation only)", key)
        return Trigger(True, f"no mining run yet; labels up to event {state.label_snapshot}", key)
    run_id, before = last
    resend = tasks_to_send_again(con)
    if before == state and resend:
        # Tasks whose Label Studio task or project is gone (a new database, a deletion) wait for a
        # push: the mining job ends with one. Keyed by what was noticed, so it runs once per change.
        noticed = con.execute("SELECT count(*) FROM review_changes").fetchone()[0]
        return Trigger(True, f"{resend} review task(s) to send again (gone from Label Studio)",
                       f"{key}-resend-{noticed}")
    if before == state:
        return Trigger(False, f"nothing new since mining run {run_id} (labels up to event "
                              f"{state.label_snapshot}, {state.example_versions} example versions)", key)
    if before is None:  # a run stored before its state was: compare the labels only
        before = MiningState(-1, state.example_versions)
    if refill_below is not None and before.example_versions == state.example_versions:
        open_tasks = unfinished_reviews(con)
        if open_tasks >= refill_below:
            return Trigger(False, f"labels changed (event {before.label_snapshot} -> {state.label_snapshot}) since "
                                  f"mining run {run_id}, but {open_tasks} review task(s) are still open; mining "
                                  f"again when fewer than {refill_below} are ([review] refill_below) or new "
                                  "examples arrive", key)
    what = []
    if before.label_snapshot != state.label_snapshot:
        what.append(f"labels changed (event {before.label_snapshot} -> {state.label_snapshot})")
    if before.example_versions != state.example_versions:
        what.append(f"{state.example_versions - before.example_versions} example version(s) ingested")
    return Trigger(True, f"{' and '.join(what)} since mining run {run_id}", key)


def unmined_examples(con: duckdb.DuckDBPyConnection) -> int:
    """Example versions stored since the last mining run (0 before the first run: nothing to wait for)."""
    last = last_mining_state(con)
    if last is None or last[1] is None:
        return 0
    return max(mining_state(con).example_versions - last[1].example_versions, 0)


def tasks_to_send_again(con: duckdb.DuckDBPyConnection) -> int:
    """Review tasks recorded but not on the server: their task or project was found gone
    (:mod:`data_engine.review.identity`), or a push was interrupted before its import."""
    return int(con.execute("SELECT count(*) FROM review_tasks WHERE status = 'sending' AND task_id IS NULL")
               .fetchone()[0])


def unfinished_reviews(con: duckdb.DuckDBPyConnection) -> int:
    """Review tasks sent and not finished (open, partly voted, tied, or still being sent)."""
    return int(con.execute("SELECT count(*) FROM review_tasks WHERE NOT list_contains(?::VARCHAR[], status)",
                           [list(FINISHED_TASK_STATUSES)]).fetchone()[0])


def review_pending(con: duckdb.DuckDBPyConnection, *, mining_in_flight: Sequence[str] = (),
                   pull_in_flight: Sequence[str] = ()) -> str | None:
    """What is still left to review, or None when nothing is: no task open, mining has seen the
    newest labels and examples (so its queue holds nothing new), and no mining or pull in flight."""
    busy = in_flight_reason("mine_job", mining_in_flight) or in_flight_reason("pull_job", pull_in_flight)
    if busy:
        return busy
    open_tasks = unfinished_reviews(con)
    if open_tasks:
        return f"{open_tasks} review task(s) not finished"
    if mining_trigger(con).run:
        return "mining has not seen the newest labels or examples yet"
    return None


def retrain_trigger(con: duckdb.DuckDBPyConnection, cfg: EngineConfig, *, in_flight: Sequence[str] = (),
                    mining_in_flight: Sequence[str] = (), pull_in_flight: Sequence[str] = ()) -> Trigger:
    """Retrain when enough corrections arrived or a labeled batch landed (see
    :func:`data_engine.ship.retrain_decision.retrain_decision`), or, once nothing is left to review, when
    reviewed labels are in no model yet; never while a retrain is in flight, never twice on one
    label snapshot."""
    from data_engine.ship.registry import latest_model
    from data_engine.ship.retrain_decision import retrain_decision

    decision = retrain_decision(con, cfg)
    key = decision.run_key
    busy = in_flight_reason("retrain_job", in_flight)
    if busy:
        return Trigger(False, busy, key)
    last = latest_model(con)
    if last is not None and last.label_snapshot == decision.label_snapshot:
        return Trigger(False, f"model v{last.version} was trained on the current labels (event "
                              f"{decision.label_snapshot})", key)
    unmined = unmined_examples(con)
    if unmined and decision.retrain:
        # A landed file reaches reviewers first (one writer at a time: a retrain started now would
        # hold the warehouse for the mining run that puts the new examples in front of them).
        return Trigger(False, f"{decision.reason}; waiting for mining to take the {unmined} new example "
                              "version(s) to review first", key)
    if decision.retrain:
        return Trigger(True, decision.reason, key)
    if decision.new_labels > 0:
        pending = review_pending(con, mining_in_flight=mining_in_flight, pull_in_flight=pull_in_flight)
        if pending is None:
            return Trigger(True, f"nothing left to review and {decision.new_labels} reviewed label(s) are in no "
                                 f"model: a final retrain so the newest model has seen every verdict", key)
        return Trigger(False, f"{decision.reason}, or for the review to settle ({pending})", key)
    return Trigger(False, decision.reason, key)


def gold_trigger(con: duckdb.DuckDBPyConnection, *, in_flight: Sequence[str] = (),
                 retrain_in_flight: Sequence[str] = ()) -> Trigger:
    """Re-score the champion when the gold set in force differs from the gold version it was last
    scored on (a gold file landed, or gold relabelled in place); never beside a run of its own or a
    retrain in flight (whose gate scores the champion on the current gold anyway)."""
    from data_engine.ship.gold import current_gold_version, last_scored_gold
    from data_engine.ship.registry import current_champion

    champion = current_champion(con)
    gold, _ = current_gold_version(con)
    key = f"gold-{gold.version}-v{champion.version if champion else 0}"
    busy = in_flight_reason("gold_job", in_flight) or in_flight_reason("retrain_job", retrain_in_flight)
    if busy:
        return Trigger(False, busy, key)
    if champion is None:
        return Trigger(False, "no champion to score on gold yet", key)
    if gold.n_gold == 0:
        return Trigger(False, "no gold data", key)
    last = last_scored_gold(con, champion.version)
    if last is not None and last[0] == gold.version:
        return Trigger(False, f"champion v{champion.version} was scored on the current gold (gold {gold.version}, "
                              f"{gold.n_gold} examples)", key)
    was = f"gold {last[0]}" if last else "no recorded gold version"
    return Trigger(True, f"gold is now gold {gold.version} ({gold.n_gold} examples); champion v{champion.version} "
                         f"was last scored on {was}: re-scoring it", key)


@dataclass(frozen=True)
class PullDecision:
    """A sensor's decision: request a pull run or not, why, and its next cursor."""

    run: bool
    reason: str
    cursor: str | None
    run_key: str | None = None  # default: one per cursor


def pull_decision(client: ReviewClient, cfg: EngineConfig, cursor: str | None) -> PullDecision:
    """Whether a sensor should request a pull: yes when tasks were annotated after ``cursor``, and
    also when the server lost something since the last tick (fewer tasks or answers in the project,
    another project under the title, or the project gone): a pull notices and reconciles it
    (:mod:`data_engine.review.identity`), so the loop does not wait for answers that cannot come.

    The cursor is ``<newest updated_at>|<project id>:<tasks>:<answers>`` (a bare time from before the
    counts were kept is read too). Never raises for a service failure: an unreachable server, a
    refused key or a timeout give ``run=False`` with the cause as the reason (a SkipReason), and the
    next tick tries again. Reads nothing from the warehouse (sensors stay off the DuckDB file);
    costs three requests.
    """
    since, seen = _read_cursor(cursor)
    title = project_title(cfg)
    try:
        project_id = client.find_project(title)
        if project_id is None:
            if seen is not None:
                return PullDecision(True, f"project {title!r} is gone from {client.url} (deleted, or a new database): "
                                          "pulling to reconcile", "", run_key=f"pull-gone-{cursor}")  # "": start again (None would keep it)
            return PullDecision(False, f"no review project {title!r} at {client.url} yet", cursor)
        info = client.project_info(project_id) or {}
        count, newest = client.annotated_since(project_id, since)
    except ReviewServiceError as exc:
        return PullDecision(False, f"{exc} (will retry)", cursor)
    now = (project_id, int(info.get("tasks") or 0), int(info.get("annotations") or 0))
    if count and newest is not None:
        return PullDecision(True, f"{count} task(s) annotated at {client.url} since {since or 'the start'}",
                            _write_cursor(_norm_ts(newest), now))
    if seen is not None and (now[0] != seen[0] or now[1] < seen[1] or now[2] < seen[2]):
        return PullDecision(True, f"project {project_id} at {client.url} has {now[1]} task(s) and {now[2]} answer(s), "
                                  f"{seen[1]} and {seen[2]} before: pulling to reconcile", _write_cursor(since, now))
    return PullDecision(False, f"no new verdicts at {client.url} since {since or 'the start'}", _write_cursor(since, now))


def _read_cursor(cursor: str | None) -> tuple[str | None, tuple[int, int, int] | None]:
    """(newest updated_at, (project id, tasks, answers)) from a sensor cursor."""
    if not cursor:
        return None, None
    since, _, counts = cursor.partition("|")
    try:
        pid, tasks, answers = (int(x) for x in counts.split(":"))
    except ValueError:
        return since or None, None
    return since or None, (pid, tasks, answers)


def _write_cursor(since: str | None, counts: tuple[int, int, int]) -> str:
    return f"{since or ''}|{counts[0]}:{counts[1]}:{counts[2]}"
