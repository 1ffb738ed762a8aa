"""Human review in Label Studio: push the queue out, pull the verdicts back into the ledger."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from assets.metadata import ROW_COUNT, pick, table, value
from assets.resources import EngineResource, LabelStudioResource
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.verdicts import verdict_stats
from data_engine.store.warehouse import open_warehouse

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
    rows = [{**s, "run_id": int(s["run_id"]), "confirmed_share": s["confirmed"] / s["reviewed"] if s["reviewed"] else None}
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
    """Push the newest review queue to Label Studio."""
    home = engine.get_home()
    with label_studio.client(home) as client, open_warehouse(home) as con:
        result = push_queue(con, client, home.config)
        sent_total, still_open = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'done') FROM review_tasks WHERE project_id = ?",
            [result.project_key]).fetchone()
    for line in result.notices:
        context.log.warning(line)
    context.log.info(f"pushed {result.sent} task(s) to project {result.project_id} in {result.requests} request(s)")
    return dg.MaterializeResult(
        metadata={
            **tasks_metadata({"tasks_total": sent_total, "run_id": int(result.run_id) if result.run_id else None,
                              "sent": result.sent, "reconciled": result.reconciled, "project_id": result.project_id,
                              "tasks_not_done": still_open, "http_requests": result.requests,
                              "seconds": round(result.seconds, 2)}),
            # The server's address is not in the warehouse: only a run knows it.
            "label_studio": dg.MetadataValue.url(f"{client.url}/projects/{result.project_id}/data"),
        },
        data_version=dg.DataVersion(f"tasks-{int(sent_total)}"),
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
    """Pull every new or edited verdict since the cursor into ``label_events``."""
    home = engine.get_home()
    with label_studio.client(home) as client, open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        stats = verdict_stats(con)
        newest, total = con.execute("SELECT coalesce(max(event_id), 0), count(*) FROM label_events "
                                    "WHERE source IN ('review', 'consensus')").fetchone()
    for line in result.notices:
        context.log.warning(line)
    context.log.info(f"pulled {result.events} label event(s) from {result.tasks_seen} task(s)")
    return dg.MaterializeResult(
        metadata=verdicts_metadata({
            "verdicts_total": total, "tasks_seen": result.tasks_seen, "label_events": result.events,
            "reviews": result.review_events, "consensus": result.consensus, "discards": result.discards,
            "ties_pending": result.ties, "http_requests": result.requests, "cursor": result.cursor}, stats),
        data_version=dg.DataVersion(f"verdicts-{int(newest)}"),
    )
