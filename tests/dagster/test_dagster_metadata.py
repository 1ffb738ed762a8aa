"""The one metadata builder: one null rule (tables whose records all have every column) and the
history of a loop run outside Dagster reported with the same metadata the assets write."""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pytest

from assets.history import ORIGIN, RUN_ONLY, record_history
from assets.ingest import ingest_metadata
from assets.metadata import pick, table, value
from assets.mine import mined_issues, oof_predictions
from assets.resources import ComputeResource, EngineResource, FakeLabelStudioResource
from assets.review import review_tasks, review_verdicts
from assets.ship import PER_CLASS_COLUMNS, candidate_model, champion_model, per_class_rows
from data_engine.ingest.batch import ingest_file
from data_engine.mine.run import run_mining
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, choice_result
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home


def test_table_records_have_the_same_fields_whatever_is_missing() -> None:
    rows = [{"class": "a", "support": 3, "candidate_recall": 0.5, "champion_recall": 0.25, "difference": 0.25,
             "p_worse": 0.1, "passed": True},
            {"class": "b", "support": 2, "candidate_recall": float("nan")},  # champion unknown, no check
            {"class": "c", "support": None, "candidate_recall": 1.0, "champion_recall": None, "extra": 1}]
    meta = table(rows, PER_CLASS_COLUMNS)
    names = [c.name for c in meta.schema.columns]
    assert [sorted(r.data) for r in meta.records] == [sorted(names)] * 3
    assert meta.records[1].data["candidate_recall"] is None and meta.records[1].data["passed"] is None
    assert meta.records[2].data["support"] is None and "extra" not in meta.records[2].data
    # The ship page's rows when the candidate has no champion to compare with.
    rows = per_class_rows({"per_class_recall": {"0": 0.9, "1": 0.8}, "per_class_support": {"0": 5}}, None, [])
    assert [sorted(r.data) for r in table(rows, PER_CLASS_COLUMNS).records] == [sorted(names)] * 2


@pytest.mark.parametrize("missing", [None, float("nan"), math.inf])
def test_a_missing_value_is_null_as_an_entry_and_as_a_cell(missing) -> None:
    assert value(missing) == dg.MetadataValue.null()
    assert pick({"a": missing}, ["a", "b"]) == {"a": dg.MetadataValue.null(), "b": dg.MetadataValue.null()}
    assert table([{"x": missing}], [("x", float)]).records[0].data == {"x": None}
    assert value(2) == dg.MetadataValue.int(2) and value(True) == dg.MetadataValue.bool(True)
    assert value(np.int64(2)) == dg.MetadataValue.int(2) and value(np.bool_(False)) == dg.MetadataValue.bool(False)
    assert value(np.float32(0.5)) == dg.MetadataValue.float(0.5)
    assert value(0.123456) == dg.MetadataValue.float(0.1235)
    with pytest.raises(TypeError, match="object"):
        value(object())


def _same(asset_key: str, ran: dict, recorded: dict) -> None:
    """History's event has the asset's keys and values; what a run alone knows may be null or less."""
    recorded = {k: v for k, v in recorded.items() if k != ORIGIN}
    run_only = RUN_ONLY.get(asset_key, set())
    assert set(recorded) <= set(ran) and set(ran) - set(recorded) <= run_only, (asset_key, set(ran) ^ set(recorded))
    for key, v in ran.items():
        if key not in recorded:
            continue
        if key in run_only:
            assert type(recorded[key]) in (type(v), dg.NullMetadataValue), (asset_key, key)
        else:
            assert recorded[key] == v, (asset_key, key)


def test_history_reports_what_the_assets_wrote_for_the_same_records(tmp_path) -> None:
    home = make_home(tmp_path, {"mining": {"model": "linear", "detectors": ["label", "outlier"]}},
                     seed=0, n_train=200, n_gold=60, n_unlabeled=20, noise=0.1)
    # One more batch through the core, whose result the landed_batch asset would report.
    header, *lines = (home.landing / "train-1.csv").read_text().splitlines()
    (home.landing / "extra.csv").write_text("\n".join([header] + [f"x{line}" for line in lines[:30]]) + "\n")
    with open_warehouse(home) as con:
        landed = ingest_metadata(ingest_file(con, home.config.dataset, home.landing / "extra.csv"))
    instance = dg.DagsterInstance.ephemeral()
    engine = EngineResource(home=str(home.root))
    resources = {"engine": engine, "compute": ComputeResource(engine=engine)}
    run = dg.materialize([oof_predictions, mined_issues, candidate_model, champion_model], instance=instance,
                         resources=resources)
    assert run.success

    (tmp_path / "dagster").mkdir()
    history = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    record_history(home, history)
    batch = history.get_latest_materialization_event(dg.AssetKey("landed_batch")).asset_materialization
    assert batch.partition == "extra.csv" and landed["rows_new"].value == 30
    _same("landed_batch", landed, dict(batch.metadata))
    for key in ("oof_predictions", "detected_issues", "review_queue", "candidate_model", "champion_model"):
        ran = run.asset_materializations_for_node(key)[0].metadata if key not in ("detected_issues", "review_queue") \
            else next(m for m in run.get_asset_materialization_events()
                      if m.asset_key == dg.AssetKey(key)).materialization.metadata
        recorded = history.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata
        _same(key, dict(ran), dict(recorded))
    [check] = run.get_asset_check_evaluations()
    [recorded] = history.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("candidate_model"), "promotion_gate")]).values()
    evaluation = recorded.event.dagster_event.event_specific_data
    # The check's table of per-check figures is not kept in the warehouse: every other entry is.
    _same("promotion_gate", {k: v for k, v in check.metadata.items() if k != "checks"}, dict(evaluation.metadata))


def test_history_reports_the_review_pages_the_assets_wrote(tmp_path) -> None:
    home = make_home(tmp_path, {"mining": {"model": "linear", "detectors": ["label"]}, "review": {"budget": 8}},
                     seed=0, n_train=200, n_gold=60, n_unlabeled=20, noise=0.1)
    with open_warehouse(home) as con:
        run_mining(con, home.config, home=home)
    fake = FakeReviewClient()
    resources = {"engine": EngineResource(home=str(home.root)), "label_studio": FakeLabelStudioResource.over(fake)}
    pushed = dg.materialize([review_tasks], resources=resources)
    for i, task in enumerate(list(fake.tasks)[:3]):  # two verdicts and a discard
        fake.create_annotation(task, choice_result(DISCARD_CHOICE if i == 2 else "3"))
    pulled = dg.materialize([review_verdicts], resources=resources)
    assert pushed.success and pulled.success

    (tmp_path / "dagster").mkdir()
    history = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    record_history(home, history)
    for key, run in (("review_tasks", pushed), ("review_verdicts", pulled)):
        (event,) = run.get_asset_materialization_events()
        recorded = history.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata
        _same(key, dict(event.materialization.metadata), dict(recorded))
