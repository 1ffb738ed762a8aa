"""`make demo`'s main job end to end, with its own Label Studio server: the targets it must show."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_engine.demo.data import seed_demo
from data_engine.demo.loop import run_demo
from data_engine.review.labelstudio.server import free_port, stop_server
from tests.homes import make_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


def test_the_demo_loop_recovers_the_gap_within_the_review_budget_and_beats_model_centric(tmp_path: Path) -> None:
    # The demo's own config, on a free port so it never meets a server a developer has running.
    home = make_home(tmp_path, {"review": {"url": f"http://127.0.0.1:{free_port()}"}})
    seed_demo(home, noise=0.2, seed=0)
    lines: list[str] = []
    try:
        final = run_demo(home, say=lines.append)
    finally:
        stop_server(home)
    gap = final["accuracy_clean"] - final["accuracy_noisy"]
    assert gap > 0, lines
    assert final["accuracy_final"] - final["accuracy_noisy"] >= 0.9 * gap, final
    assert final["reviewed"] <= 1.2 * final["true_errors"], final
    assert final["accuracy_final"] > final["accuracy_model_centric"], final
    assert final["rounds"] >= 2 and final["evaluated_on"] == 1797
    assert any(line.startswith("round 1: queued") for line in lines)
