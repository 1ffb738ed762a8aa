"""What the user's trainer is given: image paths it can open (absolute, under the manifest's
image_root), the label snapshot, class names (never the mining stage's class indices); and, when
`[model] out_of_fold = "trainer"`, its own out-of-fold predictions on the engine's folds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.errors import EngineError
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from data_engine.trainers.command import CommandClassifier
from tests.homes import make_home
from tests.image_support import image_files_home

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"

# Keeps each fit's TRAIN.parquet and MANIFEST.json in SPY (its first argument), checks that every
# image path opens as a PNG, and predicts the training class frequencies.
SPY = '''
import json, shutil, sys
from pathlib import Path
import pandas as pd
spy, cmd = Path(sys.argv[1]), sys.argv[2]
args = dict(zip(sys.argv[3::2], sys.argv[4::2]))
if cmd == "fit":
    n = len(list(spy.glob("fit-*")))
    keep = spy / f"fit-{n}"
    keep.mkdir(parents=True)
    shutil.copy(args["--train"], keep / "TRAIN.parquet")
    shutil.copy(args["--manifest"], keep / "MANIFEST.json")
    meta = json.load(open(args["--manifest"]))
    train = pd.read_parquet(args["--train"])
    for column, kind in meta.get("column_kinds", {}).items():
        if kind == "image":
            for path in train[column]:
                if open(path, "rb").read(8) != b"\\x89PNG\\r\\n\\x1a\\n":
                    sys.exit(f"not a PNG: {path}")
    prior = train["label"].value_counts(normalize=True).reindex(meta["classes"], fill_value=0.0)
    prior.to_frame("p").to_parquet(Path(args["--out"]) / "prior.parquet")
    sys.exit(0)
prior = pd.read_parquet(Path(args["--model"]) / "prior.parquet")["p"]
X = pd.read_parquet(args["--input"])
p = pd.DataFrame({c: [float(prior[c])] * len(X) for c in prior.index})
p.insert(0, "example_id", X["example_id"])
p.to_parquet(args["--out"], index=False)
'''


def _spy(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "spy.py"
    script.write_text(SPY, encoding="utf-8")
    return [sys.executable, str(script), str(tmp_path / "spy")], tmp_path / "spy"


def test_image_paths_in_train_parquet_open_under_the_manifests_image_root(tmp_path):
    command, spy = _spy(tmp_path)
    model = "\n[model]\ntrainer = \"command\"\ncommand = " + json.dumps(command) + "\ntimeout_s = 60\n"
    home, manifest, _ = image_files_home(tmp_path / "h", n=40, extra_config=model)
    with open_warehouse(home) as con:
        record = train_candidate(con, home).record
    train = pd.read_parquet(spy / "fit-0" / "TRAIN.parquet")
    meta = json.loads((spy / "fit-0" / "MANIFEST.json").read_text())
    assert meta["image_root"] == str((home.root / "images").resolve())
    assert meta["label_snapshot"] == record.label_snapshot
    assert meta["column_kinds"] == {"image": "image"} and meta["classes"] == sorted(set(manifest["label"]))
    paths = train["image"].map(Path)
    assert len(paths) == 40 and all(p.is_absolute() and p.is_file() for p in paths)
    assert all(p.is_relative_to(meta["image_root"]) for p in paths)
    # The row's image is the landed file's content (the engine's copy of it).
    landed = dict(zip(manifest["id"].astype(str), manifest["image"]))
    first = train.iloc[0]
    source = home.landing / "digits" / landed[str(first["example_id"])]
    assert Path(first["image"]).read_bytes() == source.read_bytes()


def test_labels_coded_as_class_indices_reach_the_trainer_as_names(tmp_path):
    command, spy = _spy(tmp_path)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"example_id": [f"e{i}" for i in range(60)], "a": rng.normal(size=60)})
    y = np.array([0, 2] * 30)  # indices into the dataset's classes; "mid" has no example here
    clf = CommandClassifier(command, timeout_s=60, manifest={"class_names": ["neg", "mid", "pos"]}).fit(X, y)
    train = pd.read_parquet(spy / "fit-0" / "TRAIN.parquet")
    assert set(train["label"]) == {"neg", "pos"}
    assert json.loads((spy / "fit-0" / "MANIFEST.json").read_text())["classes"] == ["neg", "pos"]
    assert list(clf.classes_) == [0, 2] and clf.output_columns() == ["neg", "pos"]
    np.testing.assert_allclose(clf.predict_proba(X), [[0.5, 0.5]] * 60)


def test_mining_reads_the_trainers_own_out_of_fold_predictions(tmp_path, capsys):
    config = {"mining": {"folds": 3},
              "model": {"trainer": "command", "command": [sys.executable, str(EXAMPLE)], "timeout_s": 120,
                        "out_of_fold": "trainer"}}
    home = make_home(tmp_path, config, seed=0, n_train=150, n_gold=40, n_unlabeled=10, noise=0.1)
    calls, returned = [], []
    original = CommandClassifier._fit

    def counting(self, X, y, folds):
        calls.append(None if folds is None else np.asarray(folds).copy())
        returned.append(original(self, X, y, folds))
        return returned[-1]

    CommandClassifier._fit = counting
    try:
        assert main(["--home", str(home.root), "mine"]) == 0, capsys.readouterr().err
    finally:
        CommandClassifier._fit = original
    # One fit given the engine's three folds (instead of three fits on them), and the one fit on every
    # label that scores the unlabeled rows while no champion exists.
    with_folds = [c for c in calls if c is not None]
    assert len(calls) == 2 and len(with_folds) == 1 and sorted(set(with_folds[0])) == [0, 1, 2]
    with open_warehouse(home, read_only=True) as con:
        rows = con.execute("SELECT example_id, model_spec, fold, probs FROM predictions WHERE kind = 'oof' "
                           "ORDER BY example_id").fetchall()
        flagged = con.execute("SELECT count(*) FROM issues").fetchone()[0]
    assert len(rows) == 150 and all(r[1].endswith("/oof=trainer/v2/folds=3") for r in rows)
    # The stored folds are the ones the trainer was given (rows in example_id order, as mining loads them).
    assert [r[2] for r in rows] == list(with_folds[0])
    # and the stored probabilities are the trainer's (all ten classes are in the 150 labels).
    trainer_oof = returned[[i for i, c in enumerate(calls) if c is not None][0]]
    np.testing.assert_allclose(np.array([r[3] for r in rows]), trainer_oof, atol=1e-12)
    assert flagged > 0


def test_a_trainer_that_does_not_return_its_out_of_fold_predictions_fails_the_run(tmp_path):
    command, _ = _spy(tmp_path)  # it ignores the manifest's out_of_fold
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"example_id": [f"e{i}" for i in range(30)], "a": rng.normal(size=30)})
    clf = CommandClassifier(command, timeout_s=60, out_of_fold="trainer")
    with pytest.raises(EngineError, match=r"trainer `fit` \(out of fold\) wrote no OOF.parquet"):
        clf.fit_out_of_fold(X, np.array(["a", "b"] * 15), np.arange(30) % 3)
