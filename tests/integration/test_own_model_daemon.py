"""The loop under the real Dagster daemon (sensors on) and the real Label Studio, with the example
trainer in its OWN virtual environment (examples/own_model/setup.sh: its own prefix and libraries,
none of the engine's): a labeled file and gold land; mining flags from
the trainer's out-of-fold predictions, reviews go through Label Studio, the trainer's retrained
candidates are gated and promoted, the asset page shows its log lines and metrics, and /predict
answers through its worker with what its own `predict` returns."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.demo.data import seed_demo
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.review.simulate import read_oracle
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.e2e.dagster_daemon import REPO, running_daemon, wait_for
from tests.homes import make_home
from tests.integration.test_loop_daemon import _failed_runs, _query, _review_until_rest

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "own_model"


@pytest.fixture(scope="session")
def trainer_python() -> Path:
    """The example trainer's own interpreter, set up by its one command (re-used when present)."""
    venv = EXAMPLE / ".venv"
    done = subprocess.run(["sh", str(EXAMPLE / "setup.sh"), str(venv)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    python = venv / "bin" / "python"
    # Its own environment: its own prefix, without the engine's libraries (no Dagster, DuckDB, cleanlab).
    probe = ("import importlib.util, sys; print(sys.prefix, "
             "[m for m in ('dagster', 'duckdb', 'cleanlab') if importlib.util.find_spec(m)])")
    prefix, found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                                   check=True).stdout.split(" ", 1)
    assert prefix == str(venv) != sys.prefix and found.strip() == "[]", (prefix, found)
    return python


def _config(url: str, python: Path) -> str:
    base = (REPO / "data_engine" / "store" / "default_config.toml").read_text()
    base = base.split("[review]")[0]
    return base + f"""
[mining]
folds = 3

[review]
url = "{url}"
project_title = "own-{uuid.uuid4().hex[:8]}"
budget = 30

[model]
trainer = "command"
command = ["{python}", "{EXAMPLE / 'train.py'}"]
timeout_s = 600
serve_timeout_s = 60
"""


def test_the_loop_runs_the_users_trainer_in_its_own_environment(tmp_path: Path, label_studio, trainer_python):
    import dagster as dg
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    home = make_home(tmp_path, _config(label_studio.url, trainer_python))
    staging = make_home(tmp_path, _config(label_studio.url, trainer_python), name="staging")
    seed_demo(staging, noise=0.1, seed=1, batches=4)
    (staging.root / "oracle.csv").replace(home.oracle_path)
    oracle = read_oracle(home.oracle_path)
    client = LabelStudioClient(label_studio.url, label_studio.token)
    with running_daemon(home.root, {"LABEL_STUDIO_API_KEY": label_studio.token}) as dagster_home:
        log = dagster_home / "daemon.log"
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        (staging.gold_landing / "digits_gold.csv").replace(home.gold_landing / "digits_gold.csv")
        (staging.landing / "digits_batch_01.csv").replace(home.landing / "digits_batch_01.csv")
        wait_for(lambda: (_query(home, "SELECT count(*) FROM review_tasks WHERE task_id IS NOT NULL")
                          or [(0,)])[0][0] > 0, 900, "the first queue pushed to Label Studio", log)
        answered = _review_until_rest(home, instance, client, oracle, log)
        failed = _failed_runs(instance)
        candidate_events = instance.fetch_materializations(dg.AssetKey("candidate_model"), limit=100).records
        messages = [e.message or "" for r in candidate_events for e in instance.all_logs(r.run_id)]
        metadata = [r.asset_materialization.metadata for r in candidate_events]
    client.close()

    assert failed == [], failed
    assert answered > 0
    with open_warehouse(home, read_only=True) as con:
        specs = {r[0] for r in con.execute("SELECT DISTINCT model_spec FROM predictions WHERE kind = 'oof'").fetchall()}
        models = registry.list_models(con)
        champion = registry.current_champion(con)
        last_verdict = con.execute("SELECT max(event_id) FROM label_events WHERE source IN ('review', 'consensus')"
                                   ).fetchone()[0]
    # Mining read the trainer's out-of-fold predictions; candidates were retrained after the reviews.
    assert specs and all(s.startswith("command/") for s in specs), specs
    assert champion is not None and len(models) >= 2, [(m.version, m.status) for m in models]
    assert models[-1].label_snapshot >= last_verdict
    model = registry.load_model(home, champion)
    assert list(model.command) == [str(trainer_python), str(EXAMPLE / "train.py")]
    # The asset page: the trainer's Pipes log line and reported metrics, from the event log.
    assert any("trainer metrics:" in m for m in messages)
    assert any(0.5 < m["trainer/train_accuracy"].value <= 1.0 for m in metadata if "trainer/train_accuracy" in m)
    # /predict answers through the trainer's worker, equal to its own predict.
    rows = pd.read_csv(staging.landing / "digits_batch_03.csv").head(15)[list(champion.input_schema)]
    expected = model.predict_proba(rows)
    with TestClient(create_app(home)) as api:
        body = api.post("/predict", json={"rows": rows.to_dict(orient="records")}).json()
        worker = api.get("/health").json()["worker"]
    assert body["model_version"] == champion.version and worker["state"] == "running"
    got = np.array([[p["probabilities"][c] for c in champion.classes] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-7)
