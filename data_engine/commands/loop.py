"""Loop commands: ``train``, ``evaluate``, ``score``, ``deploy promote|rollback|status``, ``report``, ``serve``.

They run the same functions the Dagster assets call (training, gate, deploy, scoring, serve).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the loop's sub-commands."""
    p = sub.add_parser("train", help="train a candidate model now on the labels in force")
    p.add_argument("--json", action="store_true", help="print the new model as JSON")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("evaluate", help="the promotion gate on gold data, or (--file) a model's figures on a "
                                        "labeled file")
    p.add_argument("--file", type=Path, help="a labeled CSV/Parquet/JSONL file in the dataset's schema: print "
                                             "accuracy, macro-F1 and per-class recall of the champion (or --version)")
    p.add_argument("--version", type=int, help="the model to evaluate (default: the newest candidate; with "
                                               "--file, the champion)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("predict", help="predictions and class probabilities of the champion (or --version) for a file")
    p.add_argument("file", type=Path, help="a CSV/Parquet/JSONL file in the dataset's schema (labels not needed)")
    p.add_argument("--version", type=int, help="the model to use (default: the champion)")
    p.add_argument("--out", type=Path, help="write to this .csv/.parquet/.jsonl file (default: CSV on stdout)")
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("score", help="the champion scores unlabeled examples it has not scored yet, and gold when "
                                     "the gold set changed")
    p.add_argument("--batch", help="only this batch id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("deploy", help="promote a candidate, roll back, or show the deployment status")
    dsub = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)
    q = dsub.add_parser("promote", help="run the gate on a candidate and make it the champion if it passes")
    q.add_argument("--version", type=int, help="the model to promote (default: the newest candidate)")
    q.add_argument("--force", action="store_true", help="promote without the gate (recorded as forced)")
    q.add_argument("--wait", action="store_true", help="return once the model server answers with the new champion")
    q.add_argument("--port", type=int, help="the model server's port for --wait (default: [serve] port)")
    q.add_argument("--timeout", type=float, default=120.0, help="seconds --wait waits at most (default 120)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_promote)
    q = dsub.add_parser("rollback", help="return to the champion before the current one")
    q.add_argument("--reason", default="rollback requested from the command line")
    q.set_defaults(handler=cmd_rollback)
    q = dsub.add_parser("status", help="the champion, recent models and deployments")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_status)

    p = sub.add_parser("report", help="gold accuracy against reviews spent per champion, and what a better model "
                                      "would buy beside what more review would buy")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("serve", help="serve the champion over HTTP on 127.0.0.1 (hot-swaps on promotion)")
    p.add_argument("--port", type=int, help="TCP port (default: [serve] port in engine.toml)")
    p.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for a new champion")
    p.add_argument("--wait", action="store_true", help="start before the first champion exists and wait for it")
    p.set_defaults(handler=cmd_serve)


def _dump(obj: Any) -> str:
    return json.dumps(obj, default=str)


def cmd_train(args: argparse.Namespace, home: Home) -> int:
    """``train``."""
    from data_engine.ship.training import describe, train_candidate
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        result = train_candidate(con, home)
    if args.json:
        print(_dump({**result.record.summary(), "seconds": round(result.seconds, 3), "weighted": result.weighted}))
    else:
        from data_engine.tasks import task_for

        print(describe(result, task_for(home.config.dataset)))
    return 0


def _print_verdict(verdict: Any) -> None:
    print(("PASS: " if verdict.promote else "REFUSED: ") + verdict.reason)
    if verdict.wins is not None:
        print(f"  gold examples only the candidate gets right: {verdict.wins}; only the champion: {verdict.losses}")
    for c in verdict.checks:
        if not c.passed:
            print(f"  failed: {c.detail}")


def _report_rejected(path: Path, rejected: list[tuple[int, str]], limit: int = 10, notes: Sequence[str] = (),
                     said: Sequence[int] = ()) -> None:
    """Name the rows left out (on stderr, so a CSV on stdout stays clean), then ``notes`` once; the
    rows a note names (``said``: labels that are not classes) are left to it, not listed twice."""
    said = set(said)
    rest = [(row, why) for row, why in rejected if row not in said]
    for row, why in rest[:limit]:
        print(f"{path} row {row}: {why}", file=sys.stderr)
    if rest:
        more = f" (first {limit} shown)" if len(rest) > limit else ""
        print(f"{path}: {len(rest)} row(s) left out{more}" + (" and the rows below" if said else ""), file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def cmd_evaluate_file(args: argparse.Namespace, home: Home) -> int:
    """``evaluate --file``: a model's figures on a labeled file."""
    from data_engine.ship.files import evaluate_file
    from data_engine.tasks import task_for

    task = task_for(home.config.dataset)
    result = evaluate_file(home, args.file, args.version)
    if args.json:
        print(_dump(result.to_json(task)))
        return 0
    _report_rejected(args.file, result.rejected, notes=result.notes, said=result.said_rows)
    ev = result.evaluation
    head, lines = task.evaluate_lines(ev.to_dict(), ev.n_gold)
    print(f"model v{result.model_version} on {args.file}: {ev.n_gold} labeled rows; {head}")
    for line in lines:
        print(line)
    return 0


def cmd_predict(args: argparse.Namespace, home: Home) -> int:
    """``predict FILE``."""
    from data_engine.ship.files import predict_file, write_frame

    frame, rejected, version = predict_file(home, args.file, args.version)
    _report_rejected(args.file, rejected)
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        write_frame(frame, args.out)
        print(f"model v{version}: {len(frame)} predictions written to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace, home: Home) -> int:
    """``evaluate``: exit 0 when the candidate passes the gate, 1 when it is refused."""
    from data_engine.ship.gate import run_gate

    if args.file is not None:
        return cmd_evaluate_file(args, home)
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        verdict = run_gate(con, home, version=args.version)
    if args.json:
        print(_dump({**verdict.metadata(), "checks": [c.__dict__ for c in verdict.checks]}))
    else:
        _print_verdict(verdict)
    return 0 if verdict.promote else 1


def cmd_score(args: argparse.Namespace, home: Home) -> int:
    """``score``: the unlabeled examples, and the champion on gold when the gold version changed."""
    from data_engine.ship.scoring import rescore_champion, score_unlabeled
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        r = score_unlabeled(con, home, batch_id=args.batch)
        gold = rescore_champion(con, home)
    if gold is not None and not args.json:
        print(gold.line)
    if args.json:
        print(_dump({**r.__dict__, "gold_rescore": gold.line if gold else None}))
    elif r.champion_version is None:
        print(f"nothing scored: {r.reason}")
    else:
        print(f"champion v{r.champion_version} scored {r.scored} examples ({r.already_scored} already scored); "
              f"{r.flagged} flagged: {r.unsure} unsure, {r.disagreements} disagree with "
              f"{'v' + str(r.candidate_version) if r.candidate_version else 'no newer candidate'}")
    return 0


def _wait_served(args: argparse.Namespace, home: Home, version: int) -> None:
    """With ``--wait``: block until the model server answers with ``version``."""
    if not args.wait:
        return
    from data_engine.ship.serve import wait_for_version

    port = args.port if args.port is not None else home.config.serve.port
    seconds = wait_for_version(port, version, timeout=args.timeout)
    if not getattr(args, "json", False):
        print(f"the server on 127.0.0.1:{port} answers with v{version} ({seconds:.1f} s after the promotion)")


def cmd_promote(args: argparse.Namespace, home: Home) -> int:
    """``deploy promote``: exit 1 when the gate refuses."""
    from data_engine.errors import EngineError
    from data_engine.ship.deploy import promote
    from data_engine.ship.step import gate_and_promote
    from data_engine.ship.registry import latest_candidate, latest_refused
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        if args.force:
            version = args.version
            if version is None:
                # Forcing is for a model the gate refused: the newest one waiting, else the newest refused.
                cand = latest_candidate(con) or latest_refused(con)
                if cand is None:
                    raise EngineError("no candidate model to promote; run `data-engine train` first")
                version = cand.version
            dep = promote(con, home, version, reason="forced from the command line (gate skipped)", actor="cli")
            print(f"promoted v{dep.model_version} (forced; previous champion: v{dep.previous_version})")
            _wait_served(args, home, dep.model_version)
            return 0
        verdict, dep = gate_and_promote(con, home, version=args.version, actor="cli")
    if args.json:
        print(_dump({**verdict.metadata(), "deployment": dep.__dict__ if dep else None}))
    else:
        _print_verdict(verdict)
        if dep:
            prev = f"v{dep.previous_version}" if dep.previous_version else "none"
            print(f"promoted v{dep.model_version} (previous champion: {prev})")
    if dep:
        _wait_served(args, home, dep.model_version)
    return 0 if dep else 1


def cmd_rollback(args: argparse.Namespace, home: Home) -> int:
    """``deploy rollback``."""
    from data_engine.ship.deploy import rollback
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        dep = rollback(con, home, reason=args.reason, actor="cli")
    print(f"rolled back from v{dep.previous_version} to v{dep.model_version}")
    return 0


def cmd_status(args: argparse.Namespace, home: Home) -> int:
    """``deploy status``."""
    from data_engine.ship.deploy import status
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        report = status(con, home)
    if args.json:
        print(_dump(report))
        return 0
    from data_engine.mine.candidates import ServedChoice

    from data_engine.tasks import gate_metric, model_name, task_for

    champ, task = report["champion"], task_for(home.config.dataset)
    print(f"champion: v{champ['version']} ({model_name(task, champ['model_spec'])}, trained on {champ['train_size']} "
          "labels)" if champ else "champion: none yet")
    if champ and champ.get("served_choice"):
        print("  " + ServedChoice.from_dict(champ["served_choice"]).line(task))
    if not report["pointer_in_sync"]:
        print("warning: the champion pointer file disagrees with the warehouse")
    from data_engine.ship.report import gold_figures, gold_text, metric_order

    names = metric_order(task, gate_metric(home.config))
    for m in report["models"]:
        gold = gold_text(gold_figures(m["metrics"], names))
        acc_s = f" {gold}" if gold else ""
        chosen = f" {model_name(task, m['served_choice']['chosen'])}" if m.get("served_choice") else ""
        waiting = "gate passed: " if m["status"] == "candidate" and m["gate_passed"] else ""
        print(f"  v{m['version']:<4} {m['status']:<9}{chosen}{acc_s}  {waiting}{m['reason'] or ''}")
    for d in report["deployments"]:
        print(f"  deployment {d['deployment_id']}: {d['action']} v{d['model_version']} by {d['actor']}")
    return 0


def cmd_report(args: argparse.Namespace, home: Home) -> int:
    """``report``."""
    from data_engine.ship.report import build_report, format_report
    from data_engine.tasks import gate_metric, task_for
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        report = build_report(con, task_for(home.config.dataset), gate_metric(home.config))
    print(_dump(report.to_json()) if args.json else format_report(report))
    return 0


def cmd_serve(args: argparse.Namespace, home: Home) -> int:
    """``serve``."""
    from data_engine.ship.serve import run_server

    port = args.port if args.port is not None else home.config.serve.port
    run_server(home, port=port, poll_seconds=args.poll_seconds, wait=args.wait)
    return 0
