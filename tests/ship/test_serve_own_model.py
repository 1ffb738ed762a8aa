"""`serve` with the user's trainer: /predict answers through one long-lived `COMMAND serve` worker,
equal to the trainer's own `predict`; a promotion restarts it for the new champion; a worker that
exits or hangs gives a 503 naming the cause and is restarted by a later request; a worker that
cannot start refuses the champion with the reason."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.ship import deploy, registry
from data_engine.ship.serve import ModelHolder, create_app
from data_engine.ship.training import train_candidate
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.trainers import worker as worker_module
from data_engine.trainers.command import CommandClassifier
from data_engine.trainers.worker import PredictWorker, WorkerDown, WorkerReplyError
from tests.homes import PIXELS, digits, make_home
from tests.loop_support import review

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"

# The example trainer for fit and predict, with a `serve` that fails as FAULT says.
FAULTY_SERVE = '''
import json, runpy, sys, time
FAULT = {fault!r}
if sys.argv[1] != "serve":
    runpy.run_path({example!r}, run_name="__main__")
    sys.exit(0)
if FAULT == "no_serve":
    print("usage: train.py {{fit,predict}}: invalid choice: 'serve'", file=sys.stderr)
    sys.exit(2)
import pandas as pd  # loaded before `ready`, as a real worker loads its libraries
print("loading the model", file=sys.stderr, flush=True)
print(json.dumps({{"ready": True}}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if FAULT == "hang":
        time.sleep(600)
    if FAULT == "crash":
        print("Segmentation fault in predict", file=sys.stderr, flush=True)
        sys.exit(139)
    if FAULT == "error":
        print(json.dumps({{"id": request["id"], "error": "ValueError: input has 63 columns"}}), flush=True)
    if FAULT == "nan":
        X = pd.read_parquet(request["input"])
        p = pd.DataFrame({{"example_id": X["example_id"], **{{str(c): float("nan") for c in range(10)}}}})
        p.to_parquet(request["out"], index=False)
        print(json.dumps({{"id": request["id"]}}), flush=True)
'''


def _config(command: list[str]) -> dict:
    return {"model": {"trainer": "command", "command": command, "timeout_s": 120, "serve_timeout_s": 20}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Champion v1 (the example trainer on true labels) and v2 (the same trainer, every training label
    shifted by one, so its answers tell which model gave them)."""
    root = tmp_path_factory.mktemp("serve-own")
    home = make_home(root, _config([sys.executable, str(EXAMPLE)]), seed=0, n_train=150, n_gold=60, n_unlabeled=0)
    with open_warehouse(home) as con:
        v1 = train_candidate(con, home).record
        deploy.promote(con, home, v1.version, reason="first")
        ids = [r[0] for r in con.execute("SELECT example_id FROM current_labels cl JOIN current_examples ce "
                                         "USING (example_id) WHERE NOT ce.is_gold").fetchall()]
        labels = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        review(con, {e: str((int(labels[e]) + 1) % 10) for e in ids})
        v2 = train_candidate(con, home).record
    return home, v1, v2


@pytest.fixture()
def env(built, tmp_path):
    home, v1, v2 = built
    copy = Home(tmp_path / "home")
    shutil.copytree(home.root, copy.root)
    return copy, v1, v2


def _rows(n: int, start: int = 1700) -> list[dict[str, float]]:
    X = digits()[0][start:start + n]
    return [{c: float(v) for c, v in zip(PIXELS, x)} for x in X]


def _probs(body: dict, classes) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in classes] for p in body["predictions"]])


def test_predict_goes_through_one_worker_and_equals_the_trainers_own_predict(env):
    from fastapi.testclient import TestClient

    home, v1, _ = env
    rows = _rows(25)
    own = registry.load_model(home, v1)  # a CommandClassifier: one `COMMAND predict` per call
    expected = own.predict_proba(pd.DataFrame(rows)[list(v1.input_schema)])
    with TestClient(create_app(home, poll_seconds=0.05)) as client:
        bodies = [client.post("/predict", json={"rows": rows}).json() for _ in range(3)]
        health = client.get("/health").json()
    assert [b["model_version"] for b in bodies] == [1, 1, 1]
    for body in bodies:  # the response rounds probabilities to 6 decimals
        np.testing.assert_allclose(_probs(body, v1.classes), expected, rtol=0, atol=5e-7)
        assert [p["label"] for p in body["predictions"]] == list(own.classes_[expected.argmax(axis=1)])
    assert health["status"] == "ok"
    assert health["worker"]["state"] == "running" and health["worker"]["starts"] == 1
    assert health["worker"]["answered"] == 3


