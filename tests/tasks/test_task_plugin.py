"""The task plug-in is a real seam: the configured task is looked up in its registry and the
stages reach its methods (ingest's label reading and quarantine, review's labeling config)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from data_engine.errors import ConfigError
from data_engine.ingest.batch import ingest_file
from data_engine.mine.names import check_names
from data_engine.review.labelstudio.labeling import build_task, label_config
from data_engine.store.config import parse_config
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import TASKS, Classification, task_for
from tests import homes
from tests.conftest import TOY_CONFIG


class Grade(Classification):
    """A toy second task: a letter grade, read case-insensitively, stored upper-case (the rest as
    for classes: a grade is one of two classes)."""

    name = "grade"

    def label_sql(self, cell: str, plain: bool) -> str:
        return f"nullif(upper(trim({cell})), '')"

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        return [(f"{label} IS NOT NULL AND {label} NOT IN ('A', 'B')", f"'grade ' || {label} || ' is not A or B'")]

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        return f'<View>{item}<Rating name="{from_name}" toName="{to_name}" maxRating="{len(classes)}"/></View>'

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        return [{"from_name": from_name, "to_name": to_name, "type": "rating", "value": {"rating": "AB".index(label) + 1}}]

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        ratings = [r["value"]["rating"] for r in result if r.get("from_name") == from_name]
        return "AB"[ratings[0] - 1] if ratings else None


GRADE_CONFIG = TOY_CONFIG.replace('classes = ["a", "b"]', 'classes = ["A", "B"]\ntask = "grade"')


@pytest.fixture()
def grade_task(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``Grade`` registered for one test only."""
    monkeypatch.setitem(TASKS._builtins, "grade", Grade)
    yield


def test_classification_is_the_default_task() -> None:
    ds = parse_config({"dataset": {"name": "t", "modality": "tabular", "label_column": "label", "feature_columns": ["x"]}}).dataset
    assert ds.task == "classification"
    assert isinstance(task_for(ds), Classification)


def test_unknown_task_is_refused_naming_the_key_and_the_known_tasks() -> None:
    cfg = parse_config({"dataset": {"name": "t", "modality": "tabular", "label_column": "label", "feature_columns": ["x"], "task": "tags"}})
    with pytest.raises(ConfigError, match=r"dataset.task = 'tags': unknown task; known: classification"):
        check_names(cfg)
    with pytest.raises(ConfigError, match="dataset.task"):
        task_for(cfg.dataset)


def test_a_registered_task_is_configured_and_reached_by_ingest_and_review(tmp_path: Path, grade_task: None) -> None:
    home = homes.make_home(tmp_path, GRADE_CONFIG)
    ds = home.config.dataset
    assert ds.task == "grade"
    check_names(home.config)  # the toy task's name is accepted like a built-in's
    path = home.landing / "grades.csv"
    path.write_text("id,x,color,label\n1,0.5,red,a\n2,1.5,blue, b \n3,2.5,red,c\n", encoding="utf-8")
    with open_warehouse(home) as con:
        result = ingest_file(con, ds, path, gold=False)
        stored = dict(con.execute("SELECT example_id, label FROM examples ORDER BY example_id").fetchall())
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()]
    # Classification would quarantine 'a' and ' b ' (not among the classes A, B): the task's reading holds.
    assert result.rows_ok == 2
    assert stored == {"1": "A", "2": "B"}
    assert reasons == ["column label: grade C is not A or B"]
    xml = label_config(ds, ["A", "B"])
    assert '<Rating name="verdict" toName="item" maxRating="2"/>' in xml
    assert "<Choices" not in xml
    # The model's suggestion is pre-filled in the task's own answer control.
    task = build_task(ds, {"example_id": "1", "example_version": 1, "suggested_label": "B", "given_label": "A"},
                      {"x": 0.5, "color": "red"}, model_version="m")
    (prediction,) = task["predictions"]
    assert prediction["result"] == [{"from_name": "verdict", "to_name": "item", "type": "rating", "value": {"rating": 2}}]
    assert Grade().answer_label(prediction["result"], from_name="verdict") == "B"


def test_classification_labeling_config_offers_the_classes_and_discard() -> None:
    ds = parse_config({"dataset": {"name": "t", "modality": "tabular", "label_column": "label", "feature_columns": ["x"]}}).dataset
    xml = label_config(ds, ["cat", "dog"])
    assert 'choice="single-radio"' in xml
    assert [line.strip() for line in xml.splitlines() if "<Choice " in line] == [
        '<Choice value="cat"/>', '<Choice value="dog"/>', '<Choice value="not a valid example"/>']
