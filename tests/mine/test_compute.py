"""The compute back-end without a cluster: the local pool, batch mapping, the config key, errors."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.compute import LocalBackend, check_scheduler, connect, open_backend
from data_engine.errors import ConfigError, EngineError
from data_engine.store.config import parse_config
from tests.conftest import TOY_CONFIG


def _rows_times_two(batch: pd.DataFrame) -> np.ndarray:
    return batch.to_numpy() * 2


def _one_row(batch: np.ndarray) -> np.ndarray:
    return batch[:1]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_starmap_keeps_call_order(n_jobs: int) -> None:
    assert LocalBackend(n_jobs).starmap(divmod, [(7, 2), (9, 4), (1, 1)]) == [(3, 1), (2, 1), (1, 0)]


@pytest.mark.parametrize("batch_rows", [1, 3, 10, 100])
def test_map_batches_stacks_results_in_row_order(batch_rows: int) -> None:
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0, 20.0)})
    out = LocalBackend(2).map_batches(_rows_times_two, frame, batch_rows=batch_rows)
    np.testing.assert_array_equal(out, frame.to_numpy() * 2)


def test_map_batches_rejects_a_function_that_drops_rows() -> None:
    with pytest.raises(EngineError, match="returned 1 rows for the 3 rows starting at row 0"):
        LocalBackend().map_batches(_one_row, np.zeros((6, 2)), batch_rows=3)
    with pytest.raises(EngineError, match="batch_rows"):
        LocalBackend().map_batches(_one_row, np.zeros((6, 2)), batch_rows=0)


def test_scheduler_key_is_local_or_an_address() -> None:
    assert parse_config({"dataset": parse_toy()}).compute.scheduler == "local"
    cfg = parse_config({"dataset": parse_toy(), "compute": {"scheduler": "tcp://10.0.0.5:8786"}})
    assert cfg.compute.scheduler == "tcp://10.0.0.5:8786"
    for bad in ("dask", "tcp://", "http://host:8786", "127.0.0.1:8786"):
        with pytest.raises(ConfigError, match=r"compute.scheduler = .*must be \"local\" or a Dask scheduler"):
            parse_config({"dataset": parse_toy(), "compute": {"scheduler": bad}})
    with pytest.raises(ConfigError, match="unknown key compute.workers"):
        parse_config({"dataset": parse_toy(), "compute": {"workers": 3}})
    assert check_scheduler("tls://h:1") == "tls://h:1"


def parse_toy() -> dict:
    import tomllib

    return tomllib.loads(TOY_CONFIG)["dataset"]


def test_an_unreachable_scheduler_is_a_one_line_error() -> None:
    from data_engine.compute.cluster import _free_port

    with pytest.raises(EngineError, match="no Dask scheduler answers there.*data-engine compute up"):
        connect(f"tcp://127.0.0.1:{_free_port()}", timeout_s=1)


def test_open_backend_local_uses_the_pool() -> None:
    with open_backend("local", n_jobs=2) as backend:
        assert isinstance(backend, LocalBackend) and backend.slots == 2


def test_compute_status_and_down_without_a_cluster(toy_home, capsys) -> None:
    assert main(["--home", str(toy_home.root), "compute", "status"]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["--home", str(toy_home.root), "compute", "down"]) == 0
    assert main(["--home", str(toy_home.root), "compute", "up", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_a_per_row_embedder_is_embedded_in_batches_with_the_same_vectors() -> None:
    from data_engine.compute.embedding import embed_frame
    from data_engine.mine.embedders import get_embedder

    frame = pd.DataFrame({"note": [f"review number {i}: {'great' if i % 2 else 'awful'} product" for i in range(9)],
                          "other": range(9)})
    e5 = get_embedder("e5-small")
    whole = e5.embed(frame, ["note"])
    batched = embed_frame(e5, frame, ["note"], compute=LocalBackend(2), batch_rows=4)
    assert batched.shape == (9, 384) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, whole, rtol=0, atol=1e-6)


def test_scale_model_predicts_from_cpu_seconds_and_caps_at_the_task_count() -> None:
    from data_engine.bench.scale import STAGES, Run, ScaleBench, fit_model, format_result

    cpu = {s: {"client": 1.0, "workers": 40.0, "scheduler": 0.5} for s in (*STAGES, "model load")}
    local = Run("local (2 processes)", None, {s: 21.0 for s in STAGES}, {s: 20 for s in STAGES},
                {s: {"client": 0.5, "workers": 39.0, "scheduler": 0.0} for s in (*STAGES, "model load")})
    tasks = {"oof": 10, "neighbour search": 500, "embed": 8}
    dask = Run("dask, 2 worker(s)", 2, {s: 22.0 for s in STAGES}, tasks, cpu, startup_s=4.0, worker_rss_mib=300.0)
    result = ScaleBench(rows=1000, embed_texts=100, texts=1000, cores=2, runs=[local, dask])
    model = fit_model(result)
    # 1.5 s serial + 40 s of work spread over min(W, tasks) workers.
    assert model["neighbour search"]["predicted_10_workers_s"] == 1.5 + 4.0
    assert model["neighbour search"]["predicted_100_workers_s"] == 1.5 + 0.4
    assert model["oof"]["predicted_100_workers_s"] == 1.5 + 4.0  # only 10 fits to spread
    # Scaled to 1,000 texts: 4 batches of 256, so at most 4 workers busy.
    assert model["embed"]["predicted_10_workers_s"] == (1.5 + 40.0 / 4) * 10
    assert model["oof"]["next_worker_saves_s"] == 20.0 - 40.0 / 3
    text = format_result(result)
    assert "cannot beat the local pool" in text and "oof +2.0 cpu-s" in text


# slow: a whole `bench scale` run (1000 rows is its floor); the scale model's arithmetic is tested above.
@pytest.mark.slow
def test_scale_bench_runs_its_stages_on_the_local_pool() -> None:
    from data_engine.bench.scale import STAGES, format_result, run_scale_bench

    result = run_scale_bench(rows=1000, texts=64, embed_texts=16, workers=[])
    (local,) = result.runs
    assert set(local.seconds) == set(STAGES) and local.tasks["embed"] == 8
    # CPU time is counted in scheduler ticks (a few ms): a stage shorter than that may read 0.
    assert all(local.cpu[s]["client"] + local.cpu[s]["workers"] > 0 for s in STAGES if local.seconds[s] > 0.05)
    assert sum(local.cpu[s]["client"] + local.cpu[s]["workers"] for s in STAGES) > 0
    assert "oof" in format_result(result) and result.model == {}


def _killed_or_failing(role: str, note: str) -> None:
    """In a pool worker. ``keep``: make a temporary folder, write its path to ``note`` and wait (up to
    60 s) to be killed, as a trainer's fold is when another fold fails; ``fail``: raise once ``note`` exists."""
    deadline = time.monotonic() + 60
    if role == "keep":
        folder = tempfile.mkdtemp(prefix="killed-call-")
        Path(note + ".part").write_text(folder)
        os.replace(note + ".part", note)
    while time.monotonic() < deadline and (role == "keep" or not Path(note).exists()):
        time.sleep(0.05)
    if role == "fail":
        raise RuntimeError("trainer `predict` wrote no PRED.parquet")


def test_a_failed_pooled_call_leaves_no_temporary_folder_of_the_killed_ones(tmp_path, monkeypatch) -> None:
    # joblib kills the other workers when a call fails, so their own clean-up never runs; the pool's
    # calls make their temporary files in one folder of this process's, which it removes.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    note = str(tmp_path / "note")
    with pytest.raises(RuntimeError, match="wrote no PRED.parquet"):
        LocalBackend(2).starmap(_killed_or_failing, [("keep", note), ("fail", note)])
    killed = Path(Path(note).read_text())
    assert killed.name.startswith("killed-call-") and killed.parent.parent == scratch
    assert not killed.exists() and list(scratch.iterdir()) == []
    # And after calls that all succeed.
    assert LocalBackend(2).starmap(_one_row, [(np.zeros(1),), (np.zeros(1),)])[0].shape == (1,)
    assert list(scratch.iterdir()) == []
