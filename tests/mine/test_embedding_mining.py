"""Embeddings inside the loop: cached once per content version, e5 text mining, user vectors
(ingest, mining, training, serving) and bring-your-own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.ingest.landing import decide_landing
from data_engine.mine.run import run_mining
from data_engine.ship.files import write_frame
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.conftest import TEXT_CONFIG
from tests.homes import make_home

TEXT = TEXT_CONFIG + """
[mining]
embedding = "e5-small"
folds = 3
n_jobs = 1
"""


def _tabular(column: str, kind: str, mining: str) -> str:
    """A two-class tabular config with one input column of ``kind`` and a [mining] section."""
    return (f'[dataset]\nname = "t"\nmodality = "tabular"\nid_column = "id"\nlabel_column = "label"\n'
            f'feature_columns = ["{column}"]\nclasses = ["a", "b"]\ncolumn_types = {{ {column} = "{kind}" }}\n\n'
            f"[mining]\n{mining}\nn_jobs = 1\n")


POS = ["a wonderful film", "I loved this phone", "great food and friendly staff", "excellent battery life",
       "the best movie this year", "delightful and moving", "works perfectly", "superb acting"]
NEG = ["a terrible film", "I hated this phone", "awful food and rude staff", "the battery died in a day",
       "the worst movie this year", "boring and slow", "broke after a week", "dreadful acting"]


def _home(tmp_path: Path, config: str) -> Home:
    return make_home(tmp_path, config)


def _ingest(home: Home, name: str, frame: pd.DataFrame) -> None:
    path = home.landing / name
    write_frame(frame, path)  # CSV, Parquet or JSONL by the name's suffix, as `predict --out` writes
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
    assert result.status == "ingested", result.reason


def _mine(home: Home, **kwargs):
    with open_warehouse(home) as con:
        return run_mining(con, home.config, home=home, **kwargs)


def test_a_second_mining_run_after_a_small_batch_embeds_only_the_new_rows(tmp_path):
    home = _home(tmp_path, TEXT)
    texts = POS + NEG
    first = pd.DataFrame({"id": [f"t{i:02d}" for i in range(16)], "note": texts, "label": ["pos"] * 8 + ["neg"] * 8})
    first.loc[15, "note"] = first.loc[14, "note"]  # two examples, one content: embedded once
    _ingest(home, "b1.csv", first)
    s1 = _mine(home)
    assert s1.embedding == "e5-small" and s1.newly_embedded == 15
    assert "embedding" in s1.model_spec and "embedding" in s1.ensemble_weights
    s2 = _mine(home, force=True)  # even recomputing every prediction, no text is embedded again
    assert s2.newly_embedded == 0
    _ingest(home, "b2.csv", pd.DataFrame({"id": ["n1", "n2"], "note": ["simply marvellous", "a waste of money"],
                                          "label": [None, None]}))
    s3 = _mine(home)
    assert s3.newly_embedded == 2
    with open_warehouse(home) as con:
        assert con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 17
        # A relabelled example keeps its content hash: its vector is not recomputed.
        con.execute("UPDATE examples SET label = 'neg' WHERE example_id = 't00'")
    assert _mine(home).newly_embedded == 0


VECTORS = _tabular("emb", "vector", 'embedding = "column"\nfolds = 3') + "\n[retrain]\nmin_new_labels = 1\n"


def _vectors(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + 3 * y[:, None]
    return pd.DataFrame({"id": [f"v{i:03d}" for i in range(n)], "emb": [list(map(float, x)) for x in X],
                         "label": np.array(["a", "b"])[y]})


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_user_vectors_are_checked_at_ingest(tmp_path, fmt):
    home = _home(tmp_path, VECTORS)
    good = _vectors(6)
    bad = pd.DataFrame({"id": ["x1", "x2", "x3"], "emb": [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]],
                        "label": ["a", "a", "b"]})
    frame = pd.concat([good, bad], ignore_index=True)
    path = home.landing / f"b.{fmt}"
    frame.to_parquet(path) if fmt == "parquet" else frame.to_json(path, orient="records", lines=True)
    if fmt == "jsonl":  # a vector with a word in it, which only JSON can carry
        path.write_text(path.read_text() + json.dumps({"id": "x4", "emb": [1, "two", 3, 4], "label": "a"}) + "\n")
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        reasons = dict(con.execute("SELECT raw, reason FROM quarantine").fetchall())
    assert result.rows_ok == 8
    assert any("emb: 2 numbers, expected 4" in r for r in reasons.values())
    if fmt == "jsonl":
        assert any("is not a list of finite numbers" in r for r in reasons.values())


def test_vector_dimension_is_the_first_batchs_most_common_length(tmp_path):
    # A malformed FIRST vector must not fix the dimension: only it is quarantined, not the good rows.
    home = _home(tmp_path, VECTORS)
    frame = _vectors(6)
    frame.at[0, "emb"] = frame.at[0, "emb"][:2]
    path = home.landing / "b.parquet"
    frame.to_parquet(path)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()]
    assert (result.rows_ok, result.rows_quarantined) == (5, 1)
    assert reasons == ["column emb: 2 numbers, expected 4"]


def test_user_vectors_mine_train_and_serve(tmp_path):
    from fastapi.testclient import TestClient

    from data_engine.ship import deploy
    from data_engine.ship.serve import create_app
    from data_engine.ship.training import train_candidate

    home = _home(tmp_path, VECTORS)
    data = _vectors(60)
    data.loc[5, "label"] = "b" if data.loc[5, "label"] == "a" else "a"
    _ingest(home, "b1.jsonl", data)
    s = _mine(home)
    assert s.model_spec.startswith("embedding/") and s.embedding == "column"
    with open_warehouse(home) as con:
        flagged = set(con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                  "AND is_issue", [s.run_id]).fetchdf()["example_id"])
        assert "v005" in flagged
        record = train_candidate(con, home).record
        deploy.promote(con, home, record.version, reason="test")
    client = TestClient(create_app(home, poll_seconds=60))
    answer = client.post("/predict", json={"rows": [{"emb": [0.0, 0.0, 0.0, 0.0]}, {"emb": [3.0, 3.0, 3.0, 3.0]}]})
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] == ["a", "b"]
    short = client.post("/predict", json={"rows": [{"emb": [0.0, 1.0]}]})
    assert short.status_code == 422 and "2 dimensions, the model was trained on 4" in short.text
    assert client.post("/predict", json={"rows": [{"emb": []}]}).status_code == 422


EXTERNAL = _tabular("x", "numeric", 'predictions = "external"')


def _external_home(tmp_path: Path) -> tuple[Home, pd.DataFrame]:
    home = _home(tmp_path, EXTERNAL)
    n = 40
    y = np.arange(n) % 2
    data = pd.DataFrame({"id": [f"e{i:02d}" for i in range(n)], "x": y * 5.0 + np.linspace(0, 1, n),
                         "label": np.array(["a", "b"])[y]})
    data.loc[4, "label"] = "b"  # a flipped label; the user's model knows better
    _ingest(home, "b1.csv", data)
    probs = pd.DataFrame({"example_id": data["id"], "a": np.where(y == 0, 0.95, 0.05), "model": "my-model"})
    probs["b"] = 1 - probs["a"]
    return home, probs


def test_external_predictions_replace_the_engines_own(tmp_path, monkeypatch):
    import data_engine.tasks.oof as oof

    home, probs = _external_home(tmp_path)
    home.predictions_landing.mkdir(parents=True, exist_ok=True)
    probs.to_csv(home.predictions_landing / "mine.csv", index=False)
    # The engine fits nothing of its own.
    monkeypatch.setattr(oof, "ensemble_out_of_fold_probabilities", lambda *a, **k: pytest.fail("fitted a model"))
    s = _mine(home)
    assert s.model_spec.startswith("external:my-model/")
    with open_warehouse(home) as con:
        flagged = set(con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                  "AND is_issue", [s.run_id]).fetchdf()["example_id"])
    assert flagged == {"e04"}
    # The landing sensor never takes the predictions for a batch of examples.
    assert not [f for f in decide_landing(home.landing, None, now=1e12).new_files if f.relpath.startswith("predictions/")]


@pytest.mark.parametrize("change, message", [
    (lambda p: p.iloc[3:], "miss 3 of 40 labeled examples"),
    (lambda p: p.drop(columns="b"), "no column for class 'b'"),
    (lambda p: p.assign(a=p["a"] * 0.5), "row 1: probabilities sum to 0.5250, not 1"),
    (lambda p: p.assign(extra=1), "unknown column 'extra'"),
    (lambda p: p.assign(a=p["a"].astype(object).where(p.index != 2, "high")), "row 3, column 'a': 'high' is not a probability"),
])
def test_bad_external_predictions_are_clear_errors(tmp_path, change, message):
    home, probs = _external_home(tmp_path)
    home.predictions_landing.mkdir(parents=True, exist_ok=True)
    change(probs).to_csv(home.predictions_landing / "mine.csv", index=False)
    with pytest.raises(EngineError, match=message):
        _mine(home)


def test_no_external_predictions_is_a_clear_error(tmp_path):
    home, _ = _external_home(tmp_path)
    with pytest.raises(EngineError, match="holds no CSV, Parquet or JSONL file"):
        _mine(home)


def test_the_served_text_model_embeds_requests_itself(tmp_path):
    from fastapi.testclient import TestClient

    from data_engine.ship import deploy
    from data_engine.ship.serve import create_app
    from data_engine.ship.training import train_candidate

    home = _home(tmp_path, TEXT + "\n[retrain]\nmin_new_labels = 1\n")
    _ingest(home, "b1.csv", pd.DataFrame({"id": [f"t{i:02d}" for i in range(16)], "note": POS + NEG,
                                          "label": ["pos"] * 8 + ["neg"] * 8}))
    with open_warehouse(home) as con:
        record = train_candidate(con, home).record
        assert "embedding" in record.model_spec
        deploy.promote(con, home, record.version, reason="test")
    client = TestClient(create_app(home, poll_seconds=60))
    answer = client.post("/predict", json={"rows": [{"note": "a wonderful film"}, {"note": "a terrible film"}]})
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] == ["pos", "neg"]


def test_malformed_vector_cells_are_quarantined_with_their_reason(tmp_path):
    home = _home(tmp_path, VECTORS)
    cells = ["[1,2]", "[", "null", "[1e400, 2]", '{"a":1}', "", " [3, 4] ", "[1,2,3]", "[NaN, 1]", "[1;2]"]
    path = home.landing / "b.csv"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(cells))], "emb": cells, "label": "a"}).to_csv(path, index=False)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        stored = dict(con.execute("SELECT example_id, emb FROM examples").fetchall())
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine ORDER BY row_number").fetchall()]
    assert (result.rows_ok, result.rows_quarantined) == (2, 8)
    assert stored == {"r0": [1.0, 2.0], "r6": [3.0, 4.0]}
    assert "column emb: [1e400, 2] is not a list of finite numbers" in reasons
    assert "column emb: 3 numbers, expected 2" in reasons


def test_mine_says_a_fitted_embedding_is_not_read_from_the_store():
    from data_engine.commands.mining import _embedding_line

    assert _embedding_line("tfidf", 0) == "tfidf (fitted on the rows mined in this run; not stored)"
    assert _embedding_line("e5-small", 3) == "e5-small (3 rows newly embedded, the rest from the store)"


def test_external_predictions_for_unknown_ids_are_said(tmp_path, caplog):
    home, probs = _external_home(tmp_path)
    home.predictions_landing.mkdir(parents=True, exist_ok=True)
    extra = pd.DataFrame({"example_id": ["typo-1", "typo-2"], "a": [0.5, 0.5], "b": [0.5, 0.5], "model": "my-model"})
    pd.concat([probs, extra]).to_csv(home.predictions_landing / "mine.csv", index=False)
    with caplog.at_level("WARNING", logger="data_engine.mine.external"):
        _mine(home)
    assert "2 of 42 ids are not training or unlabeled examples" in caplog.text and "'typo-1'" in caplog.text


def test_the_demo_comparison_reads_the_stored_vectors_and_scores_as_if_it_embedded_them(tmp_path, monkeypatch):
    from data_engine.demo import comparison
    from data_engine.mine.embedders import e5
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN
    from data_engine.mine.models import ModelSpec, resolve_spec

    home = _home(tmp_path, TEXT)
    labels = ["pos"] * 8 + ["neg"] * 8
    _ingest(home, "b1.csv", pd.DataFrame({"id": [f"t{i:02d}" for i in range(16)], "note": POS + NEG, "label": labels}))
    assert _mine(home).newly_embedded == 16
    oracle = pd.DataFrame({"example_id": [f"t{i:02d}" for i in range(16)], "label": labels})
    data = comparison.load_held_out(home, oracle)
    assert list(data.X.columns) == ["note", EMBEDDING_COLUMN] and data.schema == {"note": "text"}
    np.testing.assert_array_equal(np.stack(data.X[EMBEDDING_COLUMN].to_numpy()), e5.embed_texts(POS + NEG))
    # The e5 member beside TF-IDF members, which must ignore the vectors' column.
    recipes = {"e5": (ModelSpec(("embedding", "linear"), "text", 0, "e5-small"), oracle.set_index("example_id")["label"]),
               "tfidf": (resolve_spec("linear", "text"), oracle.set_index("example_id")["label"])}
    without = comparison.HeldOut(data.X[["note"]], data.example_ids, data.truth, data.is_gold, data.schema)
    embedded_again = comparison.held_out_metrics(without, recipes, n_jobs=1)
    calls = []
    monkeypatch.setattr(e5, "embed_texts", lambda texts: calls.append(len(texts)))
    assert comparison.held_out_metrics(data, recipes, n_jobs=1) == embedded_again
    assert calls == []