def test_a_promotion_restarts_the_worker_for_the_new_champion(env):
    home, v1, v2 = env
    holder = ModelHolder(home)
    assert holder.refresh()
    first = holder.current
    old_pid = first.worker.status()["pid"]
    frame = pd.DataFrame(_rows(10))
    np.testing.assert_allclose(first.model.predict_proba(frame),
                               registry.load_model(home, v1).predict_proba(frame), atol=1e-9)
    with open_warehouse(home) as con:
        deploy.promote(con, home, v2.version, reason="test")
    try:
        assert holder.refresh()
        second = holder.current
        assert second.pointer.version == v2.version
        new = second.worker.status()
        assert new["state"] == "running" and new["pid"] != old_pid
        # The old worker was stopped (its process is gone) and says why.
        old = first.worker.status()
        assert old["state"] == "down" and "replaced by model v2" in old["cause"]
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)
        np.testing.assert_allclose(second.model.predict_proba(frame),
                                   registry.load_model(home, v2).predict_proba(frame), atol=1e-9)
    finally:
        holder.close()


def test_a_dead_worker_is_a_503_naming_the_cause_and_the_next_request_restarts_it(env, monkeypatch):
    from fastapi.testclient import TestClient

    home, _, _ = env
    rows = _rows(5)
    with TestClient(create_app(home, poll_seconds=0.05)) as client:
        assert client.post("/predict", json={"rows": rows}).status_code == 200
        pid = client.get("/health").json()["worker"]["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        health = client.get("/health").json()
        assert health["status"] == "worker down"
        assert "exited with status -9" in health["worker"]["cause"]
        r = client.post("/predict", json={"rows": rows})
        assert r.status_code == 503
        assert "the trainer's serve worker for model v1 exited with status -9" in r.json()["detail"]
        # A restart is tried once the backoff has passed: the next request is answered by a new worker.
        monkeypatch.setattr(worker_module, "RESTART_BACKOFF_S", 0.0)
        r = client.post("/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        worker = client.get("/health").json()["worker"]
        assert worker["state"] == "running" and worker["starts"] == 2 and worker["pid"] != pid


# -- faults of the worker itself, on a fitted model whose command is a faulty `serve` -------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> CommandClassifier:
    X, y = digits()
    frame = pd.DataFrame(X[:200], columns=PIXELS)
    return CommandClassifier([sys.executable, str(EXAMPLE)], timeout_s=120).fit(frame, y[:200])


def _with_serve(fitted: CommandClassifier, tmp_path: Path, fault: str) -> CommandClassifier:
    script = tmp_path / f"serve_{fault}.py"
    script.write_text(FAULTY_SERVE.format(fault=fault, example=str(EXAMPLE)), encoding="utf-8")
    model = CommandClassifier([sys.executable, str(script)], timeout_s=120)
    model.classes_, model.model_, model.model_sha256_ = fitted.classes_, fitted.model_, fitted.model_sha256_
    return model


@pytest.mark.parametrize(("fault", "error", "message"), [
    ("hang", WorkerDown, "did not answer a request within model.serve_timeout_s = 5 s and was stopped; "
                         "last stderr lines:\nloading the model"),
    ("crash", WorkerDown, "exited with status 139; last stderr lines:\nloading the model\n"
                          "Segmentation fault in predict"),
    ("error", WorkerReplyError, "failed on this request: ValueError: input has 63 columns"),
    ("nan", WorkerReplyError, "column '0' is nan (probabilities must be finite"),
])
def test_worker_faults_name_the_cause(fitted, tmp_path, fault, error, message):
    worker = PredictWorker(_with_serve(fitted, tmp_path, fault), timeout_s=5, label="model v7").start()
    try:
        started = time.monotonic()
        with pytest.raises(error) as caught:
            worker.predict_proba(pd.DataFrame(_rows(3)))
        assert message in str(caught.value)
        assert time.monotonic() - started < 15
        assert worker.status()["state"] == ("down" if error is WorkerDown else "running")
    finally:
        worker.stop()


def test_a_worker_that_cannot_start_refuses_the_champion_with_the_reason(env, tmp_path, monkeypatch):
    import data_engine.ship.serve as serve

    home, v1, _ = env
    # The champion as a trainer without a `serve` sub-command would have made it.
    faulty = _with_serve(registry.load_model(home, v1), tmp_path, "no_serve")
    monkeypatch.setattr(serve, "load_artifact", lambda path, sha256: faulty)
    with pytest.raises(EngineError) as caught:
        create_app(home)
    assert ("no champion to serve (model v1 refused: the trainer's serve worker for model v1 exited with status 2 "
            "(`COMMAND serve --model MODEL_DIR` is the worker: docs/own-model.md); last stderr lines:\n"
            "usage: train.py {fit,predict}: invalid choice: 'serve')") in str(caught.value)
