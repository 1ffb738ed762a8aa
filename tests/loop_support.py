"""Small engine homes for the loop's tests (training, gate, deploy, serve): built with SQL inserts.

A digits home: ``n_train`` labeled examples (``noise`` of them flipped), ``n_gold`` gold examples and
``n_unlabeled`` unlabeled ones; all through the warehouse's own schema (dataset_columns, examples,
label_events), so the tests do not depend on the ingestion code.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse, quote_ident
from tests.conftest import NEXT_EVENT_ID

PIXELS = [f"px{i}" for i in range(64)]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Digits features, shape (1797, 64), and labels as str, shape (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(float), d.target.astype(str)


def _toml_value(v: object) -> str:
    return json.dumps(v)  # JSON scalars (str, int, float, bool) are valid TOML scalars


def make_home(tmp_path: Path, sections: dict[str, dict[str, object]] | None = None,
              slices: list[dict[str, object]] | None = None) -> Home:
    """A home with the default digits [dataset]; ``sections`` override keys of the other sections.

    The default is a fast linear model (the tests exercise the loop, not the model family).
    """
    import tomllib

    home = Home(tmp_path / "home")
    home.make_dirs()
    raw = tomllib.loads(resources.files("data_engine.store").joinpath("default_config.toml").read_text(encoding="utf-8"))
    merged: dict[str, dict[str, object]] = {k: dict(v) for k, v in raw.items()}
    merged.setdefault("mining", {})["model"] = "linear"
    for name, values in (sections or {}).items():
        merged.setdefault(name, {}).update(values)
    lines = []
    for name, values in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    for spec in slices or []:
        lines.append("[[gate.slices]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
    home.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return home


def _ensure_schema(con) -> None:
    if con.execute("SELECT count(*) FROM dataset_columns").fetchall()[0][0]:
        return
    for pos, col in enumerate(PIXELS):
        con.execute(f"ALTER TABLE examples ADD COLUMN {quote_ident(col)} DOUBLE")
        con.execute("INSERT INTO dataset_columns VALUES (?, 'feature', 'numeric', ?)", [col, pos])
    con.execute("ALTER TABLE examples ADD COLUMN label VARCHAR")
    con.execute("INSERT INTO dataset_columns VALUES ('label', 'label', 'label', 64)")
    con.executemany("INSERT INTO dataset_classes VALUES (?, ?, 'config')", [[str(i), i] for i in range(10)])


def insert_examples(con, ids: list[str], X: np.ndarray, labels: list[str | None], *, batch: str,
                    gold: bool = False, source: str = "ingest") -> None:
    """Insert examples (version 1) and, where the label is not None, an ingest label event."""
    _ensure_schema(con)
    frame = pd.DataFrame(X, columns=PIXELS)
    frame.insert(0, "example_id", ids)
    frame["version"] = 1
    frame["batch_id"] = batch
    frame["row_number"] = np.arange(len(ids))
    frame["is_gold"] = gold
    frame["label"] = labels
    con.register("new_rows", frame)
    cols = ", ".join(quote_ident(c) for c in frame.columns)
    # Hashes stand in per id (distinct ids are never duplicates of each other).
    con.execute(f"INSERT INTO examples ({cols}, content_hash, feature_hash) "
                f"SELECT {cols}, hash('c' || example_id), hash('f' || example_id) FROM new_rows")
    con.unregister("new_rows")
    con.execute(
        "INSERT INTO batches (batch_id, path, sha256, is_gold, rows_in, rows_ok, rows_labeled, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'ingested')",
        [batch, f"{batch}.csv", batch, gold, len(ids), len(ids), sum(lab is not None for lab in labels)],
    )
    events = [[i, 1, lab, source, "test"] for i, lab in zip(ids, labels) if lab is not None]
    if events:
        con.executemany(
            "INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
            f"VALUES ({NEXT_EVENT_ID}, ?, ?, ?, ?, ?)",
            events,
        )


def review(con, labels: dict[str, str | None]) -> None:
    """Record reviewer verdicts (None = discard)."""
    con.executemany(
        "INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
        f"VALUES ({NEXT_EVENT_ID}, ?, 1, ?, 'review', 'test')",
        [[k, v] for k, v in labels.items()],
    )


def train_again(con, home: Home):
    """Train a new candidate on a new label snapshot: a reviewer confirms one label in force first
    (the engine never trains the same spec twice on one snapshot; the training set stays the same)."""
    from data_engine.ship.training import train_candidate

    eid, label = con.execute(
        "SELECT example_id, cl.label FROM current_labels cl JOIN current_examples ce USING (example_id) "
        "WHERE NOT ce.is_gold AND cl.label IS NOT NULL ORDER BY example_id LIMIT 1").fetchone()
    review(con, {eid: label})
    return train_candidate(con, home)


def seed_digits(home: Home, *, n_train: int = 600, n_gold: int = 300, n_unlabeled: int = 100,
                noise: float = 0.0, seed: int = 0) -> dict[str, object]:
    """Fill the home's warehouse with a digits split; return ids and true labels per part."""
    X, y = digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    parts = {"train": order[:n_train], "gold": order[n_train:n_train + n_gold],
             "unlabeled": order[n_train + n_gold:n_train + n_gold + n_unlabeled]}
    noisy = y.copy()
    tr = parts["train"]
    flip = rng.choice(tr, size=int(round(noise * len(tr))), replace=False)
    noisy[flip] = ((y[flip].astype(int) + rng.integers(1, 10, size=len(flip))) % 10).astype(str)
    ids = np.array([f"d{i:04d}" for i in range(len(y))])
    with open_warehouse(home) as con:
        insert_examples(con, list(ids[tr]), X[tr], list(noisy[tr]), batch="train-1")
        insert_examples(con, list(ids[parts["gold"]]), X[parts["gold"]], list(y[parts["gold"]]),
                        batch="gold-1", gold=True)
        insert_examples(con, list(ids[parts["unlabeled"]]), X[parts["unlabeled"]],
                        [None] * len(parts["unlabeled"]), batch="unlabeled-1")
    return {"ids": ids, "X": X, "y": y, "noisy": noisy, "parts": parts, "flipped": ids[flip]}


# The columns of `predictions` the loop writes (migration 0100, from the mining work). Created here
# only when that migration is not in this checkout yet, so the scoring tests run either way.
PREDICTIONS_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    example_id VARCHAR NOT NULL, example_version INTEGER NOT NULL, model_spec VARCHAR NOT NULL,
    label_snapshot BIGINT NOT NULL, fold INTEGER, probs DOUBLE[] NOT NULL, predicted_label VARCHAR,
    predicted_score DOUBLE, computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind VARCHAR NOT NULL DEFAULT 'oof'
)
"""


def ensure_predictions_table(home: Home) -> None:
    """Create ``predictions`` if no migration made it."""
    with open_warehouse(home) as con:
        con.execute(PREDICTIONS_DDL)
