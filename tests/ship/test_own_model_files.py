"""`predict FILE` and `evaluate --file` of a champion of the user's trainer start its `predict` once
per file, whatever the number of rows (never once per row); the answers are its own predictions."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pandas as pd

from tests.homes import digits, make_home
from tests.loop_support import PIXELS
from tests.ship.own_model_support import cli, promoted_champion

# A light trainer (pandas and numpy only, so each start is short) that logs each start's sub-command, one
# line per start of the program; its model: each class's mean image, a row's probabilities falling with its
# distance to each. A real signal, not a prior: the gate refuses a first model no better than always answering
# the majority class (the class shares this trainer answered before scored below it on gold).
COUNTING = """import json, sys
import numpy as np
import pandas as pd
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
with open({log!r}, "a") as fh:
    fh.write(sys.argv[1] + "\\n")
if sys.argv[1] == "fit":
    train = pd.read_parquet(args["--train"])
    cols = [c for c in train.columns if c.startswith("px")]
    centres = train.groupby("label")[cols].mean().sort_index()
    json.dump({{"cols": cols, "classes": [str(c) for c in centres.index], "centres": centres.to_numpy().tolist()}},
              open(args["--out"] + "/model.json", "w"))
    sys.exit(0)
m = json.load(open(args["--model"] + "/model.json"))
X = pd.read_parquet(args["--input"])
d = np.sqrt(((X[m["cols"]].to_numpy(dtype=float)[:, None, :] - np.array(m["centres"])[None]) ** 2).sum(axis=2))
w = np.exp(-(d - d.min(axis=1, keepdims=True)) / 5.0)
p = pd.DataFrame(w / w.sum(axis=1, keepdims=True), columns=m["classes"])
p.insert(0, "example_id", X["example_id"])
p.to_parquet(args["--out"], index=False)
"""


def test_predict_file_and_evaluate_file_start_the_trainer_once_per_file(tmp_path, capsys):
    log = tmp_path / "starts.log"
    script = tmp_path / "counting.py"
    script.write_text(COUNTING.format(log=str(log)), encoding="utf-8")
    config = {"model": {"trainer": "command", "command": [sys.executable, str(script)], "timeout_s": 120}}
    home = make_home(tmp_path, config, seed=0, n_train=100, n_gold=50, n_unlabeled=0)
    model = promoted_champion(capsys, home)
    X, y = digits()
    rows = np.arange(1000, 1500)  # 500 rows the trainer never saw
    frame = pd.DataFrame(X[rows], columns=PIXELS)
    frame.insert(0, "id", [f"q{i}" for i in rows])
    ask = tmp_path / "ask.csv"
    frame.to_csv(ask, index=False)

    log.write_text("", encoding="utf-8")
    code, out, err = cli(capsys, "--home", str(home.root), "predict", str(ask))
    assert code == 0, err
    assert log.read_text().split() == ["predict"]  # one start for 500 rows
    served = pd.read_csv(io.StringIO(out))
    own = model.predict_proba(pd.DataFrame(X[rows], columns=PIXELS))
    assert len(served) == 500
    np.testing.assert_allclose(served[[f"p_{c}" for c in model.classes_]].to_numpy(dtype=float), own, rtol=1e-9)

    labeled = frame.assign(label=y[rows])
    labeled.to_csv(tmp_path / "labeled.csv", index=False)
    log.write_text("", encoding="utf-8")
    code, out, err = cli(capsys, "--home", str(home.root), "evaluate", "--file", str(tmp_path / "labeled.csv"),
                          "--json")
    assert code == 0, err
    assert log.read_text().split() == ["predict"]
    figures = json.loads(out)
    accuracy = float(np.mean(model.classes_[own.argmax(axis=1)] == y[rows]))
    assert figures["n"] == 500 and abs(figures["accuracy"] - accuracy) < 1e-9
