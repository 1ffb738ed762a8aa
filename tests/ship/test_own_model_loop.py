"""The loop with the user's trainer ([model] trainer = "command"): mine on its out-of-fold predictions,
train, gate and promote its candidate, `predict FILE` through its `predict`; a failing trainer
registers nothing."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.homes import digits, make_home
from tests.loop_support import PIXELS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _config(command: list[str]) -> dict:
    return {"mining": {"folds": 3}, "model": {"trainer": "command", "command": command, "timeout_s": 120}}


def test_mine_train_gate_predict_with_the_example_trainer(tmp_path, capsys) -> None:
    home = make_home(tmp_path, _config([sys.executable, str(EXAMPLE)]), seed=0, n_train=200, n_gold=100,
                     n_unlabeled=40, noise=0.1)
    code, out, err = _cli(capsys, "--home", str(home.root), "mine")
    assert code == 0, err
    with open_warehouse(home) as con:
        specs = {r[0] for r in con.execute("SELECT DISTINCT model_spec FROM predictions WHERE kind = 'oof'").fetchall()}
    assert specs and all(s.startswith("command/") and "/cmd=" in s for s in specs)
    code, out, err = _cli(capsys, "--home", str(home.root), "train")
    assert code == 0, err
    code, out, err = _cli(capsys, "--home", str(home.root), "evaluate")
    assert code == 0, err
    assert "pass" in out.lower(), out
    code, out, err = _cli(capsys, "--home", str(home.root), "deploy", "promote")
    assert code == 0, err
    with open_warehouse(home) as con:
        champion = registry.current_champion(con)
        model = registry.load_model(home, champion)
    # The champion is the trainer's model: its directory travels, hashed, inside the engine's artifact.
    assert type(model).__name__ == "CommandClassifier" and len(model.model_sha256_) == 64
    X, _ = digits()
    frame = pd.DataFrame(X[-30:], columns=PIXELS)
    frame.insert(0, "id", [f"q{i}" for i in range(30)])
    path = tmp_path / "ask.csv"
    frame.to_csv(path, index=False)
    code, out, err = _cli(capsys, "--home", str(home.root), "predict", str(path))
    assert code == 0, err
    assert len(out.strip().splitlines()) == 31
    served = pd.read_csv(io.StringIO(out))
    labeled = frame.assign(label=[str(v) for v in digits()[1][-30:]])
    labeled.to_csv(tmp_path / "labeled.csv", index=False)
    code, out, err = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(tmp_path / "labeled.csv"),
                          "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] > 0.6
    # Equal to what the trainer's own predict returns for the same rows.
    probs = model.predict_proba(frame[PIXELS])
    assert (served["predicted_label"].astype(str).to_numpy() == model.classes_[probs.argmax(axis=1)].astype(str)).all()
    np.testing.assert_allclose(served[[f"p_{c}" for c in model.classes_]].to_numpy(), probs, atol=1e-6)


# A trainer whose fit works and whose predict writes NaN: fit's check of predict catches it.
NAN_PREDICT = """import sys, pandas as pd, numpy as np
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
if sys.argv[1] == "fit":
    open(args["--out"] + "/m", "w").write("x"); sys.exit(0)
X = pd.read_parquet(args["--input"])
p = pd.DataFrame({"example_id": X["example_id"]})
for c in [str(i) for i in range(10)]:
    p[c] = np.nan
p.to_parquet(args["--out"], index=False)
"""


@pytest.mark.parametrize(("script", "message"), [
    ("import sys\nprint('ValueError: the trainer broke', file=sys.stderr)\nsys.exit(2)\n",
     "exited with status 2; last stderr lines:\nValueError: the trainer broke"),
    (NAN_PREDICT, "is nan (probabilities must be finite"),
])
def test_a_failing_trainer_registers_nothing(tmp_path, capsys, script: str, message: str) -> None:
    path = tmp_path / "broken.py"
    path.write_text(script)
    home = make_home(tmp_path, _config([sys.executable, str(path)]), seed=0, n_train=100, n_gold=60,
                     n_unlabeled=10)
    for step in (["train"], ["mine"]):
        code, out, err = _cli(capsys, "--home", str(home.root), *step)
        assert code != 0 and message in err, (step, err)
    with open_warehouse(home) as con:
        assert registry.list_models(con) == []
        assert registry.current_champion(con) is None
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 0
    assert not list(home.models.glob("*.skops"))
