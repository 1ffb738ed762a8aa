"""The loop under the real Dagster daemon, sensors on, with the real Label Studio; nobody runs anything.

A labeled file and the gold file land; they are ingested, mined and pushed; the simulated reviewer
answers in Label Studio until the loop is at rest (nothing in flight, nothing left to review, no
sensor with work to request). Then a second labeled file lands and the loop runs to rest again.
What must hold: no failed run; no two models on one label snapshot; no state mined twice; at rest
the newest model has seen every reviewed label; the second file's examples reach review. The
sensor-driven timings (landing to tasks in Label Studio, an answer to its verdict in the ledger)
are printed for the README (run with ``-s``)."""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from data_engine.errors import ReviewServiceError
from data_engine.demo.data import seed_demo
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.review.simulate import read_oracle, simulate_reviews
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.triggers import mining_trigger, retrain_trigger, unfinished_reviews
from tests.e2e.dagster_daemon import REPO, running_daemon, wait_for
from tests.homes import make_home

pytestmark = pytest.mark.integration

REST_TIMEOUT_S = 1200


def _query(home: Home, sql: str, params: list | None = None) -> list[tuple] | None:
    if not home.warehouse_path.exists():
        return None
    try:
        with open_warehouse(home, read_only=True, wait_s=2) as con:
            return con.execute(sql, params or []).fetchall()
    except Exception:  # a run holds the write lock: ask again next second
        return None


def _config(url: str) -> str:
    base = (REPO / "data_engine" / "store" / "default_config.toml").read_text()
    base = base.split("[review]")[0]
    # min_new_labels above what a few rounds of review bring: only new batches and the settling
    # rule retrain, so "the newest model has seen every verdict" rests on the settling rule.
    return base + f"""
[mining]
model = "linear+knn"

[review]
url = "{url}"
project_title = "e2e-{uuid.uuid4().hex[:8]}"
budget = 40

[retrain]
min_new_labels = 1000
"""


def _in_flight(instance) -> list[str]:
    import dagster as dg

    from sensors.common import IN_FLIGHT_STATUSES

    return list(instance.get_run_ids(filters=dg.RunsFilter(statuses=IN_FLIGHT_STATUSES)))


def _at_rest(home: Home, instance) -> str | None:
    """Why the loop is not at rest yet (None when it is): runs in flight, tasks open, or work a
    sensor would request (the sensors' own decisions, asked of the warehouse)."""
    if runs := _in_flight(instance):
        return f"{len(runs)} run(s) in flight"
    try:
        with open_warehouse(home, read_only=True, wait_s=2) as con:
            if n := unfinished_reviews(con):
                return f"{n} task(s) open"
            for trigger in (mining_trigger(con), retrain_trigger(con, home.config)):
                if trigger.run:
                    return trigger.reason
    except Exception as exc:  # noqa: BLE001 (a writer holds the lock)
        return str(exc)
    return None


# The sensors whose work _at_rest asks about (the gold sensor only acts when gold changes).
LOOP_SENSORS = frozenset({"landing_sensor", "mining_sensor", "review_sensor", "retrain_sensor"})


