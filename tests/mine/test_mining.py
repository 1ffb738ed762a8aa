"""Mining against a real warehouse: stored predictions, re-use, the queue's exclusions, the CLI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data_engine.tasks.oof as oof_module
from data_engine.cli import main
from data_engine.ingest.batch import ingest_file
from data_engine.mine.detectors.neighbours import build_index as real_build
from data_engine.mine.run import run_mining
from data_engine.mine.runs import excluded_examples
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.conftest import NEXT_EVENT_ID
from tests.homes import make_home

CONFIG = """\
[dataset]
name = "blobs"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "y", "color"]
classes = ["a", "b"]
column_types = { x = "numeric", y = "numeric", color = "categorical" }

[mining]
model = "linear+knn"
folds = 3
n_jobs = 1

[review]
budget = 20
"""


def blobs(n: int, *, seed: int = 0, flip: tuple[int, ...] = (), start: int = 0, labeled: bool = True) -> pd.DataFrame:
    """Two well-separated blobs; rows in ``flip`` get the other blob's label."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "id": [f"r{start + i:04d}" for i in range(n)],
        "x": rng.normal(0, 0.5, n) + 6 * cls,
        "y": rng.normal(0, 0.5, n),
        "color": np.array(["red", "blue"], dtype=object)[cls],
        "label": np.array(["a", "b"], dtype=object)[cls],
    })
    for i in flip:
        df.loc[i, "label"] = "b" if df.loc[i, "label"] == "a" else "a"
    if not labeled:
        df["label"] = None
    return df


@pytest.fixture()
def home(tmp_path: Path) -> Home:
    return make_home(tmp_path, CONFIG)


@pytest.fixture()
def ingest(home: Home) -> Callable[[str, pd.DataFrame], None]:
    def put(name: str, frame: pd.DataFrame) -> None:
        path = home.landing / name
        frame.to_csv(path, index=False)
        with open_warehouse(home) as con:
            result = ingest_file(con, home.config.dataset, path)
        assert result.status == "ingested", result.reason

    return put


def mine(home: Home, **kwargs) -> object:
    with open_warehouse(home) as con:
        return run_mining(con, home.config, home=home, **kwargs)


def test_a_flipped_label_is_flagged_and_queued_first(home, ingest):
    ingest("b1.csv", blobs(60, flip=(7,)))
    summary = mine(home)
    assert summary.counts["label"] >= 1
    assert summary.queue_top.iloc[0]["example_id"] == "r0007"
    assert "label" in summary.queue_top.iloc[0]["issue_types"]
    assert summary.plot_png.startswith(b"\x89PNG")
    assert 0 < summary.noise_rate < 0.2
    with open_warehouse(home) as con:
        labels = con.execute("SELECT count(*), count(*) FILTER (is_issue) FROM issues WHERE issue_type = 'label' "
                             "AND run_id = ?", [summary.run_id]).fetchall()[0]
        assert labels[0] == 60  # every labeled example gets a label-quality score
        run = con.execute("SELECT label_snapshot, model_spec, counts, noise_rate FROM mining_runs").fetchall()
        assert len(run) == 1 and json.loads(run[0][2])["label"] == labels[1]
        preds = con.execute("SELECT count(*), min(len(probs)), count(DISTINCT fold) FROM predictions "
                            "WHERE kind = 'oof'").fetchall()[0]
        assert preds == (60, 2, 3)
        q = con.execute("SELECT rank, example_id, given_label, suggested_label FROM review_queue "
                        "WHERE run_id = ? ORDER BY rank", [summary.run_id]).fetchall()
        assert q[0] == (1, "r0007", "b" if blobs(60).loc[7, "label"] == "a" else "a", blobs(60).loc[7, "label"])


