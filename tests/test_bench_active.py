"""`bench active` runs end to end on a small digits setting and reports curves and the gain over random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.bench.active import Curve, summarise


def test_bench_active_small_run_prints_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path / "home"), "bench", "active", "--datasets", "digits", "--seeds", "1",
                 "--start", "50", "--pool", "200", "--rounds", "1", "--round-size", "20",
                 "--strategies", "diverse_minibatch,random", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)["digits"]
    assert result["labels"] == [50, 70] and result["seeds"] == 1
    assert set(result["mean_accuracy"]) == {"diverse_minibatch", "random"}
    assert result["gain_points"][0] == 0.0  # both start from the same 50 labels


def test_summary_gain_is_paired_by_seed() -> None:
    curves = [Curve("d", "diverse_minibatch", 0, [1, 2], [0.5, 0.8]), Curve("d", "random", 0, [1, 2], [0.5, 0.7]),
              Curve("d", "diverse_minibatch", 1, [1, 2], [0.6, 0.6]), Curve("d", "random", 1, [1, 2], [0.6, 0.65])]
    out = summarise(curves)
    assert out["gain_points"] == [0.0, 2.5] and out["worst_seed_gain_points"] == [0.0, -5.0]
    assert out["above_random_every_round"] is True


def test_unknown_dataset_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "home"), "bench", "active", "--datasets", "mnist"]) != 0
    assert "--datasets: unknown 'mnist'" in capsys.readouterr().err
