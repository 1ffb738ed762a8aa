"""``data-engine bench review``: push 10,000 tasks to a real Label Studio, answer 2,000, pull them.

The benchmark builds a throw-away engine home with ``--tasks`` digit examples (the 1,797 digits
repeated under new ids) and a review queue over all of them, then times:

* push: every queue row to Label Studio (bulk imports; target on this machine <= 30 s);
* simulate: ``--answered`` answers posted through the API (one request each, not a target), or with
  ``--accept-predictions`` the suggestions of that many tasks accepted in bulk (1,000 a request);
* pull: the answered tasks into the label ledger (target <= 10 s);

and prints seconds, HTTP request counts and the peak resident memory of this process during push
and pull (both work a page at a time: the peak should not grow with ``--tasks``), then how long
the project's saved view takes to list its first page, as the Data Manager loads it. It uses the home's running Label Studio when there
is one (``labelstudio up``), else starts a temporary server (a fresh data dir needs minutes of
migrations) and stops it afterwards. The bench project is left in the server for inspection
unless ``--cleanup`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from data_engine.store.home import Home

PUSH_TARGET_S = 30.0
PULL_TARGET_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``bench review`` options."""
    p.add_argument("--tasks", type=int, default=10_000, help="tasks to push (default 10000)")
    p.add_argument("--answered", type=int, default=2_000, help="tasks the simulated reviewer answers (default 2000)")
    p.add_argument("--batch-size", type=int, default=None, help="tasks per import request (default review.import_batch_size)")
    p.add_argument("--workers", type=int, default=4, help="threads posting the simulated answers (default 4)")
    p.add_argument("--accept-predictions", action="store_true",
                   help="answer by accepting the suggestions in bulk (1,000 tasks a request) instead of one POST each")
    p.add_argument("--answer-for", type=float, default=None, metavar="SECONDS",
                   help="stop answering after this many seconds and pull what was answered (a time budget)")
    p.add_argument("--cleanup", action="store_true", help="delete the bench project from the server afterwards")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def register_bench() -> None:
    """Register ``bench review`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("review", "push N tasks to Label Studio, answer some, pull them (seconds, requests)",
                  add_arguments, cmd_bench_review)


def cmd_bench_review(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``bench review``."""
    from data_engine.errors import EngineError
    from data_engine.review.project import REVIEW_VIEW_TITLE

    if args.tasks < 1 or not 0 <= args.answered <= args.tasks:
        raise EngineError("bench review: need --tasks >= 1 and 0 <= --answered <= --tasks")
    figures = run_review_bench(home, tasks=args.tasks, answered=args.answered, workers=args.workers,
                               cleanup=args.cleanup, batch_size=args.batch_size, answer_for=args.answer_for,
                               accept_predictions=args.accept_predictions)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"Label Studio {figures['server']} at {figures['url']}; load average before: {figures['load_before']}")
    print(f"push     {figures['push_tasks']:>6} tasks  {figures['push_seconds']:7.2f} s  "
          f"{figures['push_requests']:>5} requests  peak {figures['push_peak_mib']:,.0f} MiB  "
          f"({figures['push_batches']} imports of <= {figures['push_batch_size']}; target <= {PUSH_TARGET_S:g} s: "
          f"{'ok' if figures['push_seconds'] <= PUSH_TARGET_S else 'MISSED'})")
    how = ("suggestions accepted in bulk" if args.accept_predictions else f"{args.workers} threads, one POST per answer")
    print(f"simulate {figures['answered']:>6} answers {figures['simulate_seconds']:7.2f} s  "
          f"{figures['simulate_requests']:>5} requests  ({how})")
    print(f"pull     {figures['pulled_events']:>6} events  {figures['pull_seconds']:7.2f} s  "
          f"{figures['pull_requests']:>5} requests  peak {figures['pull_peak_mib']:,.0f} MiB  "
          f"(target <= {PULL_TARGET_S:g} s: {'ok' if figures['pull_seconds'] <= PULL_TARGET_S else 'MISSED'})")
    print(f"(this process held {figures['rss_before_mib']:,.0f} MiB before the push: imports and the bench home)")
    print(f"push again (nothing new) {figures['repush_seconds']:.2f} s  {figures['repush_requests']} requests")
    if figures["view_seconds"] is not None:
        print(f"view     '{REVIEW_VIEW_TITLE}': first page of {figures['view_page']} of {figures['view_tasks']} "
              f"tasks in {figures['view_seconds']:.2f} s (as the Data Manager asks for it)")
    return 0


