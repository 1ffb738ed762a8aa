"""What every loop sensor shares: which runs of a job are in flight (Dagster's run storage), a short
read-only look at the warehouse, and a core decision turned into a RunRequest (with a run key, so
the same state never starts the same work twice) or a SkipReason. Sensors only read the warehouse,
briefly and read-only; while a run holds the write lock they skip the tick."""

from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from data_engine.errors import EngineError
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.triggers import Trigger

T = TypeVar("T")


# A run in one of these states has not finished: its job's sensor requests nothing more meanwhile.
IN_FLIGHT_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                      dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

# Run priority (Dagster's `dagster/priority` tag: the run queue starts higher values first). The
# writers share one DuckDB file and run one at a time, so the order says whose latency matters:
# a landed file and a reviewer's verdicts first (short runs a person waits for), then mining (which
# puts tasks in front of reviewers) and re-scoring the champion on changed gold (seconds), then
# training (minutes, nobody waits on it).
PRIORITY = {"ingest_job": 3, "pull_job": 2, "mine_job": 1, "gold_job": 1, "retrain_job": 0}


def priority_tag(job_name: str) -> dict[str, str]:
    """The run tag giving ``job_name`` its place in the run queue."""
    return {"dagster/priority": str(PRIORITY[job_name])}


def runs_in_flight(context: dg.SensorEvaluationContext, job_name: str) -> list[str]:
    """Ids of ``job_name``'s runs that are queued or in progress (asked of Dagster's run storage)."""
    return list(context.instance.get_run_ids(
        filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT_STATUSES), limit=10))


# A sensor waits this long for a writer to finish before it skips the tick.
SENSOR_LOCK_WAIT_S = 3.0


def read_warehouse(home: Home, decide: Callable[..., T]) -> T | dg.SkipReason:
    """Run ``decide(con)`` on a short read-only connection; a busy or missing warehouse skips the tick."""
    if not home.warehouse_path.exists():
        return dg.SkipReason(f"no warehouse yet at {home.warehouse_path}")
    try:
        with open_warehouse(home, read_only=True, wait_s=SENSOR_LOCK_WAIT_S) as con:
            return decide(con)
    except EngineError as exc:
        return dg.SkipReason(f"{exc} (will retry next tick)")


def run_request(trigger: "Trigger | dg.SkipReason") -> dg.RunRequest | dg.SkipReason:
    """A core trigger as Dagster's answer: a RunRequest keyed by the trigger's run key, or why not."""
    if isinstance(trigger, dg.SkipReason):
        return trigger
    if not trigger.run:
        return dg.SkipReason(trigger.reason)
    return dg.RunRequest(run_key=trigger.run_key, tags={"data-engine/reason": trigger.reason[:200]})
