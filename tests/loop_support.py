"""Small engine homes for the loop's tests (training, gate, deploy, serve), built through
:mod:`tests.homes` (the engine's own init, migrations and ingest): digits with the fast linear model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_engine.store.ledger import append_events
from data_engine.store.home import Home
from tests import homes
from tests.homes import PIXELS, digits, seed_digits  # noqa: F401  (the loop tests' names)


def make_home(tmp_path: Path, sections: Mapping[str, Mapping[str, Any]] | None = None,
              slices: list[dict[str, object]] | None = None, *, seed: int | None = None, **split: Any) -> Home:
    """:func:`tests.homes.make_home` with the digits config, the fast linear model, ``sections``
    over it and ``slices`` as ``[[gate.slices]]``; ``seed`` and ``split`` as there."""
    config = {name: dict(values) for name, values in homes.FAST_MODEL.items()}
    for name, values in (sections or {}).items():
        config.setdefault(name, {}).update(values)
    if slices:
        config.setdefault("gate", {})["slices"] = list(slices)
    return homes.make_home(tmp_path, config, seed=seed, **split)


def insert_examples(con, home: Home, ids: list[str], X: np.ndarray, labels: Sequence[str | None], *,
                    batch: str, gold: bool = False) -> str:
    """Ingest examples (a None label: unlabeled) as one batch with the engine's ingest; return its batch id."""
    return homes.ingest_rows(con, home, ids, X, labels, batch=batch, gold=gold).batch_id


def review(con, labels: dict[str, str | None]) -> None:
    """Record reviewer verdicts on version 1 of each example (None = discard) in the label ledger."""
    append_events(con, [{"example_id": k, "example_version": 1, "label": v, "source": "review", "actor": "test",
                         "detail": None} for k, v in labels.items()])


def train_again(con, home: Home):
    """Train a new candidate on a new label snapshot: a reviewer confirms one label in force first
    (the engine never trains the same spec twice on one snapshot; the training set stays the same)."""
    from data_engine.ship.training import train_candidate

    eid, label = con.execute(
        "SELECT example_id, cl.label FROM current_labels cl JOIN current_examples ce USING (example_id) "
        "WHERE NOT ce.is_gold AND cl.label IS NOT NULL ORDER BY example_id LIMIT 1").fetchone()
    review(con, {eid: label})
    return train_candidate(con, home)
