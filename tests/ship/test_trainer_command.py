"""The user's trainer through the file contract: a fitted example trainer, and each fault a clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.trainers.command import CommandClassifier

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"


def _data(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = np.where(X["a"] + X["b"] > 0, "pos", "neg")
    X.insert(0, "example_id", [f"e{i}" for i in range(n)])
    return X, y


def test_example_trainer_fits_and_predicts() -> None:
    X, y = _data()
    clf = CommandClassifier([sys.executable, str(EXAMPLE)], timeout_s=120).fit(X, y)
    assert list(clf.classes_) == ["neg", "pos"] and len(clf.model_sha256_) == 64
    probs = clf.predict_proba(X)
    assert probs.shape == (len(X), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (clf.predict(X) == y).mean() > 0.9


# A fake trainer: fit writes a marker file; predict writes what FAULT says (parametrised below).
# pandas is imported after `fit` so that `fit` is quick under a short timeout on a loaded machine.
FAKE = '''
import sys, time
cmd, args = sys.argv[1], dict(zip(sys.argv[2::2], sys.argv[3::2]))
if cmd == "fit":
    open(args["--out"] + "/m", "w").write("x")
    sys.exit(0)
fault = {fault!r}
if fault == "hang":
    time.sleep(600)
import pandas as pd, numpy as np
X = pd.read_parquet(args["--input"])
n = len(X)
p = pd.DataFrame({{"example_id": X["example_id"], "neg": np.full(n, 0.3), "pos": np.full(n, 0.7)}})
if fault == "exit":
    print("Traceback: boom in predict", file=sys.stderr); sys.exit(3)
if fault == "missing_ids":
    p = p.iloc[1:]
if fault == "nan":
    p.loc[2, "pos"] = float("nan")
if fault == "wrong_columns":
    p = p.rename(columns={{"pos": "positive"}})
if fault == "not_one":
    p["pos"] = 0.9
if fault != "no_file":
    p.to_parquet(args["--out"], index=False)
'''


@pytest.mark.parametrize(("fault", "message"), [
    ("exit", r"exited with status 3; last stderr lines:\nTraceback: boom in predict"),
    ("hang", r"ran past model.timeout_s = 5 s"),
    ("missing_ids", r"misses 1 of 50 example_id, e.g. 'e0'"),
    ("nan", r"example_id='e2', column 'pos' is nan"),
    ("wrong_columns", r"no probability column for class 'pos'"),
    ("not_one", r"probabilities of example_id='e0' sum to 1.2, not 1"),
    ("no_file", r"wrote no PRED.parquet"),
])
def test_trainer_faults_are_clear_errors(tmp_path: Path, fault: str, message: str) -> None:
    script = tmp_path / "fake.py"
    script.write_text(FAKE.format(fault=fault))
    X, y = _data()
    # fit itself runs predict on some training rows, so a faulty predict fails before anything is kept.
    # Only the hang meets a short timeout: the others must fail for their own fault, however loaded
    # the machine is.
    with pytest.raises(EngineError, match=message):
        CommandClassifier([sys.executable, str(script)], timeout_s=5 if fault == "hang" else 120).fit(X, y)


def test_fit_failure_names_the_stderr(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import sys\nprint('CUDA out of memory', file=sys.stderr)\nsys.exit(1)\n")
    X, y = _data()
    with pytest.raises(EngineError, match=r"trainer `fit` exited with status 1;.*\nCUDA out of memory"):
        CommandClassifier([sys.executable, str(script)], timeout_s=10).fit(X, y)


def test_missing_program_is_a_clear_error() -> None:
    X, y = _data()
    with pytest.raises(EngineError, match="program '/no/such/python' not found"):
        CommandClassifier(["/no/such/python", "train.py"]).fit(X, y)


@pytest.mark.parametrize(("model", "message"), [
    ({"trainer": "command"}, "model.command: required when model.trainer = \"command\""),
    ({"command": ["python", "t.py"]}, "model.command is only read when model.trainer = \"command\""),
    ({"trainer": "command", "command": ["python"], "timeout_s": 0}, "model.timeout_s = 0.0: must be > 0 seconds"),
    ({"trainer": "shell"}, "model.trainer"),
])
def test_model_section_errors_name_the_key(model: dict, message: str) -> None:
    from data_engine.errors import ConfigError
    from data_engine.store.config import parse_config

    dataset = {"name": "d", "modality": "tabular", "feature_columns": ["a"], "label_column": "y", "id_column": "id"}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config({"dataset": dataset, "model": model})


def test_the_docs_example_trainer_fits_predicts_serves_and_returns_out_of_fold(tmp_path: Path) -> None:
    """The trainer printed in docs/own-model.md, run as written, through every call of the contract."""
    from data_engine.trainers.worker import PredictWorker

    doc = (Path(__file__).resolve().parents[2] / "docs" / "own-model.md").read_text(encoding="utf-8")
    code = doc.split("## A complete example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "doc_trainer.py"
    script.write_text(code, encoding="utf-8")
    X, y = _data()
    command = [sys.executable, str(script)]
    clf = CommandClassifier(command, timeout_s=120).fit(X, y)
    probs = clf.predict_proba(X)
    assert (clf.classes_[probs.argmax(axis=1)] == y).mean() > 0.9
    oof = CommandClassifier(command, timeout_s=120, out_of_fold="trainer").fit_out_of_fold(X, y, np.arange(len(X)) % 3)
    assert oof.shape == (len(X), 2) and (clf.classes_[oof.argmax(axis=1)] == y).mean() > 0.8
    assert not np.allclose(oof, probs, atol=1e-3)  # held-out folds' models, not the model fitted on all rows
    worker = PredictWorker(clf, timeout_s=60).start()
    try:
        np.testing.assert_allclose(worker.predict_proba(X), probs, atol=1e-12)
    finally:
        worker.stop()
