"""The ship assets under Dagster: the gate's verdict on the candidate's own page, typed and rounded
metadata, and a refusal that is an outcome (the run succeeds, the check warns, the champion stays)."""

import numpy as np
import pytest

import dagster as dg
from assets.resources import EngineResource
from assets.ship import GATE_CHECK, candidate_model, champion_model, champion_scores
from data_engine.cli import main
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, review, seed_digits


def _floats_rounded(metadata: dict) -> None:
    for key, value in metadata.items():
        if isinstance(value, dg.FloatMetadataValue):
            assert value.value == round(value.value, 4), key


def test_a_refusal_is_an_outcome_and_the_verdict_is_on_the_candidates_page(tmp_path, capsys):
    home = make_home(tmp_path)
    info = seed_digits(home, n_train=400, n_gold=150, n_unlabeled=30)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root))}
    assets = [candidate_model, champion_model, champion_scores]

    first = dg.materialize(assets, instance=instance, resources=resources)
    assert first.success
    meta = first.asset_materializations_for_node("candidate_model")[0].metadata
    _floats_rounded(meta)
    assert isinstance(meta["gold_accuracy"], dg.FloatMetadataValue) and meta["gold_accuracy"].value > 0.8
    assert meta["gate_verdict"].value == "promoted"
    assert isinstance(meta["gold_per_class"], dg.TableMetadataValue)
    assert [c.name for c in meta["gold_per_class"].schema.columns][:3] == ["class", "support", "candidate_recall"]
    # The served model's choice: the chosen candidate and every candidate's out-of-fold score.
    rows = meta["candidates_out_of_fold"].records
    chosen = [r.data["candidate"] for r in rows if r.data["chosen"]]
    assert chosen == [meta["served_choice"].value] and len(rows) == 2  # linear and, on images, the SVM
    assert "best out-of-fold accuracy" in meta["served_choice_rule"].value
    assert len(meta["gold_per_class"].records) == 10
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == GATE_CHECK and check.passed
    champ = first.asset_materializations_for_node("champion_model")[0]
    assert champ.metadata["promoted"].value is True and champ.metadata["champion_version"].value == 1

    # A reviewer gone wrong: the training labels shuffled. The candidate is clearly worse on gold.
    tr = info["parts"]["train"]
    with open_warehouse(home) as con:
        review(con, dict(zip(info["ids"][tr], np.random.default_rng(1).permutation(info["y"][tr]))))
    second = dg.materialize(assets, instance=instance, resources=resources)
    assert second.success  # a refusal is not a failed run
    [check] = second.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["verdict"].value == "refused"
    assert check.metadata["n_gold"].value == 150 and check.metadata["difference"].value < 0
    assert check.metadata["p_worse"].value < 0.05
    _floats_rounded(check.metadata)
    assert check.description.startswith("refused: candidate v2 refused against champion v1 on 150 gold examples")
    champ = second.asset_materializations_for_node("champion_model")[0]
    assert champ.metadata["promoted"].value is False and champ.metadata["champion_version"].value == 1
    assert "champion stays v1" in champ.metadata["note"].value
    assert second.asset_materializations_for_node("champion_scores")  # the fleet is still scored
    with open_warehouse(home) as con:
        assert registry.current_champion(con).version == 1
        assert registry.get_model(con, 2).status == "refused"

    # `deploy promote` after the refusal names the refused model, its reason and how to force it.
    capsys.readouterr()
    assert main(["--home", str(home.root), "deploy", "promote"]) == 2
    err = capsys.readouterr().err
    assert "model v2 was refused by the gate (candidate v2 refused against champion v1 on 150 gold examples" in err
    assert "data-engine deploy promote --version 2 --force" in err
    assert main(["--home", str(home.root), "deploy", "promote", "--force"]) == 0
    assert "promoted v2 (forced" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["candidate_model", "champion_model", "champion_scores"])
def test_ship_assets_are_in_the_definitions(name, monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_ENGINE_HOME", str(tmp_path))
    import definitions

    graph = definitions.defs.resolve_asset_graph()
    assert dg.AssetKey(name) in graph.get_all_asset_keys()
    if name == "candidate_model":
        assert dg.AssetCheckKey(dg.AssetKey(name), GATE_CHECK) in graph.asset_check_keys
