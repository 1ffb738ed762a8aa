"""Bulk actions by a person: ``discard`` / ``relabel --where``: one event per example, never gold,
reviewed only when asked, the condition checked and run read-only."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.errors import EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.store.ledger import append_events
from data_engine.review.rules import apply_rule, check_where
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse


@pytest.fixture()
def home(make_home: Callable[..., Home]) -> Home:
    """Ten training rows (x = 0..9), two gold rows (x = 100, 101), row r1 reviewed."""
    home = make_home()
    train = pd.DataFrame({"id": [f"r{i}" for i in range(10)], "x": range(10),
                          "color": ["red"] * 5 + ["blue"] * 5, "label": ["a"] * 5 + ["b"] * 5})
    gold = pd.DataFrame({"id": ["g0", "g1"], "x": [100, 101], "color": ["red", "red"], "label": ["a", "b"]})
    with open_warehouse(home) as con:
        for name, frame, is_gold in (("train.csv", train, False), ("gold.csv", gold, True)):
            path = home.landing / name
            frame.to_csv(path, index=False)
            ingest_file(con, home.config.dataset, path, gold=is_gold)
        append_events(con, [{"example_id": "r1", "example_version": 1, "label": "b", "source": "review",
                             "actor": "tester", "detail": "{}"}])
    return home


def events(home: Home) -> pd.DataFrame:
    with open_warehouse(home) as con:
        return con.execute("SELECT example_id, label, source, actor, detail FROM label_events "
                           "WHERE source = 'rule' ORDER BY example_id").fetchdf()


def in_force(home: Home) -> pd.DataFrame:
    with open_warehouse(home) as con:
        return con.execute("SELECT example_id, label, is_discarded, source FROM current_labels "
                           "ORDER BY example_id").fetchdf().set_index("example_id")


def test_discard_writes_one_rule_event_per_example(home: Home) -> None:
    result = apply_rule(home, "x >= 6 AND NOT is_gold", discard=True, actor="tester")
    assert (result.matched, result.changed, result.unchanged) == (4, 4, 0)
    ev = events(home)
    assert list(ev["example_id"]) == ["r6", "r7", "r8", "r9"] and ev["label"].isna().all()
    assert (ev["source"] == "rule").all() and json.loads(ev["detail"].iloc[0]) == {
        "rule": "x >= 6 AND NOT is_gold", "action": "discard"}
    labels = in_force(home)
    assert labels.loc[["r6", "r9"], "is_discarded"].all() and not labels.loc["r5", "is_discarded"]
    # Again: nothing left to change, no new event.
    again = apply_rule(home, "x >= 6 AND NOT is_gold", discard=True)
    assert (again.changed, again.unchanged) == (0, 4) and len(events(home)) == 4


def test_relabel_and_dry_run(home: Home) -> None:
    dry = apply_rule(home, "color = 'blue'", label="a", dry_run=True)
    assert dry.changed == 5 and len(dry.sample) == 5 and events(home).empty
    apply_rule(home, "color = 'blue'", label="a")
    labels = in_force(home)
    assert (labels.loc[[f"r{i}" for i in range(5, 10)], "label"] == "a").all()
    assert (labels.loc[[f"r{i}" for i in range(5, 10)], "source"] == "rule").all()
    with pytest.raises(EngineError, match="not one of the dataset's classes"):
        apply_rule(home, "color = 'blue'", label="zebra")


def test_gold_is_never_touched_and_reviewed_only_when_asked(home: Home) -> None:
    for flag in (False, True):
        with pytest.raises(EngineError, match="2 gold example"):
            apply_rule(home, "x > 50 OR x < 0", discard=True, include_reviewed=flag)
    # A condition cannot pass gold off as training data (the engine reads the flags itself); gold ids
    # live in their own id space (gold:<id>).
    with pytest.raises(EngineError, match="gold"):
        apply_rule(home, "example_id = 'gold:g0') UNION SELECT 'gold:g1' FROM rule_scope WHERE (true", discard=True)
    with pytest.raises(EngineError, match="1 reviewed example"):
        apply_rule(home, "x < 3", discard=True)
    result = apply_rule(home, "x < 3", discard=True, include_reviewed=True)
    assert result.changed == 3 and in_force(home).loc["r1", "source"] == "rule"
    assert not in_force(home).loc[["gold:g0", "gold:g1"], "is_discarded"].any()
    assert events(home)["example_id"].isin(["gold:g0", "gold:g1", "g0", "g1"]).sum() == 0


@pytest.mark.parametrize("where", ["x > 1; DROP TABLE examples", "x > 1 -- comment", "", "x >", "x>1;DROP TABLE t",
                                   "x /* c */ > 1", "color = 'a' ;",
                                   "x > (SELECT count(*) FROM read_csv('/etc/passwd'))"])
def test_bad_conditions_are_refused(home: Home, where: str) -> None:
    with pytest.raises(EngineError, match="--where"):
        apply_rule(home, where, discard=True)
    assert events(home).empty


def test_check_where_accepts_a_plain_condition() -> None:
    assert check_where("  length(note) < 3 ") == "length(note) < 3"


def test_semicolons_and_dashes_inside_string_literals_are_allowed(home: Home) -> None:
    # Junk rows are full of them (`&nbsp;`, `--`); only statement breaks and comments are refused.
    assert check_where("color LIKE '%&nbsp;%' OR color = '--'") == "color LIKE '%&nbsp;%' OR color = '--'"
    result = apply_rule(home, "color IN ('blue', 'x;y', '--') AND x > 7", discard=True)
    assert result.changed == 2


def test_cli_discard_dry_run_and_refusal(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home.root), "discard", "--where", "x = 9", "--dry-run"]) == 0
    assert "would change 1" in capsys.readouterr().out and events(home).empty
    assert main(["--home", str(home.root), "relabel", "--where", "x >= 0", "--label", "a"]) == 2
    assert "gold" in capsys.readouterr().err
    assert main(["--home", str(home.root), "relabel", "--where", "x = 9", "--label", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 1


def test_the_datasets_own_id_column_works_in_the_condition(home: Home) -> None:
    assert home.config.dataset.id_column == "id"
    result = apply_rule(home, "id IN ('r7', 'r8')", discard=True, actor="tester")
    assert result.matched == 2 and list(events(home)["example_id"]) == ["r7", "r8"]
    # Gold rows answer to their id as written in the user's file, so the gold guard still holds.
    with pytest.raises(EngineError, match="1 gold"):
        apply_rule(home, "id = 'g0'", discard=True)


def test_an_unknown_column_names_the_columns_available(home: Home) -> None:
    with pytest.raises(EngineError, match="--where") as err:
        apply_rule(home, "idx = 'r1'", discard=True)
    message = str(err.value)
    assert "idx" in message and "columns:" in message
    assert all(c in message.split("columns:")[1] for c in ("example_id", "id", "x", "color", "is_reviewed"))


def test_examples_a_rule_decided_are_not_queued_again(home: Home) -> None:
    # A person's relabel/discard rule is a decision about those examples, like a review: mining
    # must not spend review slots asking about them again at the same content version.
    from data_engine.mine.runs import excluded_examples

    apply_rule(home, "x IN (2, 3)", label="b", actor="tester")
    apply_rule(home, "x = 4", discard=True, actor="tester")
    with open_warehouse(home) as con:
        excluded = set(excluded_examples(con))
    assert {"r1", "r2", "r3", "r4"} <= excluded and not excluded & {"r0", "r5", "r9"}
