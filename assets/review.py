"""Human review in Label Studio: push the queue out, pull the verdicts back into the ledger."""

import dagster as dg

from assets.resources import EngineResource, LabelStudioResource
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.verdicts import verdict_stats
from data_engine.store.warehouse import open_warehouse


def _stats_markdown(stats: list[dict]) -> str:
    lines = ["| mining run | issue type | confirmed | rejected | reviewed |", "|---|---|---|---|---|"]
    lines += [f"| {s['run_id']} | {s['issue_type']} | {s['confirmed']} | {s['rejected']} | {s['reviewed']} |"
              for s in stats[-30:]]
    return "\n".join(lines)


@dg.asset(
    deps=["review_queue"],
    group_name="review",
    kinds={"labelstudio", "duckdb"},
    description="The review queue sent to Label Studio as tasks (bulk imports, idempotent).",
)
def review_tasks(context: dg.AssetExecutionContext, engine: EngineResource,
                 label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """Push the newest review queue to Label Studio."""
    home = engine.get_home()
    with label_studio.client(home) as client, open_warehouse(home) as con:
        result = push_queue(con, client, home.config)
    context.log.info(f"pushed {result.sent} task(s) to project {result.project_id} in {result.requests} request(s)")
    return dg.MaterializeResult(metadata={
        "sent": result.sent, "reconciled": result.reconciled, "project_id": result.project_id,
        "http_requests": result.requests, "seconds": result.seconds,
        "label_studio": dg.MetadataValue.url(f"{client.url}/projects/{result.project_id}/data"),
    })


@dg.asset(
    deps=["review_tasks"],
    group_name="review",
    kinds={"labelstudio", "duckdb"},
    description="Reviewers' verdicts pulled from Label Studio into the append-only label ledger.",
)
def review_verdicts(context: dg.AssetExecutionContext, engine: EngineResource,
                    label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """Pull every new or edited verdict since the cursor into ``label_events``."""
    home = engine.get_home()
    with label_studio.client(home) as client, open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        stats = verdict_stats(con)
    context.log.info(f"pulled {result.events} label event(s) from {result.tasks_seen} task(s)")
    return dg.MaterializeResult(metadata={
        "tasks_seen": result.tasks_seen, "label_events": result.events, "reviews": result.review_events,
        "consensus": result.consensus, "discards": result.discards, "ties_pending": result.ties,
        "http_requests": result.requests, "cursor": result.cursor or "",
        "verdicts_per_issue_type": dg.MetadataValue.md(_stats_markdown(stats)),
    })
