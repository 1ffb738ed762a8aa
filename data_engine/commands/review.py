"""Review commands: ``review push|pull|simulate|status`` and ``labelstudio up|down|status|token``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``review`` and ``labelstudio`` sub-commands."""
    review = sub.add_parser("review", help="human review in Label Studio: push the queue, pull verdicts")
    rsub = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    p = rsub.add_parser("push", help="send the review queue to Label Studio (bulk, idempotent)")
    p.add_argument("--run", dest="run_id", type=int, help="the mining run whose queue to send (default: the latest)")
    p.add_argument("--limit", type=int, help="send at most this many new tasks (default: review.budget minus open tasks)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_push)

    p = rsub.add_parser("pull", help="bring verdicts annotated since the last pull into the label ledger")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_pull)

    p = rsub.add_parser("simulate", help="answer open tasks through the Label Studio API from the true labels in "
                                         "HOME/oracle.jsonl (else oracle.csv)")
    p.add_argument("--accuracy", type=float, default=0.98, help="share of answers that are right (default 0.98)")
    p.add_argument("--limit", type=int, help="answer at most this many tasks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--annotator", help="answer as this user (email; created if missing) instead of the key's owner")
    p.set_defaults(handler=cmd_simulate)

    p = rsub.add_parser("status", help="tasks sent, verdicts, events, per-issue-type confirmation, weights")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_review_status)

    p = rsub.add_parser("undo-propagation", help="reverse one propagation run exactly (its events stop counting)")
    p.add_argument("run", type=int, metavar="RUN", help="the propagation run's id (see `review status`)")
    p.set_defaults(handler=cmd_undo_propagation)

    ls = sub.add_parser("labelstudio", help="the local Label Studio server of this home (127.0.0.1 only)")
    lsub = ls.add_subparsers(dest="labelstudio_command", metavar="ACTION", required=True)
    p = lsub.add_parser("up", help="start the server (or re-use the running one) and wait until it is healthy")
    p.add_argument("--port", type=int, help="listen on this port (default: the port of review.url)")
    p.add_argument("--foreground", action="store_true", help="stay attached; SIGTERM or Ctrl-C stops the server")
    p.set_defaults(handler=cmd_ls_up)
    p = lsub.add_parser("down", help="stop the server")
    p.set_defaults(handler=cmd_ls_down)
    p = lsub.add_parser("status", help="is the server running, where, which process")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_ls_status)
    p = lsub.add_parser("token", help="print the admin API token (for `export LABEL_STUDIO_API_KEY=...`)")
    p.set_defaults(handler=cmd_ls_token)


def _say_remote(home: Home) -> None:
    """Say on stderr, before the key is used, that the review server is on another machine ([review] allow_remote)."""
    from data_engine.store.review_url import remote_review_notice

    notice = remote_review_notice(home.config.review.url, home.config.review.api_key_env)
    if notice:
        print(notice, file=sys.stderr)


def _client(home: Home) -> Any:
    """The review server's client, after :func:`_say_remote`."""
    from data_engine.review.project import make_client

    _say_remote(home)
    return make_client(home)


def cmd_push(args: argparse.Namespace, home: Home) -> int:
    """``review push``."""
    from data_engine.steps import push_step

    client = _client(home)
    result = push_step(home, client, run_id=args.run_id, limit=args.limit).result
    for line in result.notices:  # what changed in Label Studio, on stderr even with --json
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"pushed {result.sent} task(s) of run {result.run_id or '-'} to project {result.project_id} at "
              f"{client.url} in {result.batches} import(s)"
              + (f", {result.reconciled} reconciled from an interrupted push" if result.reconciled else "")
              + f" ({result.seconds:.1f} s, {result.requests} requests)")
    return 0


