"""A real Dask cluster (scheduler and two workers, separate processes on 127.0.0.1, started by
`data-engine compute up`): out-of-fold fits, blockwise neighbour search and a whole mining run
give the same results as the local process pool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data_engine.mine.detectors.neighbours as nb
from data_engine.compute import DaskBackend, LocalBackend, connect
from data_engine.ingest.batch import ingest_file
from data_engine.tasks.oof import ensemble_out_of_fold_probabilities
from data_engine.mine.run import run_mining
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.mine.test_mining import CONFIG, blobs

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "data_engine.cli"]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--home", str(home), *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`compute up --workers 2` in a home of its own; `compute down` afterwards."""
    root = tmp_path_factory.mktemp("cluster")
    done = cli(root, "compute", "up", "--workers", "2", "--port", "0")
    assert done.returncode == 0, done.stderr
    address = done.stdout.strip().splitlines()[-1]
    try:
        yield address
    finally:
        down = cli(root, "compute", "down")
        assert down.returncode == 0 and "stopped 3 process(es)" in down.stdout, down.stdout + down.stderr
        assert cli(root, "compute", "status").returncode == 1


@pytest.fixture(scope="module")
def dask(cluster: str) -> Iterator[DaskBackend]:
    backend = connect(cluster)
    yield backend
    backend.close()


def test_cluster_is_a_scheduler_and_two_worker_processes_on_loopback(cluster: str, dask: DaskBackend) -> None:
    assert cluster.startswith("tcp://127.0.0.1:")
    workers = dask.client.scheduler_info()["workers"]
    assert len(workers) == 2 and dask.slots == 2
    pids = dask.client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)


def _tasks_ran_on(dask: DaskBackend, fn, *args, **kwargs):
    from distributed import get_task_stream

    with get_task_stream(dask.client) as ts:
        result = fn(*args, **kwargs)
    return result, {t["worker"] for t in ts.data}


def test_out_of_fold_fits_on_the_cluster_equal_the_local_ones(dask: DaskBackend) -> None:
    from data_engine.mine.models import Schema, build_members, resolve_spec

    frame = blobs(300, seed=3, flip=(1, 5, 9))
    schema = {"x": "numeric", "y": "numeric", "color": "categorical"}
    labels = (frame["label"] == "b").to_numpy(dtype=np.int64)
    members = build_members(resolve_spec("linear+hgb", "tabular", seed=0), Schema.from_mapping(schema))
    X = frame[list(schema)]
    local = ensemble_out_of_fold_probabilities(members, X, labels, 2, folds=5, seed=7, compute=LocalBackend(2))
    remote, workers = _tasks_ran_on(dask, ensemble_out_of_fold_probabilities, members, X, labels, 2, folds=5,
                                    seed=7, compute=dask)
    assert len(workers) == 2  # the ten fits were spread over both workers
    np.testing.assert_array_equal(remote.folds, local.folds)
    np.testing.assert_array_equal(remote.probs, local.probs)
    assert remote.weights == local.weights


def _home(root: Path, extra: str = "") -> Home:
    home = make_home(root.parent, CONFIG + extra, name=root.name)
    frame = pd.concat([blobs(400, seed=1, flip=(3, 17, 40)), blobs(200, seed=2, start=400, labeled=False)])
    path = home.landing / "b1.csv"
    frame.to_csv(path, index=False)
    with open_warehouse(home) as con:
        assert ingest_file(con, home.config.dataset, path).status == "ingested"
    return home


def _results(home: Home) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        issues = con.execute("SELECT example_id, issue_type, score, is_issue, reason FROM issues "
                             "WHERE run_id = ? ORDER BY example_id, issue_type", [summary.run_id]).df()
        queue = con.execute("SELECT * EXCLUDE (run_id) FROM review_queue WHERE run_id = ? ORDER BY rank",
                            [summary.run_id]).df()
        preds = con.execute("SELECT * EXCLUDE (computed_at) FROM predictions ORDER BY example_id, kind, model_spec").df()
    return issues, queue, preds