def test_mining_twice_with_nothing_new_reuses_stored_predictions(home, ingest, monkeypatch):
    ingest("b1.csv", blobs(60, flip=(3,)))
    first = mine(home)
    assert not first.reused_predictions
    with open_warehouse(home) as con:
        before = con.execute("SELECT example_id, computed_at, probs FROM predictions ORDER BY example_id").fetchdf()

    def must_not_run(*args, **kwargs):
        raise AssertionError("out-of-fold predictions recomputed although nothing changed")

    monkeypatch.setattr(oof_module, "out_of_fold_probabilities", must_not_run)
    monkeypatch.setattr(oof_module, "ensemble_out_of_fold_probabilities", must_not_run)
    second = mine(home)
    assert second.reused_predictions
    assert second.run_id == first.run_id + 1
    assert second.counts == first.counts
    assert second.ensemble_weights == pytest.approx(first.ensemble_weights)
    with open_warehouse(home) as con:
        after = con.execute("SELECT example_id, computed_at, probs FROM predictions ORDER BY example_id").fetchdf()
    pd.testing.assert_frame_equal(before, after)


def test_a_new_label_event_invalidates_the_stored_predictions(home, ingest):
    ingest("b1.csv", blobs(60))
    mine(home)
    with open_warehouse(home) as con:
        con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
                    f"VALUES ({NEXT_EVENT_ID}, 'r0001', 1, 'a', 'review', 'tester')")
    again = mine(home)
    assert not again.reused_predictions


def test_a_new_unlabeled_batch_costs_only_its_own_rows(home, ingest, monkeypatch):
    ingest("b1.csv", blobs(60))
    mine(home)
    ingest("u1.csv", blobs(10, seed=5, start=100, labeled=False))
    with_batch = mine(home)
    assert with_batch.reused_predictions  # labels unchanged: the out-of-fold work is not redone
    assert with_batch.n_unlabeled == 10 and with_batch.newly_scored_unlabeled == 10
    assert list(home.models.joinpath("mining").glob("full-*.joblib"))
    assert list(home.models.joinpath("mining").glob("neighbours-*.joblib"))
    ingest("u2.csv", blobs(5, seed=6, start=200, labeled=False))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the neighbour index was rebuilt for a batch that only adds rows")

    import data_engine.mine.detectors.neighbours as nb

    monkeypatch.setattr(nb, "build_index", no_rebuild)
    next_batch = mine(home)
    assert next_batch.newly_scored_unlabeled == 5  # only the new batch is scored
    assert mine(home).newly_scored_unlabeled == 0



def test_a_new_unlabeled_batch_joins_the_cached_approximate_index(home, ingest, monkeypatch):
    # The same run with the HNSW search (exact-search limit lowered): the serialised graph is
    # cached and the new rows are added to it, not rebuilt.
    import data_engine.mine.detectors.neighbours as nb

    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 50)
    test_a_new_unlabeled_batch_costs_only_its_own_rows(home, ingest, monkeypatch)
    # The graph lives in its own file, written by faiss; each extension replaced the one before.
    graphs = list(home.models.joinpath("mining").glob("graph-*.faiss"))
    assert len(graphs) == 1


def test_a_changed_graph_file_of_the_cached_index_is_rebuilt_not_read(home, ingest, monkeypatch):
    import data_engine.mine.detectors.neighbours as nb

    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 50)
    ingest("b1.csv", blobs(60))
    first = mine(home)
    (graph,) = home.models.joinpath("mining").glob("graph-*.faiss")
    graph.write_bytes(graph.read_bytes()[:-1] + bytes([graph.read_bytes()[-1] ^ 1]))
    ingest("u1.csv", blobs(10, seed=5, start=100, labeled=False))
    built = []
    monkeypatch.setattr(nb, "build_index", lambda *a, **kw: built.append(1) or real_build(*a, **kw))
    again = mine(home)
    assert built == [1] and again.run_id == first.run_id + 1  # rebuilt once, and the run went on
    (kept,) = home.models.joinpath("mining").glob("graph-*.faiss")
    assert kept != graph  # the changed file is gone, the rebuilt graph kept in its place

