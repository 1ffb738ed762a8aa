"""A trainer of boxes or spans that writes malformed predictions, in the loop: `mine` and `train` fail
with the reason naming file, row and column, nothing is stored or registered (no out-of-fold
predictions, no model, no gate verdict), and the next run with the trainer fixed trains."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from data_engine.demo.drawn_boxes import inject_box_errors, make_scenes, write_scenes
from data_engine.demo.entities import inject_errors, make_texts
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.ship import test_own_model_boxes_loop as boxes_loop
from tests.ship import test_own_model_spans_loop as spans_loop
from tests.ship.own_model_support import cli

# The example trainer, except that predict writes a NaN where the task's numbers go.
BROKEN = {
    "detection": ("boxes", "rows.append(json.dumps([{'label': 'disc', 'x': float('nan'), 'y': 1.0, 'w': 2.0, "
                           "'h': 2.0, 'score': 0.5}]))",
                  r"trainer `predict`: PRED.parquet: row example_id='s\d{4}', column 'boxes'\[0\]: box .* x must be a "
                  r"number of pixels"),
    "ner": ("spans", "rows.append(json.dumps([{'start': 0, 'end': 3, 'label': 'PER', 'score': float('nan')}]))",
            r"trainer `predict`: PRED.parquet: row example_id='n\d+', key 'spans'\[0\]: 'score' must be a number in \[0, 1\]"),
}


def _home(tmp_path: Path, task: str, command: list[str]):
    if task == "detection":
        home = make_home(tmp_path, boxes_loop.config(command))
        ingest_step(home, [write_scenes(home.landing, inject_box_errors(make_scenes(24, seed=1), rate=0.2, seed=2),
                                        prefix="s", name="train")])
        ingest_step(home, [write_scenes(home.landing / "gold", make_scenes(10, seed=5), prefix="g", name="gold",
                                        truth=True)], gold=True)
        return home
    home = make_home(tmp_path, spans_loop.config(command))
    train = inject_errors(make_texts(40, seed=31), rate=0.1, seed=32)
    ingest_step(home, [spans_loop.write(home.landing / "train.jsonl", [(e.text, e.given_label) for e in train], "n")])
    gold = [(e.text, e.true_label) for e in inject_errors(make_texts(12, seed=33), rate=0.0)]
    ingest_step(home, [spans_loop.write(home.landing / "gold" / "gold.jsonl", gold, "g")], gold=True)
    return home


@pytest.mark.parametrize("task", ["detection", "ner"])
def test_malformed_predictions_fail_mine_and_train_and_nothing_is_stored(tmp_path, capsys, task):
    example = boxes_loop.EXAMPLE if task == "detection" else spans_loop.EXAMPLE
    _, broken_line, message = BROKEN[task]
    source = example.read_text(encoding="utf-8")
    good_line = "rows.append(json.dumps(found))" if task == "detection" else \
        "rows.append(json.dumps(sorted(found, key=lambda s: s[\"start\"])))"
    assert good_line in source
    script = tmp_path / "trainer.py"
    script.write_text(source.replace(good_line, broken_line), encoding="utf-8")
    home = _home(tmp_path, task, [sys.executable, str(script)])
    h = ["--home", str(home.root)]
    for step in ("mine", "train"):
        code, _, err = cli(capsys, *h, step)
        assert code == 2 and "Traceback" not in err
        assert re.search(message, err), err
    with open_warehouse(home, read_only=True) as con:
        counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("predictions", "models", "gate_verdicts", "mining_runs")]
    assert counts == [0, 0, 0, 0]
    assert not list((home.root / "models").glob("*.skops"))
    script.write_text(source, encoding="utf-8")  # fixed in place: the same command
    for step in ("mine", "train"):
        code, _, err = cli(capsys, *h, step)
        assert code == 0, err
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 1
