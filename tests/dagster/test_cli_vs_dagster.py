"""The CLI and the Dagster assets run the same loop steps: on two copies of one home, `data-engine
mine` and the mining assets find the same issues and queue the same examples, `review push` and
the `review_tasks` asset send the same tasks, `review pull` and the `review_verdicts` asset record
the same verdicts from the same answers, and `train` + `deploy promote` and the ship assets reach
the same gate verdict."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pandas as pd

from assets.mine import mined_issues, oof_predictions
from assets.resources import ComputeResource, EngineResource, FakeLabelStudioResource
from assets.review import review_tasks, review_verdicts
from assets.ship import candidate_model, champion_model
from data_engine.cli import main
from data_engine.mine.weights import effective_weights
from data_engine.review import project
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import choice_result
from data_engine.ship.registry import current_champion, gate_record, latest_model
from data_engine.ship.step import ship_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import digits_split, make_home
from tests.mine.review_rounds import lazy_reviewer, review_round

# `uncertain` reads the champion's scores of unlabeled examples: the step the CLI used to skip.
CONFIG = {"mining": {"model": "linear", "detectors": ["label", "outlier", "near_duplicate", "uncertain"]},
          "retrain": {"model": "linear"}}


def _mining_run(home: Home) -> dict:
    """The newest mining run's findings (issue counts per type, every score) and its queue."""
    with open_warehouse(home, read_only=True) as con:
        run_id = con.execute("SELECT max(run_id) FROM mining_runs").fetchone()[0]
        counts = dict(con.execute("SELECT issue_type, count(*) FILTER (WHERE is_issue) FROM issues WHERE run_id = ? "
                                  "GROUP BY 1 ORDER BY 1", [run_id]).fetchall())
        scores = con.execute("SELECT issue_type, example_id, round(score, 9) FROM issues WHERE run_id = ? "
                             "ORDER BY 1, 2", [run_id]).fetchall()
        queue = con.execute("SELECT rank, example_id, issue_types FROM review_queue WHERE run_id = ? ORDER BY rank",
                            [run_id]).fetchall()
        champion_scored = con.execute("SELECT count(*) FROM champion_flags").fetchone()[0]
    return {"counts": counts, "scores": scores, "queue": queue, "champion_scored": champion_scored}


def _gate(home: Home) -> tuple:
    with open_warehouse(home, read_only=True) as con:
        newest = latest_model(con)
        g = gate_record(con, newest.version)
        champ = current_champion(con)
    return (newest.version, newest.status, g.passed, g.metric, g.outcome, g.n_gold, g.difference, g.p_worse,
            champ.version)


def _review_state(home: Home) -> dict:
    """The tasks sent to the Label Studio project (with their ids there), their verdicts and the
    reviewers' ledger events (the simulated reviews of the set-up, project 0, left out)."""
    pushed = "project_id IN (SELECT project_id FROM review_projects)"
    with open_warehouse(home, read_only=True) as con:
        tasks = con.execute("SELECT task_id, example_id, example_version, opinion, run_id, status, issue_types, "
                            f"given_label, suggested_label FROM review_tasks WHERE {pushed} ORDER BY task_id").fetchall()
        verdicts = con.execute("SELECT task_id, example_id, run_id, given_label, label, outcome, source "
                               f"FROM review_verdicts WHERE {pushed} ORDER BY task_id").fetchall()
        events = con.execute("SELECT event_id, example_id, example_version, label, source, actor FROM label_events "
                             "WHERE source = 'review' AND actor <> 'sim-reviewer' ORDER BY event_id").fetchall()
    return {"tasks": tasks, "verdicts": verdicts, "events": events}


def _answer_truly(fake: FakeReviewClient, truth: pd.Series) -> None:
    """A reviewer gives every task on ``fake`` its example's true label, in task order."""
    for task_id in sorted(fake.tasks):
        fake.create_annotation(task_id, choice_result(str(truth[fake.tasks[task_id]["data"]["example_id"]])))


def test_cli_and_dagster_run_the_same_mining_review_and_ship_steps(tmp_path, monkeypatch) -> None:
    split = {"n_train": 240, "n_gold": 80, "n_unlabeled": 40, "noise": 0.1}
    home = make_home(tmp_path / "src", CONFIG, seed=3, **split)
    data = digits_split(seed=3, **split)
    truth = pd.Series(data["y"], index=data["ids"])
    with open_warehouse(home) as con:
        # Reviewers reject every flag of a first queue (they keep the given label), so the learned `label`
        # weight falls below `uncertain`'s and the queue's order depends on using it; and a champion, so
        # both paths score the unlabeled examples with it first (without either, this test fails).
        review_round(con, home, lazy_reviewer(truth, 1.0), np.random.default_rng(0), budget=30)
        learned, configured = effective_weights(con, home.config), home.config.review.weights
        assert learned["label"] < learned["uncertain"] < configured["label"]
        ship_step(con, home)
    cli_root, dagster_root = tmp_path / "cli", tmp_path / "dagster"
    shutil.copytree(home.root, cli_root)
    shutil.copytree(home.root, dagster_root)
    cli_home, dagster_home = Home(cli_root), Home(dagster_root)

    assert main(["--home", str(cli_root), "mine"]) == 0
    engine = EngineResource(home=str(dagster_root))
    resources = {"engine": engine, "compute": ComputeResource(engine=engine)}
    assert dg.materialize([oof_predictions, mined_issues], resources=resources).success

    cli, dagster = _mining_run(cli_home), _mining_run(dagster_home)
    assert cli["champion_scored"] == dagster["champion_scored"] > 0
    assert cli["counts"] == dagster["counts"] and cli["counts"].get("uncertain", 0) > 0
    assert cli["scores"] == dagster["scores"]
    assert cli["queue"] == dagster["queue"] and len(cli["queue"]) > 0

    # Push the queue to a Label Studio each (in memory), a reviewer gives every task its true label on
    # both, then pull: `review push` / `review pull` against the `review_tasks` / `review_verdicts` assets.
    cli_server, dagster_server = FakeReviewClient(), FakeReviewClient()
    monkeypatch.setattr(project, "make_client", lambda home: cli_server)
    label_studio = FakeLabelStudioResource.over(dagster_server)
    review_resources = {"engine": engine, "label_studio": label_studio}
    assert main(["--home", str(cli_root), "review", "push"]) == 0
    assert dg.materialize([review_tasks], resources=review_resources).success
    sent = [t["data"] for t in cli_server.tasks.values()]
    assert sent == [t["data"] for t in dagster_server.tasks.values()] and len(sent) > 0
    _answer_truly(cli_server, truth)
    _answer_truly(dagster_server, truth)
    assert main(["--home", str(cli_root), "review", "pull"]) == 0
    assert dg.materialize([review_verdicts], resources=review_resources).success
    cli_review, dagster_review = _review_state(cli_home), _review_state(dagster_home)
    assert cli_review == dagster_review
    assert len(cli_review["tasks"]) == len(sent) and len(cli_review["verdicts"]) == len(sent)
    assert all(t[5] == "done" for t in cli_review["tasks"]) and len(cli_review["events"]) == len(sent)

    # Then retrain, gate and promote: `train` then `deploy promote` against the two ship assets.
    assert main(["--home", str(cli_root), "train"]) == 0
    main(["--home", str(cli_root), "deploy", "promote"])  # exit 1 on a refusal: compared below
    assert dg.materialize([candidate_model, champion_model], resources={"engine": engine}).success
    assert _gate(cli_home) == _gate(dagster_home)