def cmd_pull(args: argparse.Namespace, home: Home) -> int:
    """``review pull``."""
    from data_engine.steps import pull_step

    client = _client(home)
    result = pull_step(home, client).result
    for line in result.notices:  # what changed in Label Studio, on stderr even with --json
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), default=str))
    elif result.project_id is None and result.notices:
        pass  # the project is gone: said above; the next push re-creates it
    elif result.project_id is None:
        print(f"nothing pushed to {client.url} yet; run `data-engine review push` first")
    else:
        print(f"pulled {result.tasks_seen} annotated task(s) from {client.url}: {result.annotations_new} new and "
              f"{result.annotations_edited} edited answer(s); events: {result.review_events} review, {result.votes} "
              f"vote, {result.consensus} consensus ({result.discards} discard(s), {result.ties} tie(s) pending) "
              f"({result.seconds:.1f} s, {result.requests} requests)")
    if result.problems and not args.json:
        print(f"{len(result.problems)} answer(s) not taken as verdicts (unreadable or empty), first: {result.problems[0]}")
    return 0


def cmd_simulate(args: argparse.Namespace, home: Home) -> int:
    """``review simulate``."""
    from data_engine.errors import EngineError
    from data_engine.review.project import make_client, project_title
    from data_engine.review.oracle import oracle_path, read_oracle
    from data_engine.review.simulate import simulate_reviews
    from data_engine.tasks import task_for

    cfg = home.config
    _say_remote(home)
    label_task = task_for(cfg.dataset)
    oracle = read_oracle(oracle_path(home), label_task)
    client = make_client(home)
    project_id = client.find_project(project_title(cfg))
    if project_id is None:
        raise EngineError(f"no review project {project_title(cfg)!r} at {client.url}; run `data-engine review push` first")
    classes = _review_classes(home)
    result = simulate_reviews(client, project_id, oracle, classes, accuracy=args.accuracy, limit=args.limit,
                              seed=args.seed, annotator=args.annotator, label_task=label_task)
    print(f"{result.annotator} answered {result.answered} task(s) ({result.correct} right)"
          + (f"; {result.unknown} not in the oracle, left open" if result.unknown else ""))
    if result.refused:
        print(f"{result.refused} task(s) left open: the oracle's answer is one `review pull` would refuse "
              f"(first: {result.refusals[0]})")
    return 0


def _review_classes(home: Home) -> list[str]:
    """The classes a pull accepts (the warehouse's fixed ones, else the config's)."""
    from data_engine.review.project import dataset_classes
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        return dataset_classes(con, home.config)


def cmd_review_status(args: argparse.Namespace, home: Home) -> int:
    """``review status`` (reads the warehouse only; no server needed)."""
    from data_engine.mine.second_opinions import reviewer_accuracy, second_opinion_report
    from data_engine.mine.propagate import propagation_report
    from data_engine.mine.weights import effective_weights
    from data_engine.review.verdicts import latest_budget_split, review_status, verdict_stats
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        report: dict[str, Any] = review_status(con)
        report["verdict_stats"] = verdict_stats(con)
        report["effective_weights"] = effective_weights(con, home.config)
        report["propagations"] = propagation_report(con)
        report["budget_split"] = latest_budget_split(con)
        report["second_opinions"] = second_opinion_report(con) | {"reviewer_accuracy": reviewer_accuracy(con)}
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    print("tasks: " + (", ".join(f"{k}={v}" for k, v in report["tasks"].items()) or "none sent yet"))
    print("verdicts: " + (", ".join(f"{k}={v}" for k, v in report["verdicts"].items()) or "none yet")
          + f"; discarded={report['discarded']}")
    print("label events: " + (", ".join(f"{k}={v}" for k, v in report["events"].items()) or "none"))
    if report["server_changes"]:
        print("noticed in Label Studio: " + ", ".join(f"{k}={v}" for k, v in report["server_changes"].items()))
    for s in report["verdict_stats"]:
        print(f"  run {s['run_id']} {s['issue_type']:<15} confirmed={s['confirmed']} rejected={s['rejected']}")
    for a in report["annotators"]:
        quality = f", quality {a['quality']:.2f}" if a["quality"] is not None else ""
        print(f"  annotator {a['annotator']}: {a['votes']} votes, agreement {a['agreement']:.2f}{quality}")
    print("queue weights: " + ", ".join(f"{k}={v:g}" for k, v in report["effective_weights"].items()))
    split = report["budget_split"]
    if split:
        fixes = ", ".join(f"{k}={v}" for k, v in split["fix"].items()) or "none"
        gains = ", ".join(f"{k} {v:.4f}" for k, v in split["gain_per_fix_points"].items())
        # The figures add up to the budget: fixes + new examples + unused.
        unused = split.get("unused", 0)
        print(f"last queue: {split['budget']} reviews = fixes ({fixes}) + {split['grow']} new examples"
              + (f" + {unused} unused" if unused else "") + "; "
              f"expected {split.get('gain_figure', 'accuracy points')} per review: new label {split['gain_per_new_label_points']:.4f}"
              f" ({split['curve_source']}){'; fix ' + gains if gains else ''}")
        if split.get("short_reason"):
            print(f"  fewer than the budget: {split['short_reason']}")
        if split.get("selection"):
            print("  chosen by: " + ", ".join(f"{k}={v}" for k, v in split["selection"].items()))
    so = report["second_opinions"]
    if so["reviews"]:
        per = f"{so['reviews_per_slip']:g} reviews per caught slip" if so["reviews_per_slip"] else "no slip caught yet"
        print(f"second opinions: {so['reviews']} reviews caught {so['slips_caught']} reviewer slips ({per}); "
              f"reviewer accuracy used: {so['reviewer_accuracy']:.3f}")
    for r in report["propagations"]:
        measured = f"{r['measured_precision']:.3f}" if r["measured_precision"] is not None else "not yet measured"
        print(f"  propagation {r['propagation_id']} (mining run {r['mining_run_id']}): touched {r['touched']} "
              f"({r['lookalikes']} look-alikes, {r['copies']} copies), {r['reviewed']} reviewed since, "
              f"measured precision {measured}" + (f"; undone {r['undone_at']}" if r["undone_at"] else ""))
    return 0