def test_a_copied_home_grows_its_own_graph_file_and_leaves_the_original_alone(home, ingest, monkeypatch, tmp_path):
    import shutil

    import data_engine.mine.detectors.neighbours as nb

    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 50)
    ingest("b1.csv", blobs(60))
    mine(home)
    (original,) = home.models.joinpath("mining").glob("graph-*.faiss")
    copy = Home(shutil.copytree(home.root, tmp_path / "copy"))
    new_rows = copy.landing / "u1.csv"
    blobs(10, seed=5, start=100, labeled=False).to_csv(new_rows, index=False)
    with open_warehouse(copy) as con:
        assert ingest_file(con, copy.config.dataset, new_rows).status == "ingested"
    monkeypatch.setattr(nb, "build_index", lambda *a, **kw: pytest.fail("the copy's index was rebuilt"))
    mine(copy)  # its index is extended from its own copy of the graph file
    assert original.exists()
    assert [p.name for p in copy.models.joinpath("mining").glob("graph-*.faiss")] != [original.name]


def test_an_unsure_unlabeled_example_is_queued_as_uncertain(home, ingest):
    ingest("b1.csv", blobs(60))
    middle = pd.DataFrame({"id": ["mid"], "x": [3.0], "y": [0.0], "color": [None], "label": [None]})
    ingest("u1.csv", middle)
    ingest("u2.csv", blobs(10, seed=3, start=500, labeled=False))
    # Between the blobs, `mid` is an outlier too: without that detector the strategy picks it as
    # the one the model is least sure of; with it, it is queued once, as the outlier fix.
    home.config_path.write_text(home.config_path.read_text(encoding="utf-8").replace(
        "[mining]\n", '[mining]\ndetectors = ["label", "near_duplicate", "uncertain"]\n'), encoding="utf-8")
    summary = mine(Home(home.root))  # a fresh Home reads the edited config
    with open_warehouse(home) as con:
        row = con.execute("SELECT issue_types, given_label, selection FROM review_queue WHERE run_id = ? "
                          "AND example_id = 'mid'", [summary.run_id]).fetchall()
    assert row and "uncertain" in row[0][0] and row[0][1] is None and row[0][2] != "fix"


def test_an_unlabeled_outlier_is_queued_once(home, ingest):
    ingest("b1.csv", blobs(60))
    ingest("u1.csv", pd.DataFrame({"id": ["mid"], "x": [3.0], "y": [0.0], "color": [None], "label": [None]}))
    summary = mine(home)
    with open_warehouse(home) as con:
        rows = con.execute("SELECT issue_types, given_label FROM review_queue WHERE run_id = ? AND example_id = 'mid'",
                           [summary.run_id]).fetchall()
    assert len(rows) == 1 and "outlier" in rows[0][0] and rows[0][1] is None


def test_examples_waiting_for_or_done_with_review_are_not_queued(home, ingest):
    ingest("b1.csv", blobs(60, flip=(3, 7, 11)))
    first = mine(home)
    queued = set(first.queue_top["example_id"])
    assert {"r0003", "r0007", "r0011"} <= queued
    with open_warehouse(home) as con:
        # r0003 is out for review; r0007 was reviewed at its current version; r0011 was reviewed
        # and then got a newer ingested label, which re-opens it.
        con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, engine_key, status) "
                    "VALUES (1, 'r0003', 1, 'k3', 'open'), (1, 'r0005', 1, 'k5', 'done')")
        for example, source in (("r0007", "review"), ("r0011", "review"), ("r0011", "ingest")):
            con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
                        f"VALUES ({NEXT_EVENT_ID}, ?, 1, ?, ?, 'tester')", [example, blobs(60).loc[int(example[1:]), "label"], source])
        assert excluded_examples(con) == ["r0003", "r0007"]
    second = mine(home)
    with open_warehouse(home) as con:
        ids = {r[0] for r in con.execute("SELECT example_id FROM review_queue WHERE run_id = ?",
                                         [second.run_id]).fetchall()}
    assert "r0003" not in ids and "r0007" not in ids


def _queued(home: Home, run_id: int) -> set[str]:
    with open_warehouse(home) as con:
        return {r[0] for r in con.execute("SELECT example_id FROM review_queue WHERE run_id = ?", [run_id]).fetchall()}


