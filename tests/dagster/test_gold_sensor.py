"""Issue 26: the gold sensor re-scores the champion when gold changes (a relabel in place included):
a run request for a new gold version, the line in the run's log and metadata, then nothing more;
the gate's page names the classes gold cannot measure and the gold version."""

from __future__ import annotations

import dagster as dg
import numpy as np

from assets.resources import EngineResource
from assets.ship import candidate_model, champion_model, champion_scores
from data_engine.ship.gold import current_gold_version
from data_engine.store.warehouse import open_warehouse
from sensors.ship import gold_job, gold_sensor
from tests.homes import digits_split
from tests.loop_support import insert_examples, make_home


def test_gold_relabelled_in_place_rescores_the_champion_once(tmp_path):
    home = make_home(tmp_path)
    info = digits_split(n_train=300, n_gold=120, n_unlabeled=0)
    ids, X, y = info["ids"], info["X"], info["y"]
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    gold = gold[y[gold] != "7"]  # a class missing from gold
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[train]), X[train], list(y[train]), batch="train-1")
        insert_examples(con, home, list(ids[gold]), X[gold], list(y[gold]), batch="gold-1", gold=True)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root))}

    def tick():
        return gold_sensor(dg.build_sensor_context(instance=instance, resources=resources))

    assert "no champion" in tick().skip_message
    first = dg.materialize([candidate_model, champion_model, champion_scores], instance=instance, resources=resources)
    assert first.success
    [check] = first.get_asset_check_evaluations()
    assert check.passed and check.metadata["unmeasured_classes"].value == "7"
    with open_warehouse(home, read_only=True) as con:
        v1, _ = current_gold_version(con)
    assert check.metadata["gold_version"].value == v1.version
    assert "unmeasured on gold (fewer than 5 gold examples" in check.description
    assert "was scored on the current gold" in tick().skip_message  # the gate scored it

    labels = y[gold].copy()
    labels[:4] = np.where(labels[:4] == "1", "2", "1")
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[gold]), X[gold], list(labels), batch="gold-2", gold=True)
        v2, _ = current_gold_version(con)
    request = tick()
    assert isinstance(request, dg.RunRequest) and request.run_key == f"gold-{v2.version}-v1"
    assert gold_job.tags["dagster/priority"] == "1"
    run = dg.materialize([champion_scores], instance=instance, resources=resources)
    assert run.success
    meta = run.asset_materializations_for_node("champion_scores")[0].metadata
    assert meta["gold_version"].value == v2.version
    assert meta["gold_rescore"].value.startswith(
        f"gold changed since gold {v1.version} (now gold {v2.version}): 4 label(s) changed in place, 0 added, 0 removed; "
        "champion v1 re-scored on ")
    assert meta["gold_rescore"].value.endswith("; unmeasured on gold: '7'")
    logged = [e.message for e in instance.all_logs(run.run_id) if e.level == 30]  # WARNING
    assert any("4 label(s) changed in place" in (m or "") for m in logged)
    assert "was scored on the current gold" in tick().skip_message
