"""Each fault of the user's trainer, in the loop with a champion already deployed: the run fails with
the reason (the trainer's last stderr lines when it wrote any), nothing is registered or stored, the
ledger and the champion do not change, and the next run, with the trainer fixed, trains again."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.ship import registry
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"
TIMEOUT_S = 8  # the faulty trainer starts in about 1 s; a hang is stopped after this

# A trainer whose fit keeps the manifest's classes and whose predict writes uniform probabilities,
# except for the one fault named FAULT.
FAULTY = '''
import json, sys, time
import numpy as np, pandas as pd
FAULT = {fault!r}
cmd, args = sys.argv[1], dict(zip(sys.argv[2::2], sys.argv[3::2]))
if cmd == "fit":
    print("loading 120 rows", file=sys.stderr)
    if FAULT == "exit":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("RuntimeError: CUDA out of memory", file=sys.stderr)
        sys.exit(1)
    if FAULT == "hang":
        print("epoch 1 of 1000", file=sys.stderr, flush=True)
        time.sleep(120)
    classes = json.load(open(args["--manifest"]))["classes"]
    json.dump(classes, open(args["--out"] + "/classes.json", "w"))
    sys.exit(0)
classes = json.load(open(args["--model"] + "/classes.json"))
X = pd.read_parquet(args["--input"])
p = pd.DataFrame({{c: np.full(len(X), 1 / len(classes)) for c in classes}})
p.insert(0, "example_id", X["example_id"])
if FAULT == "missing_ids":
    p = p.iloc[1:]
if FAULT == "wrong_columns":
    p = p.rename(columns={{classes[0]: "class_" + classes[0]}})
if FAULT == "nan":
    p.loc[2, classes[1]] = float("nan")
if FAULT == "not_one":
    p[classes[0]] += 0.5
if FAULT != "no_file":
    p.to_parquet(args["--out"], index=False)
'''

FAULTS = [
    ("exit", "trainer `fit` exited with status 1; last stderr lines:\nloading 120 rows\n"
             "Traceback (most recent call last):\nRuntimeError: CUDA out of memory"),
    ("hang", f"trainer `fit` ran past model.timeout_s = {TIMEOUT_S} s and was stopped; last stderr lines:\n"
             "loading 120 rows\nepoch 1 of 1000"),
    ("no_file", "trainer `predict` wrote no PRED.parquet"),
    ("missing_ids", "PRED.parquet misses 1 of"),
    ("wrong_columns", "PRED.parquet has no probability column for class '0'"),
    ("nan", "column '1' is nan (probabilities must be finite and >= 0)"),
    ("not_one", "sum to 1.5, not 1"),
]


def _cli(capsys, home: Home, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--home", str(home.root), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _use(home: Home, command: list[str]) -> None:
    """Point the home's [model] command at ``command`` (the config is read anew by each CLI call)."""
    text = home.config_path.read_text(encoding="utf-8")
    start = text.index("command = [")
    end = text.index("]", start) + 1
    home.config_path.write_text(text[:start] + f"command = {command!r}".replace("'", '"') + text[end:],
                                encoding="utf-8")


def _state(home: Home) -> dict:
    """What a failed run must leave as it was: models, champion, ledger, out-of-fold predictions, issues,
    the champion pointer and the artifacts."""
    with open_warehouse(home, read_only=True) as con:
        champion = registry.current_champion(con)
        return {
            "models": [(m.version, m.status) for m in registry.list_models(con)],
            "champion": champion.version if champion else None,
            "ledger": con.execute("SELECT count(*), max(event_id) FROM label_ledger").fetchone(),
            # The champion's scores of new rows come from its own stored model (mining asks it first).
            "oof": con.execute("SELECT count(*) FROM predictions WHERE kind <> 'champion'").fetchone()[0],
            "issues": con.execute("SELECT count(*) FROM issues").fetchone()[0],
            "pointer": (home.models / "CHAMPION.json").read_text(encoding="utf-8"),
            "artifacts": sorted(p.name for p in home.models.iterdir()),
        }


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory) -> Home:
    """A home whose champion v1 is the example trainer's model."""
    root = tmp_path_factory.mktemp("own-model-faults")
    config = {"mining": {"folds": 3},
              "model": {"trainer": "command", "command": [sys.executable, str(EXAMPLE)], "timeout_s": TIMEOUT_S * 15}}
    home = make_home(root, config, seed=0, n_train=120, n_gold=60, n_unlabeled=10)
    for step in (["train"], ["deploy", "promote"]):
        assert main(["--home", str(home.root), *step]) == 0, step
    return home


@pytest.mark.parametrize(("fault", "message"), FAULTS, ids=[f for f, _ in FAULTS])
def test_a_trainer_fault_fails_the_run_changes_nothing_and_the_next_run_retries(
        champion_home: Home, tmp_path: Path, capsys, fault: str, message: str) -> None:
    home = Home(tmp_path / "home")
    shutil.copytree(champion_home.root, home.root)
    script = tmp_path / "faulty.py"
    script.write_text(FAULTY.format(fault=fault), encoding="utf-8")
    _use(home, [sys.executable, str(script)])
    text = home.config_path.read_text(encoding="utf-8")
    home.config_path.write_text(text.replace(f"timeout_s = {TIMEOUT_S * 15}", f"timeout_s = {TIMEOUT_S}"),
                                encoding="utf-8")
    before = _state(home)
    assert before["champion"] == 1
    for step in (["train"], ["mine"]):
        code, out, err = _cli(capsys, home, *step)
        assert code == 2, (step, out, err)
        assert message in err, (step, err)
        assert err.count("Traceback") == message.count("Traceback"), err  # the trainer's, not the engine's
        assert _state(home) == before, step
    # The next run, with the trainer fixed in place (the same command), trains again: the failed run
    # left nothing that blocks it.
    script.write_text(f"import runpy\nrunpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n", encoding="utf-8")
    home.config_path.write_text(text, encoding="utf-8")  # and the example's own time limit again
    code, out, err = _cli(capsys, home, "train")
    assert code == 0, err
    after = _state(home)
    assert after["models"][:1] == before["models"] and after["models"][1][0] == 2
    assert after["champion"] == 1 and after["ledger"] == before["ledger"]
