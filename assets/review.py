"""Human review in Label Studio: push the queue out, pull the verdicts back into the ledger."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from assets.metadata import ROW_COUNT, pick, table, value
from assets.resources import EngineResource, LabelStudioResource
from data_engine.steps import pull_step, push_step

STATS_ROWS = 30
TASK_KEYS = ("run_id", "sent", "reconciled", "project_id", "tasks_not_done", "http_requests", "seconds")
VERDICT_KEYS = ("tasks_seen", "label_events", "reviews", "consensus", "discards", "ties_pending", "http_requests",
                "cursor")


def tasks_metadata(record: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """The review tasks' page from a plain record: ``tasks_total`` (the row count) and the keys of
    :data:`TASK_KEYS` (``seconds`` in seconds)."""
    return {ROW_COUNT: value(record.get("tasks_total")), **pick(record, TASK_KEYS)}


def verdicts_metadata(record: Mapping[str, Any], stats: list[dict]) -> dict[str, dg.MetadataValue]:
    """The verdicts' page from a plain record (``verdicts_total``, the row count, and the keys of
    :data:`VERDICT_KEYS`) and :func:`~data_engine.review.verdicts.verdict_stats`' rows."""
    return {ROW_COUNT: value(record.get("verdicts_total")), **pick(record, VERDICT_KEYS),
            "verdicts_per_issue_type": verdicts_table(stats)}


def verdicts_table(stats: list[dict]) -> dg.MetadataValue:
    """Confirmed and rejected verdicts per mining run and issue type (the newest runs)."""
    rows = [{**s, "confirmed_share": s["confirmed"] / s["reviewed"] if s["reviewed"] else None}
            for s in stats[-STATS_ROWS:]]
    return table(rows, [("run_id", int), ("issue_type", str), ("confirmed", int), ("rejected", int),
                        ("reviewed", int), ("confirmed_share", float)], digits=3)


@dg.asset(
    deps=["review_queue"],
    group_name="review",
    kinds={"labelstudio", "duckdb"},
    description="The review queue sent to Label Studio as tasks (bulk imports, idempotent). Its data "
                "version is the number of tasks sent: a push with nothing new leaves the verdicts in sync.",
)
def review_tasks(context: dg.AssetExecutionContext, engine: EngineResource,
                 label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """Push the newest review queue to Label Studio (:func:`data_engine.steps.push_step`)."""
    home = engine.get_home()
    with label_studio.client(home) as client:
        step = push_step(home, client)
    result = step.result
    for line in result.notices:  # what changed in Label Studio (a new database, deletions), one line each
        context.log.warning(line)
    context.log.info(f"pushed {result.sent} task(s) to project {result.project_id} in {result.requests} request(s)")
    return dg.MaterializeResult(
        metadata={
            **tasks_metadata({"tasks_total": step.tasks_total, "run_id": result.run_id,
                              "sent": result.sent, "reconciled": result.reconciled, "project_id": result.project_id,
                              "tasks_not_done": step.tasks_not_done, "http_requests": result.requests,
                              "seconds": round(result.seconds, 2)}),
            # The server's address is not in the warehouse: only a run knows it.
            "label_studio": dg.MetadataValue.url(f"{client.url}/projects/{result.project_id}/data"),
        },
        data_version=dg.DataVersion(f"tasks-{step.tasks_total}"),
    )


@dg.asset(
    deps=["review_tasks"],
    group_name="review",
    kinds={"labelstudio", "duckdb"},
    description="Reviewers' verdicts pulled from Label Studio into the append-only label ledger. Its data "
                "version is the newest verdict's event id.",
)
def review_verdicts(context: dg.AssetExecutionContext, engine: EngineResource,
                    label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """Pull every new or edited verdict since the cursor into ``label_events``
    (:func:`data_engine.steps.pull_step`)."""
    home = engine.get_home()
    with label_studio.client(home) as client:
        step = pull_step(home, client)
    result = step.result
    for line in result.notices:  # what changed in Label Studio (a new database, deletions), one line each
        context.log.warning(line)
    context.log.info(f"pulled {result.events} label event(s) from {result.tasks_seen} task(s)")
    return dg.MaterializeResult(
        metadata=verdicts_metadata({
            "verdicts_total": step.verdicts_total, "tasks_seen": result.tasks_seen, "label_events": result.events,
            "reviews": result.review_events, "consensus": result.consensus, "discards": result.discards,
            "ties_pending": result.ties, "http_requests": result.requests, "cursor": result.cursor}, result.stats),
        data_version=dg.DataVersion(f"verdicts-{step.newest_event}"),
    )
