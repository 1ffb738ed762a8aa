"""Tags through the loop on generated data with injected tag errors: ingest -> mine -> review tasks
(Label Studio's API semantics, in memory) -> the simulated reviewer answering from oracle.jsonl ->
pull -> verdicts in the ledger; and the engine's label flags against cleanlab's own call on a
5-fold model of the same features (F1 at the number of injected errors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.steps import ingest_step, mine_step
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests import multilabel_support
from tests.homes import make_home

TICKETS = {"dataset": {"name": "tickets", "modality": "text", "task": "multilabel", "id_column": "id",
                       "label_column": "tags", "text_column": "text", "feature_columns": [],
                       "classes": sorted(multilabel_support.TICKET_TAGS)},
           "mining": {"model": "linear", "embedding": "tfidf", "n_jobs": 1}}


def _home(tmp_path: Path, config: dict, data: multilabel_support.TagData):
    home = make_home(tmp_path, config)
    ingest_step(home, [data.write(home.root)])
    return home


def _flag_f1_at_m(scores: dict[str, float], noisy: set[str]) -> float:
    """Precision (= recall = F1) of the len(noisy) lowest-scored examples."""
    ranked = sorted(scores, key=lambda e: (scores[e], e))[:len(noisy)]
    return len(set(ranked) & noisy) / len(noisy)


def test_tags_go_round_the_loop_to_verdicts_in_the_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = multilabel_support.tickets(300, noise=0.1, seed=3)
    home = _home(tmp_path, TICKETS, data)
    mined = mine_step(home, budget=60)
    with open_warehouse(home) as con:
        queue = con.execute("SELECT example_id, given_label, suggested_label FROM review_queue "
                            "WHERE run_id = ? ORDER BY rank", [mined.summary.run_id]).fetchall()
        flags = dict(con.execute("SELECT example_id, reason FROM issues WHERE issue_type = 'label' AND is_issue "
                                 "AND run_id = ?", [mined.summary.run_id]).fetchall())
        client = FakeReviewClient()
        pushed = push_queue(con, client, home.config)
    queued = {e for e, _, _ in queue}
    # The queue is the flagged tag sets; at least 90 % of its label flags are injected errors.
    assert len(set(flags) & data.noisy) >= 0.9 * len(flags) and len(flags) >= 0.8 * len(data.noisy)
    for e, reason in flags.items():
        assert "likely missing" in reason or "likely wrong" in reason
    # The review task shows the suggestion as ticked tags and names the suspect tags.
    task_data = {t["data"]["example_id"]: t for t in client.tasks.values()}
    e = next(iter(set(flags) & queued))
    assert task_data[e]["data"]["label_note"] == flags[e]
    suggested = dict((q[0], q[2]) for q in queue)[e]
    assert task_data[e]["predictions"][0]["result"][0]["value"]["choices"] == json.loads(suggested)
    label_task = task_for(home.config.dataset)
    oracle = read_oracle(oracle_path(home), label_task)
    with open_warehouse(home) as con:
        classes = load_classes(con)
    answered = simulate_reviews(client, pushed.project_id, oracle, classes, accuracy=1.0, label_task=label_task)
    assert answered.answered == len(queued)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
        in_force = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        sources = dict(con.execute("SELECT example_id, source FROM current_labels").fetchall())
    assert pulled.review_events == len(queued) and pulled.discards == 0
    # Every reviewed example now carries its true tag set, recorded as a review verdict.
    for e in queued:
        assert in_force[e] == json.dumps(sorted(data.truth[e]), separators=(",", ":")) and sources[e] == "review"
    fixed = sum(1 for e in data.noisy if in_force[e] == json.dumps(sorted(data.truth[e]), separators=(",", ":")))
    assert fixed >= 0.8 * len(data.noisy)
    # Retrain, gate on gold, serve; evaluate --file --json and predict FILE answer in tags.
    from data_engine.cli import main as cli_main
    from data_engine.ship.step import ship_step

    ingest_step(home, [multilabel_support.tickets(100, noise=0.0, seed=9).write_gold(home.root)], gold=True)
    with open_warehouse(home) as con:
        shipped = ship_step(con, home)
    assert shipped.verdict.promote and shipped.verdict.reason.startswith("first model: no champion yet; accuracy")
    held_out = tmp_path / "held_out.jsonl"
    test = multilabel_support.tickets(80, noise=0.0, seed=10)
    held_out.write_text("".join(json.dumps({"id": i, "text": x, "tags": t}) + "\n"
                                for i, x, t in zip(test.frame["id"], test.frame["text"], test.frame["tags"])))
    capsys.readouterr()
    assert cli_main(["--home", str(home.root), "evaluate", "--file", str(held_out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"micro_f1", "macro_f1", "exact_match", "per_tag_recall", "n"} <= set(figures) and figures["n"] == 80
    assert figures["micro_f1"] > 0.9 and set(figures["per_tag_recall"]) <= set(data.tags)
    assert cli_main(["--home", str(home.root), "predict", str(held_out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:3] == ["id", "predicted_tags", "predicted_score"]


@pytest.mark.parametrize("seed", [0, 1])
def test_label_flags_match_cleanlab_on_a_5_fold_model_of_the_same_features(tmp_path: Path, seed: int) -> None:
    """The engine (its default members for tables, one-vs-rest, calibrated, mixed) against cleanlab's
    multi-label scores on 5-fold one-vs-rest logistic regression of the same features."""
    from cleanlab.multilabel_classification.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = multilabel_support.table(1000, noise=0.1, seed=seed)
    config = {"dataset": {"name": "rows", "modality": "tabular", "task": "multilabel", "id_column": "id",
                          "label_column": "tags", "feature_columns": [f"x{j}" for j in range(20)],
                          "classes": data.tags},
              "mining": {"n_jobs": 1}}
    home = _home(tmp_path, config, data)
    mined = mine_step(home)
    with open_warehouse(home) as con:
        scores = dict(con.execute("SELECT example_id, score FROM issues WHERE issue_type = 'label' AND run_id = ?",
                                  [mined.summary.run_id]).fetchall())
    engine = _flag_f1_at_m(scores, data.noisy)
    X = data.frame[[f"x{j}" for j in range(20)]].to_numpy()
    Y = np.array([[t in given for t in data.tags] for given in data.frame["tags"]], dtype=int)
    baseline_model = OneVsRestClassifier(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))
    probs = cross_val_predict(baseline_model, X, Y, cv=KFold(5, shuffle=True, random_state=seed), method="predict_proba")
    given = [list(np.flatnonzero(row)) for row in Y]
    baseline = _flag_f1_at_m(dict(zip(data.frame["id"], get_label_quality_scores(given, probs))), data.noisy)
    print(f"seed {seed}: engine F1@m {engine:.3f}, cleanlab + 5-fold logistic regression {baseline:.3f}")
    assert engine >= baseline - 0.02


def _held_out_micro_f1(home, test: multilabel_support.TagData) -> float:
    """The champion's micro-F1 on held-out tickets (the true tags)."""
    from data_engine.ship.evaluation import evaluate_predictions, predict_gold
    from data_engine.ship.registry import current_champion

    label_task = task_for(home.config.dataset)
    with open_warehouse(home) as con:
        champion = current_champion(con)
    truth = [json.dumps(sorted(test.truth[i]), separators=(",", ":")) for i in test.frame["id"]]
    pred = predict_gold(home, champion, test.frame.drop(columns=["tags"]))
    return evaluate_predictions(np.asarray(truth), pred, task=label_task, classes=test.tags).figures["micro_f1"]


