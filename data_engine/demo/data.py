"""The embedded default: scikit-learn's bundled digits, split into batches with injected label noise.

The true labels go to ``HOME/oracle.csv``; the engine itself never reads that file (only the
simulated reviewer and the benchmarks do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ingest.validate import GOLD_ID_PREFIX
from data_engine.store.home import Home

GOLD_SHARE = 0.2


@dataclass(frozen=True)
class SeedSummary:
    """What ``seed-demo`` wrote."""

    files: list[Path]
    rows: int
    gold_rows: int
    flipped: int


def flip_labels(y: np.ndarray, rate: float, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Flip ``round(rate * N)`` labels of ``y`` (shape (N,), ints) to a different class, uniformly.

    Returns the noisy labels, shape (N,).
    """
    noisy = y.copy()
    n_flip = int(round(rate * len(y)))
    idx = rng.choice(len(y), size=n_flip, replace=False)
    # An offset in 1..K-1 always lands on another class, each equally likely.
    noisy[idx] = (y[idx] + rng.integers(1, n_classes, size=n_flip)) % n_classes
    return noisy


def digits_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Digits as a frame with ``id`` and ``px0..px63``, and the true labels, shape (1797,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype(int), columns=[f"px{i}" for i in range(digits.data.shape[1])])
    frame.insert(0, "id", [f"d{i:04d}" for i in range(len(frame))])
    return frame, digits.target.astype(int)


def seed_demo(home: Home, *, noise: float = 0.2, seed: int = 0, batches: int = 4) -> SeedSummary:
    """Write the digits demo into ``home``'s landing folder (gold held out) and the oracle file."""
    if not 0 <= noise < 1:
        raise EngineError(f"--noise {noise}: must be in [0, 1)")
    if not 1 <= batches <= 100:
        raise EngineError(f"--batches {batches}: must be between 1 and 100")
    ds = home.config.dataset
    if ds.name != "digits" or ds.id_column != "id" or ds.label_column != "label":
        raise EngineError(f"{home.config_path}: seed-demo writes the digits default, but this home is for "
                          f"dataset {ds.name!r}; use a new --home")
    frame, y = digits_frame()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    n_gold = int(round(GOLD_SHARE * len(frame)))
    gold_idx, pool_idx = order[:n_gold], order[n_gold:]
    noisy = y.copy()
    noisy[pool_idx] = flip_labels(y[pool_idx], noise, 10, rng)
    home.make_dirs()
    files = []
    gold = frame.iloc[gold_idx].assign(label=y[gold_idx])
    gold_path = home.gold_landing / "digits_gold.csv"
    gold.to_csv(gold_path, index=False)
    files.append(gold_path)
    for i, part in enumerate(np.array_split(pool_idx, batches), start=1):
        path = home.landing / f"digits_batch_{i:02d}.csv"
        frame.iloc[part].assign(label=noisy[part]).to_csv(path, index=False)
        files.append(path)
    oracle = pd.DataFrame({"example_id": frame["id"], "label": y.astype(str),
                           "noisy_label": noisy.astype(str), "is_gold": False})
    oracle.loc[gold_idx, "is_gold"] = True
    # Gold examples are stored in their own id space (see data_engine.ingest.validate).
    oracle.loc[gold_idx, "example_id"] = GOLD_ID_PREFIX + oracle.loc[gold_idx, "example_id"]
    oracle.to_csv(home.oracle_path, index=False)
    return SeedSummary(files=files, rows=len(frame), gold_rows=n_gold, flipped=int((noisy != y).sum()))
