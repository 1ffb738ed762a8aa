"""The simulated reviewer's oracle for any home: ``HOME/oracle.jsonl`` first, ``oracle.csv`` else;
a missing or malformed oracle is one line naming the file and the row; `demo-loop` speaks of the
data set, not of digits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.demo.loop import _oracle_coverage, landed_labels
from data_engine.errors import EngineError
from data_engine.steps import ingest_step
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import chosen
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.store.warehouse import open_warehouse
from tests.review_support import digits_home, make_queue


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_is_read_in_the_engines_spelling(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "oracle.jsonl", [{"id": 7, "label": 3}, {"id": "a b ", "label": "cat"},
                                                    {"example_id": "x", "label": 2.0}])
    assert read_oracle(path) == {"7": "3", "a b": "cat", "x": "2"}


@pytest.mark.parametrize("content,message", [
    ('{"id": 1, "label": "a"}\n{"id": 2, "label": \n', "line 2: not valid JSON (Expecting value); each line is"),
    ('{"id": 1, "label": "a"}\n[1, "a"]\n', "line 2: not a JSON object; each line is"),
    ('{"id": 1}\n', "line 1: 'label' is missing"),
    ('{"label": "a"}\n', "line 1: 'example_id' is missing"),
    ('{"id": 1, "label": ["a", "b"]}\n', "line 1: 'label' is list"),
    ('{"id": 1, "label": ""}\n', "line 1: 'label' is empty"),
    ('{"id": 1, "label": "a"}\n{"id": "1", "label": "b"}\n', "line 2: id '1' has label 'b' here and 'a' before"),
    ("", "has no rows"),
])
def test_a_malformed_jsonl_oracle_names_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "oracle.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EngineError, match=str(path).replace(".", r"\.") + ".*") as err:
        read_oracle(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_malformed_csv_oracle_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "oracle.csv"
    path.write_text("example_id,label\nd1,3\nd2,\n", encoding="utf-8")
    with pytest.raises(EngineError, match=r"oracle\.csv, row 3: 'label' is empty"):
        read_oracle(path)
    path.write_text("id,truth\nd1,3\n", encoding="utf-8")
    with pytest.raises(EngineError, match="needs the columns example_id,label"):
        read_oracle(path)


def test_missing_oracle_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r'oracle\.jsonl with the true labels, one \{"id": \.\.\., "label": \.\.\.\}'):
        read_oracle(tmp_path / "oracle.csv")


def test_jsonl_is_preferred_and_the_simulated_reviewer_answers_from_it(tmp_path: Path) -> None:
    home, frame = digits_home(tmp_path / "home", n=20)
    make_queue(home, frame)
    assert oracle_path(home) == home.oracle_path  # only oracle.csv so far
    # The user's oracle: the true labels as JSON numbers, under the file's ids.
    _write_jsonl(home.root / "oracle.jsonl",
                 [{"id": i, "label": int(t)} for i, t in zip(frame["id"], frame["true_label"])])
    assert oracle_path(home) == home.root / "oracle.jsonl"
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        project_id = push_queue(con, client, home.config).project_id
    result = simulate_reviews(client, project_id, read_oracle(oracle_path(home)), [str(i) for i in range(10)],
                              accuracy=1.0)
    truth = dict(zip(frame["id"], frame["true_label"]))
    answers = {client.tasks[a["task"]]["data"]["example_id"]: chosen(a["result"]) for a in client.annotations.values()}
    assert result.answered == len(answers) > 0 and all(truth[e] == a for e, a in answers.items())


def test_demo_measures_any_home_from_its_oracle_and_the_landed_labels(tmp_path: Path) -> None:
    home, frame = digits_home(tmp_path / "home", n=30)
    landed = landed_labels(home)
    assert landed.to_dict() == dict(zip(frame["id"], frame["given_label"]))
    oracle = pd.DataFrame({"example_id": frame["id"], "label": frame["true_label"]})
    wrong, n_gold = _oracle_coverage(home, oracle, landed)
    assert wrong == int((frame["given_label"] != frame["true_label"]).sum()) == 10 and n_gold == 0
    # Gold the oracle does not list still counts: it is the set the gate scores (a new user's
    # demo-loop said "on 0 gold examples" beside a 30-example gold set).
    gold = frame.drop(columns=["true_label", "given_label"]).head(4).assign(id=[f"g{i}" for i in range(4)])
    (home.landing / "gold").mkdir(exist_ok=True)
    gold.to_csv(home.landing / "gold" / "gold.csv", index=False)
    assert ingest_step(home, [home.landing / "gold" / "gold.csv"], gold=True)[0].status == "ingested"
    assert _oracle_coverage(home, oracle, landed)[1] == 4
    stranger = pd.DataFrame({"example_id": ["zz1", "zz2"], "label": ["1", "2"]})
    with pytest.raises(EngineError, match="none of its 2 ids is an example of this home"):
        _oracle_coverage(home, stranger, landed)


def test_demo_loop_and_simulate_refuse_a_malformed_oracle_in_one_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    home, _ = digits_home(tmp_path / "home", n=20)
    (home.root / "oracle.jsonl").write_text('{"id": "d1", "label": "3"}\nnot json\n', encoding="utf-8")
    for argv in (["demo-loop"], ["review", "simulate"]):
        assert main(["--home", str(home.root), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("data-engine: error: ") and "oracle.jsonl, line 2: not valid JSON" in err
        assert "\n" not in err and "Traceback" not in err


def test_demo_loop_is_named_for_any_data_set() -> None:
    from data_engine.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert "oracle.jsonl" in helps["demo-loop"] and "seeded digits" not in helps["demo-loop"]
    # What the demo says names the data set (cfg.dataset.name), never "digits".
    source = Path(__file__).resolve().parents[2].joinpath("data_engine/demo/loop.py").read_text(encoding="utf-8")
    said = [line for line in source.splitlines() if "say(" in line and "digit" in line]
    assert not said, said


def test_an_oracle_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "oracle.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": 1, "label": "a"}\n{"id": 2, "label": "b"}\n')
    assert read_oracle(path) == {"1": "a", "2": "b"}


def test_demo_loop_names_the_gold_examples_the_gate_measured_on(tmp_path: Path) -> None:
    """Of 37 stored gold examples, 3 discarded (no label in force) and 4 copies of training rows: the
    champion is scored on 30; only the 4 are worded as copies, the 3 apart."""
    import numpy as np

    from data_engine.demo.loop import gold_measured
    from data_engine.ship.step import gate_and_promote
    from data_engine.ship.training import train_candidate
    from data_engine.store.ledger import append_events
    from tests.homes import FAST_MODEL, digits_split, ingest_rows, make_home

    home = make_home(tmp_path, FAST_MODEL, seed=0, n_train=200, n_gold=0, n_unlabeled=0)
    split = digits_split(n_train=200, n_gold=0, n_unlabeled=0, seed=0)
    X, y, train = split["X"], split["y"], split["parts"]["train"]
    rest = np.setdiff1d(np.arange(len(y)), train)
    with open_warehouse(home) as con:
        ingest_rows(con, home, [f"g{i:02d}" for i in range(33)], X[rest[:33]], list(y[rest[:33]]), batch="gold-1",
                    gold=True)
        ingest_rows(con, home, [f"c{i}" for i in range(4)], X[train[:4]], list(y[train[:4]]), batch="gold-2",
                    gold=True)
        # Gold with no label in force: no engine path makes it (ingest quarantines a gold row without a
        # label, rules refuse gold, the queue holds none), so a discard is written to the ledger.
        append_events(con, [{"example_id": f"gold:g{i}", "example_version": 1, "label": None, "source": "review",
                             "actor": "ann", "detail": "{}"} for i in (30, 31, 32)])
    no_label = "; 3 of the 37 stored gold examples not scored: no label in force"
    assert gold_measured(home, 37) == (34, no_label)  # no champion yet: the labeled gold
    with open_warehouse(home) as con:
        train_candidate(con, home)
        verdict, deployed = gate_and_promote(con, home)
    assert (verdict.n_gold, verdict.gold_leaked, deployed is not None) == (30, 4, True)
    assert gold_measured(home, 37) == (
        30, "; 4 of the 34 labeled gold examples left out as copies of training examples" + no_label)
    # Gold landed after the champion was scored: its copies are not known, so none are claimed.
    with open_warehouse(home) as con:
        ingest_rows(con, home, ["h0"], X[rest[40:41]], list(y[rest[40:41]]), batch="gold-3", gold=True)
    assert gold_measured(home, 38) == (30, "; 3 of the 38 stored gold examples not scored: no label in force")