def _sensors_looked_since(instance, since: float) -> bool:
    """Whether every loop sensor has finished a tick that started at or after ``since`` (epoch
    seconds) and requested no run: each sensor has then seen the state at rest and let it be."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    quiet = set()
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since)
        if any(t.status != TickStatus.STARTED and not t.run_ids for t in ticks):
            quiet.add(state.instigator_name)
    return LOOP_SENSORS <= quiet


def _review_until_rest(home: Home, instance, client: LabelStudioClient, oracle: dict[str, str],
                       log: Path, timeout: float = REST_TIMEOUT_S) -> int:
    """Answer open tasks (as a person would in Label Studio) until the loop is at rest; rest is
    confirmed once every loop sensor has ticked on it without a request (each has looked at the
    resting state, however slow the daemon's ticks are). Returns the number of answers given."""
    deadline, answered, seed = time.monotonic() + timeout, 0, 0
    classes = list(home.config.dataset.classes)
    calm_since = None  # wall-clock seconds, as the ticks' timestamps
    while time.monotonic() < deadline:
        project = _query(home, "SELECT project_id FROM review_projects LIMIT 1") or []
        if project:
            seed += 1
            try:
                answered += simulate_reviews(client, int(project[0][0]), oracle, classes, accuracy=1.0,
                                             seed=seed).answered
            except ReviewServiceError:  # a server hiccup: a person would reload the page
                pass
        why = _at_rest(home, instance)
        if why is None:
            calm_since = calm_since or time.time()
            if _sensors_looked_since(instance, calm_since):
                return answered
        else:
            calm_since = None
        time.sleep(2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"the loop did not come to rest in {timeout:.0f} s: {_at_rest(home, instance)}\n{tail}")


def _unsynced(instance) -> list[str]:
    """Unpartitioned assets Dagster's UI would badge "Unsynced" (its own stale-status resolver)."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    import definitions

    assets = list(definitions.defs.assets or [])
    resolver = get_stale_status_resolver(instance, assets)
    keys = [k for a in assets if not a.partitions_def for k in a.keys]
    return [k.to_user_string() for k in keys if resolver.get_status(k) == StaleStatus.STALE]


def _failed_runs(instance) -> list[str]:
    """Failed or canceled runs, with the reason Dagster recorded."""
    import dagster as dg

    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE,
                                                                  dg.DagsterRunStatus.CANCELED])):
        failures = [e.message for e in instance.all_logs(run.run_id)
                    if e.dagster_event and e.dagster_event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")]
        out.append(f"{run.job_name} {run.run_id[:8]}: {' | '.join(failures)[:500]}")
    return out


def _run_phases(instance) -> dict[str, dict[str, float]]:
    """Per job, median seconds a successful run spent queued, starting its process, and running
    (from the run's own events): where the loop's latency goes."""
    import dagster as dg

    phases: dict[str, list[tuple[float, float, float]]] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS])):
        at: dict[str, float] = {}
        for event in instance.all_logs(record.dagster_run.run_id):
            if event.dagster_event:
                at.setdefault(event.dagster_event.event_type_value, event.timestamp)
        if {"PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS"} <= at.keys():
            phases.setdefault(record.dagster_run.job_name, []).append((
                at["PIPELINE_STARTING"] - record.create_timestamp.timestamp(),
                at["PIPELINE_START"] - at["PIPELINE_STARTING"], at["PIPELINE_SUCCESS"] - at["PIPELINE_START"]))
    return {job: {name: round(statistics.median(values), 1)
                  for name, values in zip(("queued", "process_start", "run"), zip(*rows))}
            for job, rows in phases.items()}


def test_sensor_driven_loop_settles_and_takes_a_second_file(tmp_path: Path, label_studio) -> None:
    import dagster as dg

    home = make_home(tmp_path, _config(label_studio.url))
    # Seed into a staging folder, then move the files in: the sensor never sees half a file.
    staging = make_home(tmp_path, _config(label_studio.url), name="staging")
    seed_demo(staging, noise=0.1, seed=1, batches=4)
    (staging.root / "oracle.csv").replace(home.oracle_path)
    oracle = read_oracle(home.oracle_path)
    second_ids = set(pd.read_csv(staging.landing / "digits_batch_02.csv", usecols=["id"])["id"])
    env = {"LABEL_STUDIO_API_KEY": label_studio.token}
    client = LabelStudioClient(label_studio.url, label_studio.token)
    figures: dict[str, object] = {"load_average_1m_start": round(os.getloadavg()[0], 1)}
    with running_daemon(home.root, env) as dagster_home:
        log = dagster_home / "daemon.log"
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        landed = time.time()
        (staging.gold_landing / "digits_gold.csv").replace(home.gold_landing / "digits_gold.csv")
        (staging.landing / "digits_batch_01.csv").replace(home.landing / "digits_batch_01.csv")
        wait_for(lambda: (_query(home, "SELECT count(*) FROM review_tasks WHERE task_id IS NOT NULL")
                          or [(0,)])[0][0] > 0, 600, "the first file's queue pushed to Label Studio", log)
        first_sent = _query(home, "SELECT epoch(min(sent_at)) FROM review_tasks")[0][0]
        figures["landing_to_tasks_s"] = [round(first_sent - landed, 1)]
        figures["answers_round_1"] = _review_until_rest(home, instance, client, oracle, log)

        # At rest, a second labeled file lands.
        landed = time.time()
        (staging.landing / "digits_batch_02.csv").replace(home.landing / "digits_batch_02.csv")
        wait_for(lambda: (_query(home, "SELECT count(*) FROM review_tasks WHERE epoch(sent_at) > ?", [landed])
                          or [(0,)])[0][0] > 0, 600, "the second file's queue pushed to Label Studio", log)
        figures["landing_to_tasks_s"].append(
            round(_query(home, "SELECT epoch(min(sent_at)) FROM review_tasks WHERE epoch(sent_at) > ?",
                         [landed])[0][0] - landed, 1))
        figures["answers_round_2"] = _review_until_rest(home, instance, client, oracle, log)
        failed = _failed_runs(instance)
        unsynced = _unsynced(instance)
        figures["median_run_phases_s"] = _run_phases(instance)
        runs = {job: len(instance.get_run_ids(filters=dg.RunsFilter(job_name=job)))
                for job in ("ingest_job", "mine_job", "pull_job", "retrain_job")}
    client.close()

    with open_warehouse(home, read_only=True) as con:
        twins = con.execute("SELECT label_snapshot, list(version) FROM models GROUP BY 1 HAVING count(*) > 1").fetchall()
        mined_twice = con.execute("SELECT label_snapshot, example_versions, list(run_id) FROM mining_runs "
                                  "GROUP BY 1, 2 HAVING count(*) > 1").fetchall()
        newest = con.execute("SELECT version, label_snapshot, status FROM models ORDER BY version DESC LIMIT 1").fetchone()
        last_verdict = con.execute("SELECT max(event_id) FROM label_events "
                                   "WHERE source IN ('review', 'consensus')").fetchone()[0]
        reviewed_second = con.execute("SELECT count(DISTINCT example_id) FROM review_tasks "
                                      "WHERE list_contains(?, example_id)", [sorted(second_ids)]).fetchone()[0]
        # An answer's server time to its event in the ledger (one clock: the same machine).
        lags = [r[0] for r in con.execute(
            "SELECT epoch(l.created_at) - epoch(CAST(a.updated_at AS TIMESTAMPTZ)) FROM review_annotations a "
            "JOIN label_ledger l ON l.event_id = a.event_id").fetchall()]
        figures |= {"models": con.execute("SELECT count(*) FROM models").fetchone()[0],
                    "mining_runs": con.execute("SELECT count(*) FROM mining_runs").fetchone()[0],
                    "verdicts": len(lags), "runs": runs, "load_average_1m_end": round(os.getloadavg()[0], 1), "unsynced": unsynced, "newest_model": list(newest)}
    figures["answer_to_ledger_s"] = {"median": round(statistics.median(lags), 1),
                                     "p90": round(statistics.quantiles(lags, n=10)[-1], 1),
                                     "max": round(max(lags), 1)} if len(lags) > 1 else None
    print("loop timings:", json.dumps(figures))
    # A refusal is an outcome (the gate's check records it), so no run fails, whatever the gate says.
    assert failed == [], failed
    assert twins == [], f"models trained twice on one label snapshot: {twins}"
    assert mined_twice == [], f"one state mined twice: {mined_twice}"
    assert last_verdict is not None and newest[1] >= last_verdict, \
        f"newest model v{newest[0]} (snapshot {newest[1]}) has not seen verdict event {last_verdict}"
    assert reviewed_second > 0, "no example of the second file reached review"
    # At rest the sensors are right not to run, so no asset is badged "Unsynced" (a refused candidate
    # still materializes the champion step: "champion stays vN").
    assert unsynced == [], unsynced