def test_a_reviewed_label_the_model_still_contradicts_gets_one_second_opinion(home, ingest):
    ingest("b1.csv", blobs(60, flip=(7, 11)))
    assert {"r0007", "r0011"} <= _queued(home, mine(home).run_id)
    wrong = blobs(60, flip=(7, 11))
    with open_warehouse(home) as con:
        # One reviewer kept r0007's wrong label (a slip); r0011's reviewer kept it too, but as the
        # consensus of several annotators, which is not reopened.
        con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, engine_key, status) "
                    "VALUES (1, 'r0007', 1, 'r0007@v1', 'done'), (1, 'r0011', 1, 'r0011@v1', 'done')")
        for example, source in (("r0007", "review"), ("r0011", "consensus")):
            con.execute("INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
                        f"VALUES ({NEXT_EVENT_ID}, ?, 1, ?, ?, 'tester')",
                        [example, wrong.loc[int(example[1:]), "label"], source])
    # The model gives the kept label 0.2: against a reviewer right 95 % of the time (the prior) a
    # slip is the less likely story, so no second opinion ...
    assert "r0007" not in _queued(home, mine(home).run_id)
    with open_warehouse(home) as con:  # ... but reviewers measured right 70 % of the time: a slip is likelier
        con.execute("INSERT INTO review_annotator_quality (annotator, n_votes, agreement) VALUES ('x', 100, 0.7)")
    again = _queued(home, mine(home).run_id)
    assert "r0007" in again and "r0011" not in again
    # Turned off, or once the second opinion was asked for, it is not queued again.
    single = dataclasses.replace(home.config, review=dataclasses.replace(home.config.review, max_opinions=1))
    with open_warehouse(home) as con:
        assert "r0007" not in _queued(home, run_mining(con, single, home=home).run_id)
        con.execute("INSERT INTO review_tasks (project_id, example_id, example_version, opinion, engine_key, status) "
                    "VALUES (1, 'r0007', 1, 2, 'r0007@v1/2', 'open')")
    assert "r0007" not in _queued(home, mine(home).run_id)
    with open_warehouse(home) as con:
        con.execute("UPDATE review_tasks SET status = 'done' WHERE engine_key = 'r0007@v1/2'")
    assert "r0007" not in _queued(home, mine(home).run_id)


def test_mine_command(home, ingest, capsys, tmp_path):
    ingest("b1.csv", blobs(40, flip=(2,)))
    plot = tmp_path / "noise.png"
    assert main(["--home", str(home.root), "mine", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "mining run 1" in out and "| rank | example |" in out
    # The blobs' colour is the class itself and y is noise: a shortcut and a useless column (issue 24).
    assert "column 'color': shortcut (" in out and "column 'y': useless" in out
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert main(["--home", str(home.root), "mine", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["run_id"] == 2 and meta["reused_predictions"] is True
    found = {(i["type"], i["column"]) for i in meta["dataset_issues"]}
    assert {("shortcut", "color"), ("useless", "y")} <= found and "class_imbalance" in meta
    assert all(set(i) == {"type", "column", "figure", "reason"} for i in meta["dataset_issues"])
    from assets.mine import issues_metadata

    rows = issues_metadata(meta)["dataset_issues"].value.records
    assert {(r.data["type"], r.data["column"]) for r in rows} == found


def test_mine_without_data_is_a_user_error(home, capsys):
    assert main(["--home", str(home.root), "mine"]) == 2
    assert "ingest" in capsys.readouterr().err


def test_bench_detect_runs_the_engine_and_the_baseline(tmp_path):
    from data_engine.bench.detect import run_detect_benchmark

    result = run_detect_benchmark(dataset="tabular", rows=400, noise=0.2, seed=1, n_jobs=1, keep=tmp_path / "h")
    assert result["flipped"] > 40
    for side in ("engine", "baseline"):
        assert 0 <= result[side]["f1"] <= 1 and result[side]["top_k"] == result["flipped"]
    assert {"ingest", "predictions", "detectors", "queue", "baseline"} <= set(result["stages"])
    assert (tmp_path / "h" / "warehouse.duckdb").exists()
