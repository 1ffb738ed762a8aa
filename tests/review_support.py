"""Shared set-up of the review tests: an engine home with digits ingested and a review queue
written as mining would (the table comes from the engine's migrations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.steps import ingest_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home


def digits_home(root: Path, n: int = 60, *, seed: int = 0, review: dict | None = None) -> tuple[Home, pd.DataFrame]:
    """A home at ``root`` with ``n`` digits ingested (every 3rd label flipped); returns it and the true labels.

    ``review`` replaces keys of ``[review]`` of the default config (e.g. url, annotators_per_task).
    """
    from sklearn.datasets import load_digits

    home = make_home(root.parent, {"review": review} if review else None, name=root.name)
    digits = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(digits.target), size=n, replace=False)
    frame = pd.DataFrame(digits.data[idx].astype(int), columns=[f"px{i}" for i in range(64)])
    frame.insert(0, "id", [f"d{i:05d}" for i in idx])
    truth = digits.target[idx].astype(int)
    given = truth.copy()
    given[::3] = (given[::3] + 1) % 10
    frame["label"] = given
    path = home.landing / "batch.csv"
    frame.to_csv(path, index=False)
    ingest_step(home, [path])
    oracle = pd.DataFrame({"example_id": frame["id"], "label": truth.astype(str)})
    oracle.to_csv(home.oracle_path, index=False)
    return home, frame.assign(true_label=truth.astype(str), given_label=given.astype(str))


def make_queue(home: Home, frame: pd.DataFrame, *, run_id: int = 1, n: int | None = None) -> int:
    """Write a review queue for ``run_id`` over the first ``n`` examples of ``frame``."""
    rows = frame.head(n) if n else frame
    with open_warehouse(home) as con:
        versions = dict(con.execute("SELECT example_id, version FROM current_examples").fetchall())
        records = []
        for rank, r in enumerate(rows.itertuples(index=False), start=1):
            flipped = r.given_label != r.true_label
            records.append({
                "run_id": run_id, "rank": rank, "example_id": r.id, "example_version": versions[r.id],
                "issue_types": ["label"] if flipped else ["uncertain"], "priority": round(1.0 - rank / 1000, 4),
                "suggested_label": r.true_label, "suggested_score": 0.9 if flipped else 0.55,
                "given_label": r.given_label,
                "scores": json.dumps({"label": 0.9 if flipped else 0.1, "uncertain": 0.3}),
            })
        df = pd.DataFrame(records)
        con.register("_q", df)
        con.execute("INSERT INTO review_queue (run_id, rank, example_id, example_version, issue_types, priority, "
                    "suggested_label, suggested_score, given_label, scores) SELECT run_id, rank, example_id, example_version, "
                    "CAST(issue_types AS VARCHAR[]), priority, suggested_label, suggested_score, given_label, "
                    "CAST(scores AS JSON) FROM _q")
        con.unregister("_q")
    return len(records)


def pushed_to_fake(tmp_path: Path, n: int = 12, **review: object) -> tuple[Home, pd.DataFrame, object]:
    """A digits home (``n`` examples, ``review`` as in :func:`digits_home`) whose whole queue was
    pushed to a new in-memory Label Studio; returns the home, the frame and the fake client."""
    from data_engine.review.labelstudio.fake import FakeReviewClient
    from data_engine.review.push import push_queue

    home, frame = digits_home(tmp_path / "home", n=n, review=review or None)
    make_queue(home, frame)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config)
    return home, frame, client


READINGS_CONFIG = """\
[dataset]
name = "readings"
modality = "tabular"
id_column = "id"
label_column = "value"
feature_columns = ["a", "b", "c"]
task = "regression"
label_range = [-1000, 1000]

[mining]
model = "linear"
n_jobs = 1
detectors = ["label", "outlier", "near_duplicate"]

[review]
budget = 20
"""
# The rows of readings_home whose value is a gross error.
WRONG_READINGS = [3, 17, 29, 41, 55]


def readings_home(root: Path, review: dict | None = None) -> tuple[Home, pd.DataFrame, np.ndarray]:
    """A regression home at ``root / "home"``: 120 readings, a linear function of three numbers plus
    noise, with gross errors (+60) at :data:`WRONG_READINGS`, ingested; ``oracle.jsonl`` holds the
    true values. ``review`` replaces keys of ``[review]``. Returns the home, the landed frame and the truth (120,)."""
    import tomllib

    import tomlkit

    config = tomllib.loads(READINGS_CONFIG)
    config["review"].update(review or {})
    home = make_home(root, tomlkit.dumps(config))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    truth = np.round(10 * X[:, 0] - 5 * X[:, 1] + 2 * X[:, 2] + rng.normal(0, 1, 120), 1)
    given = truth.copy()
    given[WRONG_READINGS] = truth[WRONG_READINGS] + 60.0
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(120)], "a": X[:, 0], "b": X[:, 1], "c": X[:, 2],
                          "value": given})
    frame.to_csv(home.landing / "readings.csv", index=False)
    ingest_step(home, [home.landing / "readings.csv"])
    (home.root / "oracle.jsonl").write_text(
        "".join(json.dumps({"id": i, "label": float(v)}) + "\n" for i, v in zip(frame["id"], truth)), encoding="utf-8")
    return home, frame, truth


def simulated_round(home: Home, classes: list[str]):
    """One round of the loop on the in-memory Label Studio: mine, push the queue, the simulated
    reviewer answers every task from ``HOME/oracle.jsonl`` (always right), pull. Returns
    ``(mined, client, pushed, simulated, pulled)``."""
    from data_engine.review.labelstudio.fake import FakeReviewClient
    from data_engine.review.oracle import oracle_path, read_oracle
    from data_engine.review.pull import pull_verdicts
    from data_engine.review.push import push_queue
    from data_engine.review.simulate import simulate_reviews
    from data_engine.steps import mine_step
    from data_engine.tasks import task_for

    mined = mine_step(home)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    task = task_for(home.config.dataset)
    simulated = simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), task), classes,
                                 accuracy=1.0, label_task=task)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, client, home.config)
    return mined, client, pushed, simulated, pulled
