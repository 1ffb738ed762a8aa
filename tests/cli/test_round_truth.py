"""A demo-loop round's counts: corrections, errors the queue found, and first labels apart."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from data_engine.demo.loop import RoundReport, _round_truth
from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.ledger import append_events
from data_engine.store.warehouse import last_event_id, open_warehouse


def test_first_labels_of_unlabeled_examples_are_neither_corrections_nor_errors_found(
        make_home: Callable[..., Home]) -> None:
    home = make_home()
    path = home.landing / "rows.csv"
    # r1 labeled wrongly (truth b), r2 labeled rightly, r3 and r4 unlabeled.
    pd.DataFrame({"id": ["r1", "r2", "r3", "r4"], "label": ["a", "a", None, None], "x": [1, 2, 3, 4],
                  "color": ["red"] * 4}).to_csv(path, index=False)
    oracle = pd.DataFrame({"example_id": ["r1", "r2", "r3", "r4"], "label": ["b", "a", "b", "a"]})
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path, gold=False)
        before = last_event_id(con)
        append_events(con, [{"example_id": e, "example_version": 1, "label": lab, "source": "review",
                             "actor": "tester", "detail": "{}"}
                            for e, lab in [("r1", "b"), ("r2", "a"), ("r3", "b"), ("r4", "a")]])
    reviewed, corrected, wrong, first = _round_truth(home, oracle, before)
    assert (reviewed, corrected, wrong, first) == (4, 1, 1, 2)
    report = RoundReport(1, 4, reviewed, corrected, wrong / reviewed, 0.9, 2, "promoted v2", "accuracy", first)
    assert report.line() == ("round 1: queued 4, reviewed 4, corrected 1 (and 2 first labels), queue precision 0.25, "
                             "gold accuracy 0.9000, champion v2 (promoted v2)")
    single = RoundReport(1, 4, 4, 1, 0.25, None, None, "no retrain: x", "accuracy", 1)
    assert "corrected 1 (and 1 first label), queue precision 0.25, gold accuracy n/a" in single.line()
