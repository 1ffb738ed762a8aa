"""The user's trainer under Dagster: launched through Pipes, its log lines and reported metrics on
the candidate's page (read from the event log)."""

import sys
from pathlib import Path

import dagster as dg

from assets.resources import EngineResource
from assets.ship import candidate_model
from tests.homes import make_home

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"


def test_trainer_logs_and_metrics_appear_on_the_asset(tmp_path):
    config = {"model": {"trainer": "command", "command": [sys.executable, str(EXAMPLE)], "timeout_s": 120}}
    home = make_home(tmp_path, config, seed=0, n_train=150, n_gold=80, n_unlabeled=10)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([candidate_model], instance=instance,
                            resources={"engine": EngineResource(home=str(home.root))})
    assert result.success
    meta = result.asset_materializations_for_node("candidate_model")[0].metadata
    assert meta["trainer/train_rows"].value == 150
    assert 0.5 < meta["trainer/train_accuracy"].value <= 1.0
    messages = [e.message for e in instance.all_logs(result.run_id)]
    # The trainer's own Pipes log line and its stderr, in the run's event log.
    assert any(m and "trainer metrics:" in m for m in messages)
    assert any(m and "trainer stderr: fitted an MLP on 150 rows" in m for m in messages)
