"""The loop on tabular data with categories, free text and missing values, with the default model:
ingest CSVs, train, gate, promote, score, serve; no change but the config."""

from __future__ import annotations

import numpy as np
import pytest

from data_engine.bench.datasets import make_tabular_dataset
from data_engine.ingest.batch import ingest_file
from data_engine.ship import scoring, training
from data_engine.ship.step import gate_and_promote
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

CONFIG = """
[dataset]
name = "tab"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x0", "x1", "x2", "x3", "x4", "x5", "color", "region", "note"]

[gate]
min_gold = 20
"""


@pytest.fixture()
def home(tmp_path):
    from threadpoolctl import threadpool_limits

    h = make_home(tmp_path, CONFIG)
    ds = make_tabular_dataset(1200, n_classes=4, seed=3)
    frame = ds.frame.copy()
    frame.insert(0, "id", [f"t{i}" for i in range(len(frame))])
    frame["label"] = ds.labels
    frame.iloc[:800].to_csv(h.landing / "train.csv", index=False)
    frame.iloc[800:1000].to_csv(h.gold_landing / "gold.csv", index=False)
    frame.iloc[1000:].drop(columns=["label"]).to_csv(h.landing / "new.csv", index=False)
    with open_warehouse(h) as con, threadpool_limits(1):
        for name, gold in (("train.csv", False), ("gold/gold.csv", True), ("new.csv", False)):
            assert ingest_file(con, h.config.dataset, h.landing / name, gold=gold).status == "ingested"
    return h, frame


def test_tabular_loop_with_the_default_model(home):
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    h, frame = home
    with open_warehouse(h) as con:
        result = training.train_candidate(con, h)
        # The served model is the best candidate out of fold (the mining ensemble, its members).
        choice = result.choice
        assert [c.name for c in choice.candidates] == ["hgb+linear+knn (weighted)", "hgb", "linear", "knn"]
        assert choice.chosen == choice.best.name
        assert result.record.model_spec.startswith("+".join(choice.members) + "/tabular")
        assert result.record.input_schema["color"] == "categorical"
        verdict, dep = gate_and_promote(con, h)
        assert verdict.promote and dep is not None
        assert verdict.candidate.accuracy > 0.5  # 4 classes: chance is 0.25
        scored = scoring.score_unlabeled(con, h)
        assert scored.scored == 200
    rows = frame.iloc[1000:1010].drop(columns=["id", "label"]).replace({np.nan: None}).to_dict("records")
    rows[0]["region"] = 17  # a number sent for a categorical column is read as its text
    with TestClient(create_app(h)) as client:
        r = client.post("/predict", json={"rows": rows})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 10
        bad = dict(rows[1], x0="n/a")
        r = client.post("/predict", json={"rows": [bad]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "rows", 0, "x0"]
