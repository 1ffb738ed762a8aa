"""Asset metadata has one builder: the gate's tables keep every field in every row (nulls for missing)."""

from __future__ import annotations

import dagster as dg

from assets.metadata import table as typed_table
from assets.ship import PER_CLASS_COLUMNS, per_class_rows, verdict_metadata
from data_engine.ship.gate import Evaluation, decide_promotion
from data_engine.store.config import GateConfig


def per_class_table(verdict) -> dg.MetadataValue:
    """The candidate page's per-class table, as candidate_model builds it."""
    return typed_table(per_class_rows(verdict.candidate.to_dict(),
                                      verdict.champion.to_dict() if verdict.champion else None, verdict.checks),
                       PER_CLASS_COLUMNS)


def _fields(value: dg.MetadataValue) -> list[set[str]]:
    return [set(record.data) for record in value.value.records]


def test_a_first_candidate_has_no_champion_and_its_tables_keep_every_field() -> None:
    # No champion: the champion's recall, the difference and the p-value are missing for every class;
    # Dagster refuses a table whose records have different fields, so they are null cells, not absent.
    cand = Evaluation(1, 100, 0.9, 0.9, {"a": 0.9, "b": 0.8}, {}, {"a": 50, "b": 50})
    verdict = decide_promotion(cand, None, GateConfig(metric="accuracy", tolerance=0.02, min_gold=20, test="strict"))
    table = per_class_table(verdict)
    assert _fields(table) == [{"class", "support", "candidate_recall", "champion_recall", "difference",
                               "p_worse", "passed"}] * 2
    assert [r.data["champion_recall"] for r in table.value.records] == [None, None]
    meta = verdict_metadata(verdict)
    # A missing number is Dagster's null, as on every other asset page (not the text "-").
    assert meta["champion_version"] == dg.MetadataValue.null()


def test_a_challenged_candidate_has_per_class_differences_as_rounded_floats() -> None:
    cand = Evaluation(2, 100, 0.8, 0.8, {"a": 0.81234567}, {}, {"a": 100})
    champ = Evaluation(1, 100, 0.9, 0.9, {"a": 0.9}, {}, {"a": 100})
    verdict = decide_promotion(cand, champ, GateConfig(metric="accuracy", tolerance=0.02, min_gold=20, test="strict"))
    (row,) = per_class_table(verdict).value.records
    assert row.data["candidate_recall"] == 0.8123 and row.data["champion_recall"] == 0.9
    checks = verdict_metadata(verdict)["checks"].value.records
    assert len({frozenset(r.data) for r in checks}) == 1


def test_candidate_page_names_the_tasks_own_gold_figures() -> None:
    """Numbers report MAE, RMSE and R² on the candidate's page, tags their F1s; classes keep accuracy."""
    from assets.ship import candidate_metadata, candidate_record
    from data_engine.tasks import TASKS

    model = {"version": 2, "model_spec": "linear", "train_size": 10, "label_snapshot": 1, "sha256": "x"}
    for task, figures in (("regression", {"mae": 41.7, "rmse": 52.5, "r2": 0.48}),
                          ("multilabel", {"micro_f1": 0.9, "macro_f1": 0.8, "exact_match": 0.7, "accuracy": 0.7}),
                          ("classification", {"accuracy": 0.95, "macro_f1": 0.94})):
        names = TASKS.get(task)().metric_names()
        meta = candidate_metadata(candidate_record(model, figures, metric_names=names), [])
        assert {f"gold_{k}": v for k, v in figures.items()} == {k: meta[k].value for k in meta if k.startswith("gold_")
                                                                and k != "gold_per_class"}
        assert ("gold_accuracy" in meta) == ("accuracy" in figures)

