"""A model trained before `classes rename` is read with the classes' current names: the gate scores
the champion fairly, a better candidate is promoted, and the served champion answers with the new name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.ingest.classes import rename_class
from data_engine.ship import gate, registry
from data_engine.ship.deploy import promote, read_pointer, sync_pointer
from data_engine.ship.evaluation import load_gold, predict_gold
from data_engine.ship.files import evaluate_file
from data_engine.ship.serve import ModelHolder, predict_rows
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.conftest import NEXT_EVENT_ID
from tests.cli.test_cli_core import cli
from tests.homes import digits
from tests.loop_support import make_home, seed_digits


def test_a_champion_trained_before_a_rename_is_scored_and_served_under_the_new_name(tmp_path):
    home = make_home(tmp_path)
    # The champion learns from labels 40% wrong: a candidate on the corrected labels is better.
    info = seed_digits(home, n_train=400, n_gold=200, n_unlabeled=0, noise=0.4)
    with open_warehouse(home) as con:
        first = train_candidate(con, home).record
        assert gate.run_gate(con, home).promote
        promote(con, home, first.version, reason="first")
        # The champion's gold accuracy before any rename.
        gold = load_gold(con, home.config)
        before = float(np.mean(predict_gold(home, first, gold) == gold["label"].to_numpy()))
        assert before < 0.9
        rename_class(con, home.config.dataset, "3", "three")
        sync_pointer(con, home)
        champ = registry.current_champion(con)
        gold = load_gold(con, home.config)
        predicted = predict_gold(home, champ, gold)
        # The rename alone changes nothing on gold: the same hits under the new name.
        assert "3" not in set(predicted) and "three" in set(predicted) and "3" not in set(gold["label"])
        assert float(np.mean(predicted == gold["label"].to_numpy())) == pytest.approx(before)
        assert champ.classes == tuple("three" if c == "3" else c for c in first.classes)
        # A reviewer corrects the training labels (the new name for 3): the candidate is better and promoted.
        ids = info["ids"][info["parts"]["train"]]
        truth = np.where(info["y"][info["parts"]["train"]] == "3", "three", info["y"][info["parts"]["train"]])
        con.executemany(
            "INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
            f"VALUES ({NEXT_EVENT_ID}, ?, 1, ?, 'review', 't')", [[e, lab] for e, lab in zip(ids, truth)])
        better = train_candidate(con, home).record
        verdict = gate.run_gate(con, home, version=better.version)
        pointer = read_pointer(home)
    assert verdict.candidate.accuracy > verdict.champion.accuracy + 0.1
    assert verdict.champion.accuracy == pytest.approx(before)
    assert not verdict.unmeasured and verdict.promote, verdict.reason
    # The served champion (still the one trained before the rename) answers with the new name.
    assert pointer.renamed == {"3": "three"} and "three" in pointer.classes
    holder = ModelHolder(home)
    assert holder.refresh()
    three = gold[gold["label"] == "three"].head(5)
    answers = predict_rows(holder.current, three[list(first.input_schema)])["predictions"]
    assert {a["label"] for a in answers} <= set(pointer.classes) and any(a["label"] == "three" for a in answers)


def _file(path, X, labels) -> None:
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    frame.insert(0, "label", labels)
    frame.insert(0, "id", [f"f{i}" for i in range(len(frame))])
    frame.to_csv(path, index=False)


def test_evaluate_file_reads_an_old_class_name_through_the_rename_and_says_an_unknown_one_once(tmp_path):
    home = make_home(tmp_path)
    seed_digits(home, n_train=300, n_gold=100, n_unlabeled=0)
    with open_warehouse(home) as con:
        first = train_candidate(con, home).record
        promote(con, home, first.version, reason="first")
    X, y = digits()
    X, y = X[1500:1600], y[1500:1600]
    n3 = int((y == "3").sum())
    before, after, unknown = tmp_path / "before.csv", tmp_path / "after.csv", tmp_path / "unknown.csv"
    _file(before, X, y)
    _file(after, X, np.where(y == "3", "three", y))
    _file(unknown, X, np.where(y == "3", "trois", y))
    figures = evaluate_file(home, before).evaluation
    with open_warehouse(home) as con:
        rename_class(con, home.config.dataset, "3", "three")
    old_names, new_names = evaluate_file(home, before), evaluate_file(home, after)
    # The file written before the rename keeps every row; its figures are the champion's of before.
    assert old_names.evaluation.n_gold == new_names.evaluation.n_gold == figures.n_gold == 100
    assert old_names.evaluation.accuracy == new_names.evaluation.accuracy == pytest.approx(figures.accuracy)
    assert old_names.evaluation.per_class_recall["three"] == pytest.approx(figures.per_class_recall["3"])
    assert old_names.rejected == [] and old_names.notes == [
        f"{before}: labels read under the class's new name (`data-engine classes rename`): '3' as 'three' ({n3} rows)"]
    assert new_names.notes == []
    proc = cli("evaluate", "--file", unknown, home=home.root)
    assert proc.returncode == 0, proc.stderr
    rows = [i + 1 for i in np.flatnonzero(y == "3")]
    # One line names the label, its rows and the fix; the rows are not listed again one by one.
    assert proc.stderr.splitlines() == [
        f"note: {unknown}: {n3} rows left out (rows {', '.join(map(str, rows))}): their label is not one of the "
        f"classes: 'trois' ({n3} rows); relabel them in the file (`data-engine classes` lists the classes), "
        "or if new, add it with `data-engine classes add trois`"]
    assert f"{100 - n3} labeled rows" in proc.stdout
