"""`demo-loop` on a home that already has reviews from earlier runs: its start figures are the state
when this run began (or say they count earlier reviews), and a share of the gap beyond 100 % is not
printed as a percentage. The in-memory Label Studio stands in for the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_engine.demo.data import seed_demo
from data_engine.demo.loop import gap_line, run_demo
from data_engine.review import project
from data_engine.review.labelstudio.fake import FakeReviewClient
from tests.homes import FAST_MODEL, make_home


def test_a_second_demo_loop_says_what_earlier_runs_reviewed(tmp_path: Path, monkeypatch) -> None:
    home = make_home(tmp_path, FAST_MODEL)
    seed_demo(home, noise=0.2, seed=0, batches=1)
    client = FakeReviewClient()  # one server for both runs, as a Label Studio left running
    monkeypatch.setattr(project, "review_server", lambda _home: "in memory")
    monkeypatch.setattr(project, "make_client", lambda _home: client)

    first_lines: list[str] = []
    first = run_demo(home, budget=20, max_rounds=1, say=first_lines.append)
    assert first["reviews_before"] == 0 and first["true_errors_at_start"] == first["true_errors"]
    assert any("trained on the digits labels as they landed" in line for line in first_lines)

    lines: list[str] = []
    second = run_demo(home, budget=20, max_rounds=1, say=lines.append)
    assert lines[1] == "nothing new to ingest (2 file(s) ingested before)"
    assert second["reviews_before"] == first["reviewed"] == 20
    # The errors left are the landed ones minus what the first run corrected (its reviewer slips aside).
    assert second["true_errors"] == first["true_errors"]
    assert second["true_errors_at_start"] <= first["true_errors"] - 15
    round0 = next(line for line in lines if line.startswith("round 0:"))
    assert "labels in force when this demo-loop began (as they landed, plus 20 review(s) of earlier runs)" in round0
    assert any(line.startswith(f"reviewed {second['reviewed']} examples for the {second['true_errors_at_start']} "
                               "true label errors left when this demo-loop began") for line in lines)
    assert not any(line.startswith("the loop recovered") and "earlier runs" not in line for line in lines)


@pytest.mark.parametrize(("recovered", "final", "clean", "expected"), [
    (0.58, 0.97, 0.99, "the loop recovered 58% of the noisy-to-clean gap"),
    (1.08, 0.9912, 0.9900, "the cleaned labels went beyond the clean-label ceiling (0.9912 against 0.9900; "
                           "the ceiling is the served model on the true labels, not a bound)"),
])
def test_the_gap_line_gives_no_share_beyond_the_ceiling(recovered, final, clean, expected) -> None:
    assert gap_line(recovered, final, clean) == expected
