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
    from data_engine.demo.loop import gold_measured
    from tests.homes import make_home

    home = make_home(tmp_path)
    with open_warehouse(home):
        pass
    assert gold_measured(home, 50) == (50, "")  # no champion yet: the stored gold
    with open_warehouse(home) as con:
        con.execute("INSERT INTO models (version, label_snapshot, train_size, model_spec, classes, input_schema, "
                    "metrics, artifact_path, sha256, status) VALUES (1, 0, 10, 'm', '[]', '{}', ?, 'a', 's', 'champion')",
                    [json.dumps({"n_gold": 37, "gold_leaked": 13})])
    assert gold_measured(home, 50) == (37, "; 13 of the 50 stored gold examples left out as copies of training examples")
    assert gold_measured(home, 37) == (37, "")
