"""The benchmarks that build an engine home (detect for classes, tags, numbers, spans and boxes; scale
--mining) leave no folder in the temporary directory: with ``keep`` they make none (the home and files
go there), without it theirs is removed however the run ends. Each runs on its smallest input, most
with mining stopped by a stand-in once the batch is ingested; one runs to the end."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture()
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as :mod:`tempfile`'s default for the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _stop_mining(monkeypatch: pytest.MonkeyPatch, bench: str) -> None:
    """Make the bench's mining step fail once the batch is ingested (the benches import it when they run)."""
    import data_engine.mine.run
    import data_engine.steps

    def fail(*args, **kwargs):
        home = kwargs.get("home", args[0])
        assert (home.root / "warehouse.duckdb").exists()  # the batch was ingested into the bench's home
        raise RuntimeError("mining stopped")

    through_steps = bench in ("tags", "numbers", "boxes")
    monkeypatch.setattr(*((data_engine.steps, "mine_step") if through_steps else (data_engine.mine.run, "run_mining")), fail)


def _run(bench: str, keep: Path | None) -> dict:
    """The bench ``bench`` on its smallest input, with the linear model where it takes one."""
    if bench == "scale":
        from data_engine.bench.scale_mining import run_mining_scale

        return run_mining_scale(rows=100, n_jobs=1, keep=keep)
    if bench == "spans":
        from data_engine.bench.detect_ner import run_ner_detect_benchmark

        return run_ner_detect_benchmark(rows=20, keep=keep)
    if bench == "boxes":
        from data_engine.bench.detect_digit_boxes import run_digit_boxes_benchmark

        return run_digit_boxes_benchmark(rows=10, keep=keep)
    if bench == "classes":
        from data_engine.bench.detect import run_detect_benchmark

        return run_detect_benchmark(dataset="tabular", rows=100, model="linear", baseline=False, n_jobs=1, keep=keep)
    if bench == "tags":
        from data_engine.bench.detect_multilabel import run_multilabel_detect_benchmark

        return run_multilabel_detect_benchmark(model="linear", baseline=False, n_jobs=1, keep=keep)
    from data_engine.bench.detect_regression import run_regression_detect_benchmark

    return run_regression_detect_benchmark(model="linear", baseline=False, n_jobs=1, keep=keep)


@pytest.mark.parametrize("keep", [False, True], ids=["temporary", "keep"])
@pytest.mark.parametrize("bench", ["classes", "tags", "numbers", "scale", "spans", "boxes"])
def test_a_failed_bench_run_leaves_no_temporary_folder(scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       bench: str, keep: bool) -> None:
    _stop_mining(monkeypatch, bench)
    with pytest.raises(RuntimeError, match="mining stopped"):
        _run(bench, tmp_path / "kept" if keep else None)
    assert list(scratch.iterdir()) == []
    assert any((tmp_path / "kept").rglob("warehouse.duckdb")) == keep


def test_a_finished_bench_run_leaves_no_temporary_folder(scratch: Path) -> None:
    result = _run("numbers", None)
    assert (result["rows"], result["injected"]) == (442, 44)
    assert list(scratch.iterdir()) == []