def run_review_bench(home: Home, *, tasks: int, answered: int, workers: int = 4, cleanup: bool = False,
                     batch_size: int | None = None, answer_for: float | None = None,
                     accept_predictions: bool = False) -> dict[str, Any]:
    """Run the benchmark; return its figures (seconds, request counts, counts)."""
    from data_engine.review.labelstudio.client import LabelStudioClient
    from data_engine.review.labelstudio.server import (
        free_port,
        read_token,
        running_server,
        start_server,
        stop_pid,
    )

    # Other work on the machine slows the server: the figures carry the load they ran under.
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        root = Path(tmp)
        server = running_server(home.labelstudio_dir) if home.root.is_dir() else None
        started = None
        if server is not None:
            url, token, kind = server.url, read_token(home), "of this home"
        else:
            started = start_server(root / "labelstudio", root / "secrets", free_port())
            url, token, kind = started.url, (root / "secrets" / "labelstudio_token").read_text().strip(), "(temporary)"
        try:
            bench_home = _bench_home(root / "home", url, tasks)
            client = LabelStudioClient(url, token or "", timeout_s=120.0)
            _say(f"a home of {tasks} examples with its review queue is ready")
            figures = _measure(bench_home, client, answered, workers, batch_size, answer_for, accept_predictions)
            figures.update(server=kind, url=url, load_before=load_before)
            if cleanup:
                client._sdk.projects.delete(id=figures["project_id"])  # noqa: SLF001 - bench-only clean-up
            return figures
        finally:
            if started is not None:
                stop_pid(started.pid)


def _say(line: str) -> None:
    """A progress line on stderr (a run at 100,000 tasks takes most of an hour)."""
    print(f"bench review: {line}", file=sys.stderr, flush=True)


def _measure(home: Home, client: Any, answered: int, workers: int, batch_size: int | None,
             answer_for: float | None = None, accept_predictions: bool = False) -> dict[str, Any]:
    from data_engine.review.pull import pull_verdicts
    from data_engine.review.push import push_queue
    from data_engine.review.simulate import read_oracle, simulate_reviews
    from data_engine.stages import StageClock
    from data_engine.store.schema import load_classes
    from data_engine.store.warehouse import open_warehouse
    from data_engine.tasks import task_for

    # Peak resident memory of this process only: a temporary server is a child of it.
    clock = StageClock(track_memory=True, with_children=False)
    rss_before = (clock.rss_bytes() or 0) / 2**20
    with open_warehouse(home) as con:
        classes = load_classes(con)
        with clock.stage("push"):
            push = push_queue(con, client, home.config, limit=home.config.review.budget, batch_size=batch_size)
    _say(f"push: {push.sent} tasks in {push.seconds:.1f} s, {push.requests} requests, "
         f"peak {clock.peak_mib['push']:,.0f} MiB")
    before, t0 = client.request_count, time.perf_counter()
    label_task = task_for(home.config.dataset)
    oracle = read_oracle(home.oracle_path, label_task)
    given = accepted_to = 0
    # In rounds of 1,000 answers, so that a long run reports progress and can stop at a time budget.
    while given < answered and (answer_for is None or time.perf_counter() - t0 < answer_for):
        if accept_predictions:
            made, accepted_to = _accept_round(home, client, push, min(1000, answered - given), accepted_to)
        else:
            made = simulate_reviews(client, push.project_id, oracle, classes, accuracy=0.95, seed=given,
                                    limit=min(1000, answered - given), workers=workers, label_task=label_task).answered
        if not made:
            break
        given += made
        _say(f"answered {given}/{answered} in {time.perf_counter() - t0:.0f} s")
    simulate_seconds, simulate_requests = time.perf_counter() - t0, client.request_count - before
    with open_warehouse(home) as con:
        with clock.stage("pull"):
            pull = pull_verdicts(con, client, home.config)
        _say(f"pull: {pull.events} events in {pull.seconds:.1f} s, {pull.requests} requests")
        # A push with nothing new to send: what every push costs once the project is large.
        again = push_queue(con, client, home.config, limit=home.config.review.budget, batch_size=batch_size)
    return {"project_id": push.project_id, "push_tasks": push.sent, "push_seconds": push.seconds,
            "push_requests": push.requests, "push_batches": push.batches, "answered": given,
            "push_peak_mib": round(clock.peak_mib["push"], 1), "pull_peak_mib": round(clock.peak_mib["pull"], 1),
            "rss_before_mib": round(rss_before, 1),
            "simulate_seconds": round(simulate_seconds, 3), "simulate_requests": simulate_requests,
            "pulled_tasks": pull.tasks_seen, "pulled_events": pull.events, "pull_seconds": pull.seconds,
            "pull_requests": pull.requests, "repush_seconds": again.seconds, "repush_requests": again.requests,
            "push_batch_size": batch_size or home.config.review.import_batch_size,
            **_view_first_page(client, push.project_id)}