def test_one_round_of_the_loop_recovers_the_noisy_to_clean_gap(tmp_path: Path) -> None:
    """Noisy labels -> mine (1.5 reviews per injected error) -> the simulated reviewer -> pull ->
    retrain -> gate -> the served model, against the same model on clean labels; /predict answers tags."""
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app
    from data_engine.ship.step import ship_step

    config = {**TICKETS, "gate": {"metric": "macro_f1"}}
    data = multilabel_support.tickets(400, noise=0.25, seed=5, words_per_tag=1)
    test = multilabel_support.tickets(300, noise=0.0, seed=6, words_per_tag=1)
    gold = multilabel_support.tickets(150, noise=0.0, seed=7, words_per_tag=1)
    homes = {}
    for name, frame in (("noisy", data.frame), ("clean", data.frame.assign(tags=[data.truth[i] for i in data.frame["id"]]))):
        home = make_home(tmp_path, config, name=name)
        ingest_step(home, [multilabel_support.TagData(frame, data.tags, data.truth, data.noisy).write(home.root)])
        ingest_step(home, [gold.write_gold(home.root)], gold=True)
        with open_warehouse(home) as con:
            assert ship_step(con, home).verdict.promote
        homes[name] = home
    noisy_f1, clean_f1 = (_held_out_micro_f1(homes[n], test) for n in ("noisy", "clean"))
    home = homes["noisy"]
    budget = int(1.5 * len(data.noisy))
    label_task = task_for(home.config.dataset)
    client = FakeReviewClient()
    spent, rounds = 0, []
    for _ in range(3):  # rounds until the budget is spent or nothing is left to review
        if spent >= budget:
            break
        mine_step(home, budget=budget - spent)
        with open_warehouse(home) as con:
            pushed = push_queue(con, client, home.config)
            classes = load_classes(con)
        if pushed.sent == 0:
            break
        spent += pushed.sent
        simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), label_task), classes,
                         accuracy=0.98, label_task=label_task)
        with open_warehouse(home) as con:
            pull_verdicts(con, client, home.config)
            shipped = ship_step(con, home)
        rounds.append((pushed.sent, _held_out_micro_f1(home, test), shipped.verdict.reason))
    after_f1 = rounds[-1][1]
    print(f"held-out micro-F1: noisy {noisy_f1:.4f}, clean {clean_f1:.4f}; rounds (reviews, micro-F1, gate): {rounds}")
    assert spent <= budget
    assert clean_f1 > noisy_f1 and after_f1 - noisy_f1 >= 0.8 * (clean_f1 - noisy_f1)
    with TestClient(create_app(home)) as http:
        r = http.post("/predict", json={"rows": [{"text": "charged twice on my invoice, production is down"}]})
    assert r.status_code == 200
    answer = r.json()["predictions"][0]
    assert set(answer) == {"tags", "probabilities"} and set(answer["probabilities"]) == set(data.tags)
    assert answer["tags"] == sorted(t for t, p in answer["probabilities"].items() if p >= 0.5)
