"""The user's trainer under Dagster: launched through Pipes, its log lines and reported metrics on
the candidate's page (read from the event log)."""

import sys
from pathlib import Path

import dagster as dg

from assets.resources import EngineResource
from assets.ship import candidate_model
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model" / "train.py"


def test_trainer_logs_and_metrics_appear_on_the_asset(tmp_path):
    config = {"model": {"trainer": "command", "command": [sys.executable, str(EXAMPLE)], "timeout_s": 120}}
    home = make_home(tmp_path, config, seed=0, n_train=150, n_gold=80, n_unlabeled=10)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([candidate_model], instance=instance,
                            resources={"engine": EngineResource(home=str(home.root))})
    assert result.success
    # Read back from the instance's event log, as the asset's page shows it.
    event = instance.get_latest_materialization_event(dg.AssetKey("candidate_model"))
    assert event is not None and event.run_id == result.run_id
    meta = event.asset_materialization.metadata
    assert meta["trainer/train_rows"].value == 150
    assert 0.5 < meta["trainer/train_accuracy"].value <= 1.0
    messages = [e.message for e in instance.all_logs(result.run_id)]
    # The trainer's own Pipes log line and its stderr, in the run's event log.
    assert any(m and "trainer metrics:" in m for m in messages)
    assert any(m and "trainer stderr: fitted an MLP on 150 rows" in m for m in messages)


def test_a_failing_trainer_fails_the_run_with_its_stderr_and_the_next_run_retries(tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text("import sys\nprint('epoch 1: loss nan', file=sys.stderr)\n"
                      "print('ValueError: the loss diverged', file=sys.stderr)\nsys.exit(4)\n")
    config = {"model": {"trainer": "command", "command": [sys.executable, str(script)], "timeout_s": 60}}
    home = make_home(tmp_path, config, seed=0, n_train=120, n_gold=60, n_unlabeled=10)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root))}
    failed = dg.materialize([candidate_model], instance=instance, resources=resources, raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    text = str(failure.event_specific_data.error)
    assert "trainer `fit` exited with status 4; last stderr lines:\nepoch 1: loss nan\n" \
           "ValueError: the loss diverged" in text, text
    with open_warehouse(home, read_only=True) as con:
        assert registry.list_models(con) == []
    # The trainer fixed in place: the next run trains and registers the candidate.
    script.write_text(f"import runpy\nrunpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n")
    assert dg.materialize([candidate_model], instance=instance, resources=resources).success
    with open_warehouse(home, read_only=True) as con:
        assert [m.version for m in registry.list_models(con)] == [1]