def _accept_round(home: Home, client: Any, push: Any, limit: int, after_id: int) -> tuple[int, int]:
    """Accept the suggestions of the first ``limit`` open tasks above task ``after_id`` in one request
    (they stay 'open' in the warehouse until the pull); return the answers made and the last task
    id. They are real answers in the server, as a pull reads them; one POST per answer managed
    about 4 a second here under load (20,000 would take over an hour). The bench's suggestion is
    the true label, so every accepted answer is right."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        ids = [int(r[0]) for r in con.execute(
            "SELECT task_id FROM review_tasks WHERE project_id = ? AND status = 'open' AND task_id > ? "
            "ORDER BY task_id LIMIT ?", [push.project_key, after_id, limit]).fetchall()]
    if not ids:
        return 0, after_id
    return client.accept_predictions(push.project_id, ids), ids[-1]


def _view_first_page(client: Any, project_id: int) -> dict[str, Any]:
    """Seconds to load the saved view's first page as the Data Manager does (30 tasks, all fields),
    and how many tasks the view holds: whether the project stays usable in the browser."""
    from data_engine.review.project import REVIEW_VIEW_TITLE

    sdk = getattr(client, "_sdk", None)  # bench-only reads the engine itself never makes
    if sdk is None:  # the in-memory server of the tests has no Data Manager
        return {"view_seconds": None, "view_tasks": None}
    t0 = time.perf_counter()
    view = next((v for v in sdk.views.list(project=project_id) if v.data and v.data.get("title") == REVIEW_VIEW_TITLE),
                None)
    if view is None:
        return {"view_seconds": None, "view_tasks": None}
    pager = sdk.tasks.list(project=project_id, view=view.id, page=1, page_size=30, fields="all")
    first = list(pager.items or [])
    total = getattr(pager.response, "total", None) if pager.response is not None else None
    return {"view_seconds": round(time.perf_counter() - t0, 3), "view_tasks": total, "view_page": len(first)}


def _bench_home(root: Path, url: str, n: int) -> Home:
    """A home with ``n`` digit examples and a review queue over all of them."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    from data_engine.commands.core import init_home
    from data_engine.steps import ingest_step
    from data_engine.store.warehouse import open_warehouse

    home = Home(root)
    init_home(home)
    text = home.config_path.read_text(encoding="utf-8")
    text = text.replace('url = "http://127.0.0.1:8080"', f'url = "{url}"').replace(
        "budget = 200", f'budget = {n}\nproject_title = "bench review {uuid.uuid4().hex[:8]}"')
    home.config_path.write_text(text, encoding="utf-8")
    home = Home(root)
    pixels, labels = load_digits(return_X_y=True)
    take = np.arange(n) % len(labels)
    rng = np.random.default_rng(0)
    # The default config names the pixel columns px0..px63.
    frame = pd.DataFrame(pixels[take].astype(int), columns=[f"px{i}" for i in range(pixels.shape[1])])
    truth = labels[take].astype(str).astype(object)
    given = truth.copy()
    flip = rng.random(n) < 0.2
    given[flip] = [str((int(v) + 1) % 10) for v in truth[flip]]
    frame.insert(0, "id", [f"b{i:06d}" for i in range(n)])
    frame["label"] = given
    path = home.landing / "bench.csv"
    frame.to_csv(path, index=False)
    ingest_step(home, [path])
    pd.DataFrame({"example_id": frame["id"], "label": truth}).to_csv(home.oracle_path, index=False)
    queue = pd.DataFrame({
        "run_id": 1, "rank": np.arange(1, n + 1), "example_id": frame["id"], "example_version": 1,
        "issue_types": [["label"] if f else ["uncertain"] for f in flip], "priority": np.linspace(1, 0, n),
        "suggested_label": truth, "suggested_score": np.where(flip, 0.9, 0.6), "given_label": given,
        "scores": [json.dumps({"label": 0.9 if f else 0.1}) for f in flip]})
    with open_warehouse(home) as con:
        con.register("_bench_queue", queue)
        con.execute("INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
                    "suggested_label, suggested_score, given_label, scores) SELECT run_id, rank, example_id, "
                    "example_version, CAST(issue_types AS VARCHAR[]), priority, suggested_label, suggested_score, "
                    "given_label, CAST(scores AS JSON) FROM _bench_queue")
        con.unregister("_bench_queue")
    return home

