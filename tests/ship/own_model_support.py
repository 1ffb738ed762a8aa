"""What the tests of the user's trainer share: the CLI with its output, landing a training and a gold
file, and a mining run on the trainer's out-of-fold predictions with the examples it flagged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from data_engine.cli import main
from data_engine.steps import ingest_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse


def cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Run the CLI; its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def land_train_and_gold(home: Home, X: pd.DataFrame, ids: np.ndarray, label_column: str,
                        parts: Sequence[tuple[np.ndarray, Sequence[Any]]]) -> None:
    """Write and ingest the rows ``parts[0][0]`` of ``X`` with labels ``parts[0][1]`` as
    ``landing/train.csv`` and ``parts[1]`` likewise as ``landing/gold/gold.csv`` (``id`` first)."""
    (home.landing / "gold").mkdir(exist_ok=True)
    for (rows, labels), path in zip(parts, (home.landing / "train.csv", home.landing / "gold" / "gold.csv")):
        frame = X.iloc[rows].copy()
        frame.insert(0, "id", ids[rows])
        frame[label_column] = labels
        frame.to_csv(path, index=False)
        ingest_step(home, [path])


def mine_flags(capsys: Any, home: Home) -> set[str]:
    """Run `mine`; check its out-of-fold predictions are the trainer's (spec ``command/...``) and
    return the example ids it flagged as label issues."""
    code, out, err = cli(capsys, "--home", str(home.root), "mine")
    assert code == 0, err
    with open_warehouse(home, read_only=True) as con:
        specs = {r[0] for r in con.execute("SELECT DISTINCT model_spec FROM predictions WHERE kind = 'oof'").fetchall()}
        flagged = {r[0] for r in con.execute(
            "SELECT example_id FROM issues WHERE issue_type = 'label' AND is_issue").fetchall()}
    assert specs and all(s.startswith("command/") for s in specs), specs
    return flagged


def promoted_champion(capsys: Any, home: Home, *steps: tuple[str, ...]) -> Any:
    """Run `train`, the CLI commands ``steps`` (e.g. ``("evaluate",)``), then `deploy promote`; the
    champion, loaded from the registry."""
    from data_engine.ship import registry

    for step in (("train",), *steps, ("deploy", "promote")):
        code, out, err = cli(capsys, "--home", str(home.root), *step)
        assert code == 0, err
    with open_warehouse(home, read_only=True) as con:
        return registry.load_model(home, registry.current_champion(con))