def cmd_undo_propagation(args: argparse.Namespace, home: Home) -> int:
    """``review undo-propagation RUN``."""
    import getpass

    from data_engine.mine.propagate import undo_propagation
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        r = undo_propagation(con, args.run, f"cli:{getpass.getuser()}")
    print(f"propagation {r['propagation_id']} undone: {r['touched']} examples have their labels from before it again")
    return 0


def cmd_ls_up(args: argparse.Namespace, home: Home) -> int:
    """``labelstudio up``: start or re-use; with ``--foreground`` wait for SIGTERM/SIGINT, then stop."""
    from data_engine.review.labelstudio.server import ensure_server, running_server, stop_server

    home.make_dirs()
    _say_remote(home)  # `make up` starts here: the first thing it says about the review server
    info = ensure_server(home, port=args.port)
    print(f"Label Studio {'already running' if info.reused else 'started'} at {info.url} (pid {info.pid}); "
          f"data in {info.data_dir}; log in as engine-admin@example.com with the password in "
          f"{home.secrets}/labelstudio_password")
    sys.stdout.flush()
    if not args.foreground:
        return 0
    stopping = {"now": False}

    def stop(_signum: int, _frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping["now"] and running_server(home.labelstudio_dir) is not None:
        time.sleep(1.0)
    stop_server(home)
    print("Label Studio stopped")
    return 0


def cmd_ls_down(args: argparse.Namespace, home: Home) -> int:
    """``labelstudio down``."""
    from data_engine.review.labelstudio.server import stop_server

    print("Label Studio stopped" if stop_server(home) else "Label Studio was not running")
    return 0


def cmd_ls_status(args: argparse.Namespace, home: Home) -> int:
    """``labelstudio status``: exit 0 when running, 1 when not."""
    from data_engine.review.labelstudio.server import server_status

    status = server_status(home)
    if args.json:
        print(json.dumps(status))
    elif status["running"]:
        print(f"Label Studio running at {status['url']} (pid {status['pid']}); data in {status['data_dir']}")
    else:
        print(f"Label Studio not running (data dir {status['data_dir']})")
    return 0 if status["running"] else 1


def cmd_ls_token(args: argparse.Namespace, home: Home) -> int:
    """``labelstudio token``: print the managed server's admin token (exit 2 if there is none)."""
    from data_engine.errors import EngineError
    from data_engine.review.labelstudio.server import read_token

    token = read_token(home)
    if token is None:
        raise EngineError(f"no Label Studio token in {home.secrets}; run `data-engine labelstudio up` first")
    print(token)
    return 0