def test_a_mining_run_on_the_cluster_equals_the_local_run(cluster: str, dask: DaskBackend, tmp_path: Path,
                                                          monkeypatch) -> None:
    # Approximate (HNSW) search from 500 rows on: built on one thread, so equal on both sides.
    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 500)
    local = _home(tmp_path / "local")
    remote = _home(tmp_path / "remote", f'\n[compute]\nscheduler = "{cluster}"\n')
    assert remote.config.compute.scheduler == cluster
    want = _results(local)
    got, workers = _tasks_ran_on(dask, _results, remote)
    assert len(workers) == 2  # the run's fits went to the cluster
    for a, b in zip(want, got):
        pd.testing.assert_frame_equal(a, b)
    issues = got[0]
    # Near copies with agreeing labels in low-dimensional tables are a data-set fact, not issues
    # (docs/mining.md), so these blobs give label and outlier flags; the approximate search ran for both.
    assert {"label", "outlier"} <= set(issues["issue_type"])
    assert len(got[1]) > 0


def test_dagster_mining_assets_run_on_the_cluster_through_the_compute_resource(cluster: str, dask: DaskBackend,
                                                                                  tmp_path: Path) -> None:
    import dagster as dg

    from assets.mine import mined_issues, oof_predictions
    from assets.resources import ComputeResource, EngineResource

    home = _home(tmp_path / "h", f'\n[compute]\nscheduler = "{cluster}"\n')
    engine = EngineResource(home=str(home.root))
    resources = {"engine": engine, "compute": ComputeResource(engine=engine)}
    result, workers = _tasks_ran_on(dask, dg.materialize, [oof_predictions, mined_issues], resources=resources)
    assert result.success
    assert len(workers) == 2  # the fold fits went to both workers
    assert result.asset_materializations_for_node("mined_issues")[0].metadata["run_id"].value == 1


def test_embedding_batches_on_the_cluster_equal_the_local_vectors(dask: DaskBackend) -> None:
    from data_engine.compute.embedding import embed_frame
    from data_engine.mine.embedders import get_embedder

    frame = pd.DataFrame({"note": [f"note {i}: the parcel came {'late' if i % 3 else 'early'}" for i in range(24)]})
    e5 = get_embedder("e5-small")
    local = embed_frame(e5, frame, ["note"], compute=LocalBackend(1), batch_rows=6)
    remote, workers = _tasks_ran_on(dask, embed_frame, e5, frame, ["note"], compute=dask, batch_rows=6)
    assert len(workers) == 2
    np.testing.assert_array_equal(remote, local)


def test_text_mining_embeds_its_unseen_rows_on_the_cluster_with_the_local_results(cluster: str, dask: DaskBackend,
                                                                                tmp_path: Path, monkeypatch) -> None:
    import data_engine.compute.embedding as ce
    from tests.mine.test_embedding_mining import NEG, POS, TEXT

    monkeypatch.setattr(ce, "EMBED_BATCH_ROWS", 8)  # several batches from a small set
    texts = [f"{t}{suffix}" for suffix in ("", "!", ", really") for t in POS + NEG]
    frame = pd.DataFrame({"id": [f"t{i:02d}" for i in range(len(texts))], "note": texts,
                          "label": (["pos"] * 8 + ["neg"] * 8) * 3})
    frame.loc[[2, 20], "label"] = ["neg", "pos"]
    found = []
    for name, extra in (("local", ""), ("remote", f'\n[compute]\nscheduler = "{cluster}"\n')):
        home = make_home(tmp_path, TEXT + extra, name=name)
        path = home.landing / "b1.csv"
        frame.to_csv(path, index=False)
        with open_warehouse(home) as con:
            assert ingest_file(con, home.config.dataset, path).status == "ingested"
        if name == "remote":
            (issues, _, _), workers = _tasks_ran_on(dask, _results, home)
            assert len(workers) == 2
        else:
            issues = _results(home)[0]
        with open_warehouse(home) as con:
            vectors = con.execute("SELECT content_hash, vector FROM embeddings ORDER BY content_hash").df()
        found.append((issues, vectors))
    pd.testing.assert_frame_equal(found[0][0], found[1][0])
    assert len(found[0][1]) == len(texts)
    pd.testing.assert_frame_equal(found[0][1], found[1][1])
